"""Full redundancy as the lab's invariant: what keeps the lab from it, and the healer that restores it.

RDS replaces a failed Multi-AZ standby and ElastiCache replaces a failed node on their own, again
and again until the resource is whole ("Recovery of standby DB instance", "Recovering cache
nodes"). The lab does the same: every mechanic either finishes its step or leaves the node
`failed`, and the healer picks up whatever no running operation owns:
- a DB standby that is `failed` (or `rebuilding` with nobody rebuilding it) is rebuilt;
- a DB primary (or cluster writer) that died while there was no standby (or available reader)
  to promote is restarted in place;
- a cache node that is `failed`, or a replica whose replication link stays down, is replaced.
Nothing is replaced in an AZ without power. `redundancy_problems` lists what is still missing;
an empty list is the converged lab that `gameday lab status`, the tests and the bench wait for.
"""
import logging
import time
from typing import Callable, Dict, List, Optional, Set

from .background import BackgroundRunner
from .cache.failover import CacheMechanics
from .db.failover import DbMechanics
from .db.setup import replication_running
from .errors import LabStartError
from .parts import LabParts

log = logging.getLogger("woolab")

RETRY_SECONDS = 5.0  # a resource whose healing failed is tried again after at least this long
REPLICA_LINK_GRACE = 15.0  # a cache replica may resync this long before it counts as failed


class Healer:
    def __init__(self, parts: LabParts, runner: BackgroundRunner, db: DbMechanics, cache: CacheMechanics,
                 powered_off: Callable[[str], bool], cluster=None):
        self.parts, self.runner, self.db, self.cache = parts, runner, db, cache
        self.cluster = cluster  # ClusterMechanics of a cluster lab
        self.powered_off = powered_off
        self._last_try: Dict[str, float] = {}  # resource -> when healing last started
        self._link_down_since: Dict[str, float] = {}  # cache replica -> first seen unsynced

    def _due(self, key: str, now: float) -> bool:
        delay = max(RETRY_SECONDS, self.parts.timing.sample("replacement_delay_seconds"))
        if now - self._last_try.get(key, 0.0) < delay:
            return False
        self._last_try[key] = now
        return True

    def retry_now(self) -> None:
        """Forget when healing was last tried, so every degraded resource is tried again at once."""
        self._last_try.clear()

    def heal(self, lost_primaries: Set[str]) -> None:
        """One pass: start the repair of every resource that is degraded and owned by nobody.
        `lost_primaries` holds the DB instances and clusters whose primary (writer) the health
        monitor found dead with nothing to promote; one leaves it when its restart starts."""
        now = time.monotonic()
        self._heal_db(now, lost_primaries)
        self._heal_clusters(now, lost_primaries)
        self._heal_cache(now)

    def _heal_db(self, now: float, lost_primaries: Set[str]) -> None:
        state = self.parts.state
        for db in self.runner.idle("db", list(state.db.values())):
            owner = ("db", db.id)
            primary = db.nodes[db.primary]
            if db.id in lost_primaries and not self.powered_off(primary.az) and self._due(db.primary, now):
                lost_primaries.discard(db.id)
                self.parts.marker(db.id, f"primary {db.primary} lost with no standby to promote: restarting it")
                with state.lock:
                    db.status = "rebooting"
                self.runner.run(owner, self.db.restart_lost_primary, db.id)
                continue
            standby = db.nodes.get(db.standby) if db.standby else None
            if standby is None or self.powered_off(standby.az):
                continue
            broken = self._replication_broken(db.standby) if standby.status == "available" else None
            if standby.status == "available" and broken is None:
                continue
            if self._due(db.standby, now):
                if broken:
                    self.parts.marker(db.standby, f"standby {db.standby} stopped replicating ({broken}): replacing it")
                with state.lock:
                    standby.status = "rebuilding"
                self.runner.run(owner, self.db.recover_standby, db.id, db.standby)

    def _heal_clusters(self, now: float, lost_writers: Set[str]) -> None:
        """A cluster writer lost with no reader to promote is restarted in place; a cluster reader
        that is `failed` or stopped replicating is rebuilt."""
        state = self.parts.state
        for cluster in self.runner.idle("db-cluster", list(state.clusters.values())):
            writer = cluster.nodes[cluster.primary]
            if cluster.id in lost_writers and not self.powered_off(writer.az) and self._due(cluster.primary, now):
                lost_writers.discard(cluster.id)
                self.parts.marker(cluster.id, f"writer {cluster.primary} lost with no reader to promote: restarting it")
                with state.lock:
                    cluster.status = "rebooting"
                self.runner.run(("db-cluster", cluster.id), self.cluster.restart_lost_writer, cluster.id)
                return
            for name in cluster.readers:
                node = cluster.nodes[name]
                if self.powered_off(node.az):
                    continue
                broken = self._replication_broken(name) if node.status == "available" else None
                if (node.status == "available" and broken is None) or not self._due(name, now):
                    continue
                if broken:
                    self.parts.marker(name, f"reader {name} stopped replicating ({broken}): replacing it")
                with state.lock:
                    cluster.status, node.status = "modifying", "rebuilding"
                self.runner.run(("db-cluster", cluster.id), self.cluster.recover_reader, cluster.id, name)
                return

    def _replication_broken(self, name: str) -> Optional[str]:
        """Why a standby's replication stopped on an error that will not clear by itself (a
        diverged node, a stopped SQL thread), or None; a node that does not answer is the health
        monitor's to judge."""
        try:
            with self.parts.admin.mysql(name, timeout=1.0, read_timeout=2.0) as conn:
                replication_running(conn, name)
            return None
        except LabStartError as exc:  # Diverged included
            return str(exc)
        except Exception:
            return None

    def _heal_cache(self, now: float) -> None:
        state = self.parts.state
        for group in self.runner.idle("replication-group", list(state.groups.values())):
            owner = ("replication-group", group.id)
            for node in list(state.nodes.values()):
                if node.replication_group_id != group.id or self.powered_off(node.az):
                    continue
                if node.status == "available" and not self._link_stays_down(node, now):
                    continue
                if self._due(node.id, now):
                    with state.lock:
                        group.status, node.status = "modifying", "modifying"
                    self.runner.run(owner, self.cache.replace_failed_node, group.id, node.id)
                    break

    def _link_stays_down(self, node, now: float) -> bool:
        """Whether a replica's replication link has been down longer than a resync takes."""
        if (node.role != "replica" or self.parts.network_impaired()  # cut, not failed: nothing to replace
                or self.parts.admin.replica_synced(node.port, host=node.ip)):
            self._link_down_since.pop(node.id, None)
            return False
        first = self._link_down_since.setdefault(node.id, now)
        if now - first < REPLICA_LINK_GRACE:
            return False
        self._link_down_since.pop(node.id, None)
        self.parts.marker(node.id, f"replica {node.id} not replicating for {REPLICA_LINK_GRACE:.0f} s: replacing it")
        return True


