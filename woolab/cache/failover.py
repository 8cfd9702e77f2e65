"""ElastiCache TestFailover, DeleteCacheCluster and CreateCacheCluster, as the lab runs them.

TestFailover: the primary is lost, stays lost for the configured outage (ElastiCache needs that
long to notice), Sentinel promotes the replica, the primary endpoint follows, and the lost node is
recovered as a replica of the new primary — the events say so in ElastiCache's wording.
"""
import logging
import time
from typing import Optional

from groundfloor.supervisor import poll_until

from .. import servers
from ..config import AZS, MAX_CACHE_NODES, NODE_GROUP_ID
from ..errors import LabInvalidState, LabNotFound
from ..parts import LabParts
from ..state import CacheNode
from . import sentinel
from .setup import launch_node

log = logging.getLogger("woolab")


class CacheMechanics:
    def __init__(self, parts: LabParts):
        self.parts = parts

    def _event(self, source_type: str, source_id: str, kind: str, categories, **fields) -> None:
        self.parts.aws_event(source_type, source_id, "elasticache", kind, None, categories, **fields)

    # checks done in the API call (they raise before anything changes) ---------------------------
    def check_primary_loss(self, group_id: str, node_group_id: str) -> None:
        with self.parts.state.lock:
            group = self.parts.state.group_for_change(group_id)
            if node_group_id not in group.node_groups:
                raise LabNotFound(f"node group {node_group_id} not found in {group_id}")
            if len(group.node_groups[node_group_id].members) < 2:
                raise LabInvalidState(f"node group {node_group_id} has no replica to promote")
            group.status = "modifying"

    def check_delete(self, node_id: str) -> CacheNode:
        with self.parts.state.lock:
            node = self.parts.state.node(node_id)
            group = self.parts.state.group_for_change(node.replication_group_id)
            if node.role == "primary" and len(group.node_groups[node.node_group_id].members) < 2:
                raise LabInvalidState(f"{node_id} is the only node of its node group")
            group.status = "modifying"
            node.status = "deleting"
            return node

    def reserve_node(self, group_id: str, node_id: Optional[str], az: Optional[str]) -> int:
        """Validate a CreateCacheCluster, record the node as `creating`; returns its number."""
        state = self.parts.state
        with state.lock:
            group = state.group_for_change(group_id)
            used = {n.number for n in state.nodes.values() if n.replication_group_id == group_id}
            free = [n for n in range(1, MAX_CACHE_NODES + 1) if n not in used]
            number = _requested_number(group_id, node_id, free)
            group.status = "modifying"
            state.add_node(CacheNode(id=f"{group_id}-{number:03d}", replication_group_id=group_id,
                                     node_group_id=NODE_GROUP_ID, az=az or AZS[(number - 1) % len(AZS)],
                                     role="replica", pid=None, status="creating",
                                     port=self.parts.config.cache_node_port(number),
                                     ip=self.parts.config.cache_node_address(number),
                                     address=self.parts.config.cache_node_name(f"{group_id}-{number:03d}")))
        return number

    # the work (background) ---------------------------------------------------------------------------
    def failover(self, group_id: str, node_group_id: str, remove_old: bool) -> None:
        """TestFailover (`remove_old` False): the primary stops taking writes for the outage, the
        replica is promoted, and the old primary stays up as a replica — connections that stayed
        open get READONLY, as on ElastiCache. Deleting the primary (`remove_old`) loses it hard."""
        parts = self.parts
        old = parts.state.primary_of(group_id, node_group_id)
        if remove_old:
            parts.procs.stop(old.id, hard=True)
            parts.marker(group_id, f"primary {old.id} killed")
            self._await_promotion(group_id, old)
            parts.state.forget_node(old.id)
            self._event("cache-cluster", old.id, "node-deleted", ["deletion"], id=old.id)
        else:
            self._test_failover(group_id, node_group_id, old)
        with parts.state.lock:
            parts.state.groups[group_id].status = "available"
        parts.state.save()

    def _test_failover(self, group_id: str, node_group_id: str, old: CacheNode) -> None:
        """The primary stops taking writes for the outage; the most caught-up replica is promoted;
        the old primary is demoted in place, so connections that stayed open get READONLY."""
        parts = self.parts
        self._event("replication-group", group_id, "failover-started", ["failover"], node_group=node_group_id)
        sentinel.forget(parts.admin, group_id)  # the lab runs this failover; Sentinels must not interfere
        try:
            new = self._promote_in_place(group_id, node_group_id, old)
        finally:  # Sentinels watch whatever is primary now, even after a failure halfway
            primary = parts.state.primary_of(group_id, node_group_id)
            sentinel.repoint(parts.admin, group_id, (primary.ip, primary.port), parts.secrets["redis_password"],
                             int(parts.timing.sample("cache_detection_seconds") * 1000))
        self._event("replication-group", group_id, "failover-completed", ["failover"], old=old.id, new=new.id)
        self._event("cache-cluster", old.id, "recovery-started", ["recovery"], nodes=node_group_id)
        if not parts.admin.wait_replica_synced(old.port, 30, host=old.ip):
            raise LabInvalidState(f"{old.id} did not resync as a replica within 30 s")
        sentinel.wait_ready(parts.admin, group_id, len(parts.state.members(group_id, node_group_id)) - 1, 30)
        self._event("cache-cluster", old.id, "recovery-completed", ["recovery"], nodes=node_group_id)

    def _promote_in_place(self, group_id: str, node_group_id: str, old: CacheNode) -> CacheNode:
        """Pause the old primary's writes for the outage, promote, demote the old one in place,
        move the records, record the first write through the freshly resolved name."""
        parts = self.parts
        held = parts.timing.sample("cache_failover_seconds")
        with parts.admin.redis(old.port, host=old.ip) as client:  # writes wait, then meet a replica
            client.execute_command("CLIENT", "PAUSE", int(held * 1000) + 5000, "WRITE")
            offset = client.info("replication")["master_repl_offset"]
        parts.marker(group_id, f"primary {old.id} stopped taking writes")
        time.sleep(held)  # ElastiCache needs a while before the promotion; clients must ride through it
        new = self._most_caught_up(group_id, node_group_id, old, offset)
        with parts.admin.redis(new.port, host=new.ip) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
        with parts.admin.redis(old.port, host=old.ip, timeout=5) as client:
            client.execute_command("REPLICAOF", new.ip, new.port)  # demoted in place: held writes get READONLY
        with parts.state.lock:
            new.role, old.role = "primary", "replica"  # the DNS records follow
        try:
            with parts.admin.redis(old.port, host=old.ip, timeout=5) as client:
                client.execute_command("CLIENT", "UNPAUSE")
        except Exception as exc:  # the pause also ends by itself a few seconds later
            log.info("could not unpause %s at once (%s); its pause runs out by itself", old.id, exc)
        parts.marker(group_id, f"endpoint writable on {new.id}", categories=["writable"],
                     at=parts.endpoints.wait_cache_writable(timeout=30))
        return new

    def _most_caught_up(self, group_id: str, node_group_id: str, old: CacheNode, offset: int) -> CacheNode:
        """The replica with the most of the old primary's stream (it has it all once writes stopped)."""
        def offset_of(node: CacheNode) -> int:
            try:
                with self.parts.admin.redis(node.port, host=node.ip) as client:
                    return int(client.info("replication").get("slave_repl_offset", -1))
            except Exception:
                return -1
        replicas = [n for n in self.parts.state.members(group_id, node_group_id) if n.id != old.id]
        poll_until(lambda: max(map(offset_of, replicas)) >= offset, 5, interval=0.02)
        return max(replicas, key=offset_of)

    def handle_failed_node(self, group_id: str, node_id: str, replace: bool) -> None:
        """A node crashed or hung. A lost primary is replaced by the promotion Sentinel runs on its
        own (the group's automatic failover), published in ElastiCache's wording; the failed node
        is then replaced by a new replica in its AZ — unless that AZ has no power."""
        parts = self.parts
        node = parts.state.nodes[node_id]
        parts.marker(group_id, f"node {node_id} failed ({node.role})")
        if node.role == "primary":
            self._await_promotion(group_id, node, timeout=60 + parts.timing.sample("cache_detection_seconds"))
        if replace:
            self.replace_node(group_id, node_id)
        else:
            with parts.state.lock:
                node.status = "failed"
        with parts.state.lock:
            parts.state.groups[group_id].status = "available"
        parts.state.save()

    def replace_failed_node(self, group_id: str, node_id: str) -> None:
        """Heal a node nobody else is handling (a replacement that failed, a replica that stopped
        replicating): a lost primary first waits for Sentinel's promotion, then the node is replaced."""
        self.handle_failed_node(group_id, node_id, replace=True)

    def replace_node(self, group_id: str, node_id: str) -> None:
        """Replace a failed node with a fresh replica of the current primary, same id and AZ."""
        parts = self.parts
        node = parts.state.nodes[node_id]
        parts.procs.stop(node_id, hard=True)
        with parts.state.lock:
            node.status = "modifying"
        time.sleep(parts.timing.sample("replacement_delay_seconds"))
        primary = parts.state.primary_of(group_id, node.node_group_id)
        self.recover_node(group_id, node_id, node.node_group_id, primary)

    def _await_promotion(self, group_id: str, old: CacheNode, timeout: float = 30.0) -> CacheNode:
        """Wait for Sentinel to name the new primary, move the endpoint's DNS record to it, and
        record when the primary endpoint (resolved afresh) took its first write."""
        parts = self.parts
        new_ip = poll_until(lambda: (ip if (ip := sentinel.any_primary(parts.admin, group_id)) != old.ip else None),
                            timeout, interval=0.02)
        new = next((n for n in parts.state.nodes.values() if n.ip == new_ip and n.id != old.id), None)
        if new is None:
            raise LabInvalidState(f"Sentinel did not promote a replica of {old.id} within {timeout:.0f} s")
        with parts.state.lock:
            new.role, old.role = "primary", "replica"
        writable_at = parts.endpoints.wait_cache_writable(timeout=timeout)
        parts.marker(group_id, f"endpoint writable on {new.id}", categories=["writable"], at=writable_at)
        self._event("replication-group", group_id, "failover-completed", ["failover"], old=old.id, new=new.id)
        return new

    def recover_node(self, group_id: str, node_id: str, node_group_id: str, primary: CacheNode) -> None:
        """Bring a lost node back as a replica of the primary and wait until it has synced."""
        parts = self.parts
        self._event("cache-cluster", node_id, "recovery-started", ["recovery"], nodes=node_group_id)
        number = int(node_id.rsplit("-", 1)[1])
        launch_node(parts, group_id, number, (primary.ip, primary.port))
        node = parts.state.nodes[node_id]
        servers.wait_for_port(node.port, 10, parts.procs.get(node_id), f"redis {node_id}", host=node.ip)
        if not parts.admin.wait_replica_synced(node.port, 20, host=node.ip):
            raise LabInvalidState(f"replica {node_id} did not sync within 20 s")
        self._event("cache-cluster", node_id, "recovery-completed", ["recovery"], nodes=node_group_id)

    def remove_replica(self, node_id: str) -> None:
        parts = self.parts
        group_id = parts.state.nodes[node_id].replication_group_id
        parts.procs.stop(node_id, timeout=5)
        parts.procs.forget(node_id)
        parts.state.forget_node(node_id)
        self._event("cache-cluster", node_id, "node-deleted", ["deletion"], id=node_id)
        with parts.state.lock:
            parts.state.groups[group_id].status = "available"
        parts.state.save()

    def add_replica(self, group_id: str, number: int) -> None:
        parts = self.parts
        primary = parts.state.primary_of(group_id, NODE_GROUP_ID)
        node_id = launch_node(parts, group_id, number, (primary.ip, primary.port))
        node = parts.state.nodes[node_id]
        servers.wait_for_port(node.port, 10, parts.procs.get(node_id), f"redis {node_id}", host=node.ip)
        if not parts.admin.wait_replica_synced(node.port, 20, host=node.ip):
            raise LabInvalidState(f"replica {node_id} did not sync within 20 s")
        sentinel.wait_know_replica(parts.admin, group_id, node.ip)
        self._event("cache-cluster", node_id, "node-created", ["creation"], id=node_id)
        with parts.state.lock:
            parts.state.groups[group_id].status = "available"
        parts.state.save()


def _requested_number(group_id: str, node_id: Optional[str], free: list) -> int:
    if not node_id:
        if not free:
            raise LabInvalidState(f"{group_id} already has {MAX_CACHE_NODES} nodes (lab limit)")
        return free[0]
    try:
        number = int(node_id.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        number = 0
    if node_id != f"{group_id}-{number:03d}" or number not in free:
        raise LabInvalidState(f"cannot create {node_id}: the lab names nodes {group_id}-00N, N free among {free}")
    return number
