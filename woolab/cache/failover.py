"""ElastiCache TestFailover, DeleteCacheCluster and CreateCacheCluster, as the lab runs them.

TestFailover: the primary is lost, stays lost for the configured outage (ElastiCache needs that
long to notice), Sentinel promotes the replica, the primary endpoint follows, and the lost node is
recovered as a replica of the new primary — the events say so in ElastiCache's wording.
"""
import time
from typing import Optional

from chaosext.supervisor import poll_until

from .. import servers
from ..config import AZS, MAX_CACHE_NODES, NODE_GROUP_ID
from ..errors import LabInvalidState, LabNotFound
from ..parts import LabParts
from ..state import CacheNode
from . import sentinel
from .setup import launch_node


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
                                     port=self.parts.config.cache_node_port(number)))
        return number

    # the work (background) ---------------------------------------------------------------------------
    def failover(self, group_id: str, node_group_id: str, remove_old: bool) -> None:
        """Lose the primary; promote; then recover it as a replica (or forget it when deleted)."""
        parts = self.parts
        old = parts.state.primary_of(group_id, node_group_id)
        if not remove_old:
            self._event("replication-group", group_id, "failover-started", ["failover"], node_group=node_group_id)
        parts.procs.stop(old.id, hard=True)
        killed = time.monotonic()
        parts.marker(group_id, f"primary {old.id} killed")
        if not remove_old:
            held = parts.timing.sample("cache_failover_seconds") - (time.monotonic() - killed)
            if held > 0:  # ElastiCache needs a while to detect the loss; clients must ride through it
                time.sleep(held)
            sentinel.ask_failover(parts.admin, group_id)
        new = self._await_promotion(group_id, old)
        if remove_old:
            parts.state.forget_node(old.id)
            self._event("cache-cluster", old.id, "node-deleted", ["deletion"], id=old.id)
        else:
            self.recover_node(group_id, old.id, node_group_id, new.port)
        with parts.state.lock:
            parts.state.groups[group_id].status = "available"
        parts.state.save()

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

    def replace_node(self, group_id: str, node_id: str) -> None:
        """Replace a failed node with a fresh replica of the current primary, same id and AZ."""
        parts = self.parts
        node = parts.state.nodes[node_id]
        parts.procs.stop(node_id, hard=True)
        with parts.state.lock:
            node.status = "modifying"
        time.sleep(parts.timing.sample("replacement_delay_seconds"))
        primary = parts.state.primary_of(group_id, node.node_group_id)
        self.recover_node(group_id, node_id, node.node_group_id, primary.port)

    def _await_promotion(self, group_id: str, old: CacheNode, timeout: float = 30.0) -> CacheNode:
        """Wait for the endpoint to take a write and Sentinel to name the new primary; record both."""
        parts = self.parts
        writable_at = parts.endpoints.wait_cache_writable(timeout=timeout)
        new_port = poll_until(lambda: (p if (p := sentinel.any_primary(parts.admin, group_id)) != old.port else None),
                              15, interval=0.02)
        new = next((n for n in parts.state.nodes.values() if n.port == new_port and n.id != old.id), None)
        if new is None:
            raise LabInvalidState(f"Sentinel did not promote a replica of {old.id}")
        parts.marker(group_id, f"endpoint writable on {new.id}", categories=["writable"], at=writable_at)
        with parts.state.lock:
            new.role, old.role = "primary", "replica"
        self._event("replication-group", group_id, "failover-completed", ["failover"], old=old.id, new=new.id)
        return new

    def recover_node(self, group_id: str, node_id: str, node_group_id: str, primary_port: int) -> None:
        """Bring a lost node back as a replica of the primary and wait until it has synced."""
        parts = self.parts
        self._event("cache-cluster", node_id, "recovery-started", ["recovery"], nodes=node_group_id)
        number = int(node_id.rsplit("-", 1)[1])
        launch_node(parts, group_id, number, primary_port)
        if not parts.admin.wait_replica_synced(parts.state.nodes[node_id].port, 20):
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
        primary_port = parts.state.primary_of(group_id, NODE_GROUP_ID).port
        node_id = launch_node(parts, group_id, number, primary_port, az=parts.state.nodes[f"{group_id}-{number:03d}"].az)
        port = parts.state.nodes[node_id].port
        servers.wait_for_port(port, 10, parts.procs.get(node_id), f"redis {node_id}")
        if not parts.admin.wait_replica_synced(port, 20):
            raise LabInvalidState(f"replica {node_id} did not sync within 20 s")
        sentinel.wait_know_replica(parts.admin, group_id, port)
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