def redundancy_problems(parts: LabParts, runner: BackgroundRunner, powered_off: Callable[[str], bool]) -> List[str]:
    """What keeps the lab from full redundancy right now; empty when it has it."""
    problems = [f"operation {name} running" for name in runner.running()]
    state = parts.state
    problems += [f"{az} without power" for az in sorted({n.az for n in _all_nodes(state)}) if powered_off(az)]
    for db in list(state.db.values()):
        problems += _db_problems(parts, db)
    for cluster in list(state.clusters.values()):
        problems += _cluster_problems(parts, cluster)
    for group in list(state.groups.values()):
        problems += _cache_problems(parts, group)
    return problems


def _all_nodes(state) -> list:
    return state.all_db_nodes() + list(state.nodes.values())


def _db_problems(parts: LabParts, db) -> List[str]:
    """A Multi-AZ DB instance is whole when it is available, its primary takes writes and its
    standby replicates from it."""
    standbys = [db.standby] if db.standby else []
    return _mysql_problems(parts, db, ("primary", "standby"), standbys)


def _cluster_problems(parts: LabParts, cluster) -> List[str]:
    """A DB cluster is whole when it is available, its writer takes writes and both readers
    replicate from it."""
    return _mysql_problems(parts, cluster, ("writer", "reader"), list(cluster.readers))


def _mysql_problems(parts: LabParts, resource, roles, replicas: List[str]) -> List[str]:
    """What keeps a DB instance or cluster from being whole: its status, any member not
    available, a primary (`roles[0]`) that does not take writes, a replica (`roles[1]`) that
    is available but does not replicate."""
    problems = [] if resource.status == "available" else [f"{resource.id} is {resource.status}"]
    problems += [f"{name} is {node.status}" for name, node in resource.nodes.items()
                 if node.status != "available"]
    try:
        with parts.admin.mysql(resource.primary, timeout=1.0, read_timeout=2.0) as conn:
            if _read_only(conn):
                problems.append(f"{roles[0]} {resource.primary} is read-only")
    except Exception as exc:
        problems.append(f"{roles[0]} {resource.primary} does not answer ({exc})")
    for name in replicas:
        if resource.nodes[name].status != "available":
            continue
        try:
            with parts.admin.mysql(name, timeout=1.0, read_timeout=2.0) as conn:
                if not replication_running(conn, name):
                    problems.append(f"{roles[1]} {name} is not replicating")
        except Exception as exc:
            problems.append(f"{roles[1]} {name} is not replicating ({exc})")
    return problems


def _read_only(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT @@read_only")
        return bool(cur.fetchone()[0])


def _cache_problems(parts: LabParts, group) -> List[str]:
    problems = [] if group.status == "available" else [f"{group.id} is {group.status}"]
    nodes = [n for n in parts.state.nodes.values() if n.replication_group_id == group.id]
    problems += [f"{n.id} is {n.status}" for n in nodes if n.status != "available"]
    roles = {n.id: parts.admin.redis_role(n.port, host=n.ip) for n in nodes}
    masters = [node_id for node_id, role in roles.items() if role == "master"]
    if len(masters) != 1:
        problems.append(f"{group.id} has {len(masters)} primaries answering ({', '.join(masters) or 'none'})")
    problems += [f"replica {n.id} is not in sync" for n in nodes
                 if roles.get(n.id) == "slave" and not parts.admin.replica_synced(n.port, host=n.ip)]
    return problems
