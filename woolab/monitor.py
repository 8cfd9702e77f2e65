"""RDS's and ElastiCache's own monitoring, for the failures nobody schedules.

Every half second each node is asked a cheap question (a MariaDB handshake, a Redis INFO) with a
short timeout, so a crashed process (refused) and a hung one (no answer) both count as unhealthy.
A node unhealthy for the profile's detection time triggers what AWS does on its own:
- DB primary: automatic Multi-AZ failover, then a rebuilt standby (`DbMechanics`);
- DB standby: a rebuilt standby;
- cache primary: Sentinel's promotion, published as the group's failover, then a replacement node;
- cache replica: a replacement node.
Nothing is replaced in an AZ without power (`PowerControl`) until its power returns.
"""
import logging
import threading
import time
from typing import Callable, Dict, Optional, Set

import pymysql

from groundfloor.supervisor import pid_alive

from .background import BackgroundRunner
from .cache.failover import CacheMechanics
from .convergence import Healer
from .db.cluster import ClusterMechanics, most_up_to_date
from .db.failover import DbMechanics
from . import servers
from .parts import LabParts

log = logging.getLogger("woolab")
CHECK_INTERVAL = 0.5


class HealthMonitor:
    def __init__(self, parts: LabParts, runner: BackgroundRunner, db: DbMechanics, cache: CacheMechanics,
                 powered_off: Callable[[str], bool], cluster: Optional[ClusterMechanics] = None):
        self.parts, self.runner, self.db, self.cache = parts, runner, db, cache
        self.cluster = cluster
        self.powered_off = powered_off
        self._since: Dict[str, float] = {}  # node -> when it was first seen unhealthy
        self._limit: Dict[str, float] = {}  # node -> detection time drawn for this incident
        self._checked: Set[str] = set()  # nodes checked in the current pass
        # DB instances and clusters whose primary (writer) failed with no standby (reader) to promote
        self.lost_primaries: Set[str] = set()
        self.healer = Healer(parts, runner, db, cache, powered_off, cluster)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="lab-health", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self.parts.stopping.wait(CHECK_INTERVAL):
            try:
                self._checked: Set[str] = set()
                self.check_db()
                self.check_clusters()
                self.check_cache()
                self._forget_unchecked()
                self.healer.heal(self.lost_primaries)
            except Exception:  # the monitor must outlive any one bad check
                log.exception("health check failed")

    def _forget_unchecked(self) -> None:
        """An incident lasts only while its node is checked in every pass: a node that was
        deleted, or is being replaced or rebuilt, starts a new incident when it is checked again
        (a replica created under a deleted one's name must not inherit its failure time)."""
        for node in [n for n in self._since if n not in self._checked]:
            self._since.pop(node, None)
            self._limit.pop(node, None)

    def _detected(self, node: str, check: Callable[[], bool], detection: str) -> bool:
        """Whether `node` has been unhealthy for the detection time (drawn once per incident).
        An incident starts when the first failed check was asked, not when it gave up: a hung
        node answers no check until its timeout, and counting from then would add that timeout
        to every detection of a hang."""
        asked = time.monotonic()
        self._checked.add(node)
        if check():
            self._since.pop(node, None)
            return False
        now = time.monotonic()
        first = self._since.setdefault(node, asked)
        if node not in self._limit or first == asked:
            self._limit[node] = self.parts.timing.sample(detection)
        return now - first >= self._limit[node]

    # DB ---------------------------------------------------------------------------------------
    def _db_healthy(self, name: str, pid) -> bool:
        if not pid_alive(pid):
            return False
        try:
            conn = servers.mysql_root(self.parts.config.path("run"), name, timeout=0.5, read_timeout=1.0)
        except pymysql.MySQLError:
            return False
        conn.close()
        return True

    def check_db(self) -> None:
        state = self.parts.state
        for db in self.runner.idle("db", list(state.db.values())):
            owner = ("db", db.id)
            primary = db.nodes[db.primary]
            if self._detected(db.primary, lambda: self._db_healthy(db.primary, primary.pid), "db_detection_seconds"):
                failed_since = self._since.pop(db.primary)
                if not db.standby or db.nodes[db.standby].status != "available":
                    if not self.powered_off(primary.az):
                        self.lost_primaries.add(db.id)  # nothing to fail over to: restarted in place
                    continue
                reason = ("failover-reason-unreachable" if self.powered_off(primary.az) else
                          "failover-reason-unhealthy" if not pid_alive(primary.pid) else "failover-reason-busy")
                with state.lock:
                    db.status = "rebooting"
                self.runner.run(owner, self.db.automatic_failover, db.id, reason, not self.powered_off(primary.az),
                                failed_since)
                continue
            standby = db.nodes.get(db.standby) if db.standby else None
            if standby is None or standby.status != "available":
                continue
            if self._detected(db.standby, lambda: self._db_healthy(db.standby, standby.pid), "db_detection_seconds"):
                self._since.pop(db.standby, None)
                with state.lock:
                    standby.status = "failed"
                if not self.powered_off(standby.az):
                    with state.lock:
                        standby.status = "rebuilding"
                    self.runner.run(owner, self.db.recover_standby, db.id, db.standby)
                state.save()

    def check_clusters(self) -> None:
        """A DB cluster's writer unhealthy for the detection time: automatic failover to the most
        up-to-date available reader, or, with no such reader, a restart in place (by the healer,
        once its AZ has power); a reader unhealthy that long: rebuilt."""
        state = self.parts.state
        for cluster in self.runner.idle("db-cluster", list(state.clusters.values())):
            owner = ("db-cluster", cluster.id)
            for name in [cluster.primary] + cluster.readers:
                node = cluster.nodes[name]
                if node.status != "available" or not self._detected(
                        name, lambda: self._db_healthy(name, node.pid), "db_detection_seconds"):
                    continue
                failed_since = self._since.pop(name)
                powered = not self.powered_off(node.az)
                readers = [r for r in cluster.readers if cluster.nodes[r].status == "available"
                           and not self.powered_off(cluster.nodes[r].az)]
                if name == cluster.primary and readers:
                    with state.lock:
                        cluster.status = "failing-over"
                    self.runner.run(owner, self.cluster.failover, cluster.id,
                                    most_up_to_date(self.parts, readers), failed_since, powered)
                elif name == cluster.primary:
                    if powered:  # no reader to promote: restarted in place, never a stale promotion
                        self.lost_primaries.add(cluster.id)
                elif name != cluster.primary:
                    with state.lock:
                        cluster.status, node.status = ("modifying", "rebuilding") if powered else \
                            (cluster.status, "failed")  # no power: rebuilt when it returns
                    if powered:
                        self.runner.run(owner, self.cluster.recover_reader, cluster.id, name)
                break

    # cache ----------------------------------------------------------------------------------
    def check_cache(self) -> None:
        state = self.parts.state
        for group in self.runner.idle("replication-group", list(state.groups.values())):
            owner = ("replication-group", group.id)
            for node in state.members(group.id, next(iter(group.node_groups))):
                if node.status != "available":
                    continue
                def healthy(node=node) -> bool:
                    return pid_alive(node.pid) and self.parts.admin.redis_role(node.port, host=node.ip) is not None
                if self._detected(node.id, healthy, "cache_detection_seconds"):
                    self._since.pop(node.id, None)
                    with state.lock:
                        group.status = "modifying"
                        node.status = "modifying"
                    self.runner.run(owner, self.cache.handle_failed_node, group.id, node.id,
                                    not self.powered_off(node.az))
                    break
