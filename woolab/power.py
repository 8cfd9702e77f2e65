"""Failures by hand and by Availability Zone: crash, freeze and thaw one node; cut an AZ's power.

A power interruption freezes every lab node in the AZ (SIGSTOP: the host is gone, connections hang
rather than being refused, as for an unreachable host). The health monitor then fails both
services over; nothing is replaced in that AZ while the power is off (as the AWS FIS action
`aws:elasticache:replicationgroup-interrupt-az-power` documents for replicas). When the power
returns the frozen processes are discarded (the hosts reboot) and the nodes rejoin as the DB
standby and as cache replicas.
"""
import os
import signal
import threading
import time
from typing import Dict, List

from groundfloor.supervisor import poll_until

from .background import BackgroundRunner
from .cache.failover import CacheMechanics
from .config import AZS
from .db.failover import DbMechanics
from .errors import LabInvalidState, LabNotFound
from .parts import LabParts

MAX_INTERRUPTION_SECONDS = 12 * 3600  # FIS allows up to 12 hours


class PowerControl:
    def __init__(self, parts: LabParts, runner: BackgroundRunner, db: DbMechanics, cache: CacheMechanics,
                 cluster=None):
        self.parts, self.runner, self.db, self.cache = parts, runner, db, cache
        self.cluster = cluster  # ClusterMechanics of a cluster lab
        self._off: Dict[str, float] = {}  # AZ -> time its power returns
        self._lock = threading.Lock()

    def powered_off(self, az: str) -> bool:
        with self._lock:
            return az in self._off

    def interruptions(self) -> Dict[str, float]:
        with self._lock:
            return dict(self._off)

    # one node -------------------------------------------------------------------------------------
    def _node(self, name: str) -> tuple:
        """(pid, az) of a DB or cache node by name; LabNotFound for anything else."""
        state = self.parts.state
        with state.lock:
            for db in list(state.db.values()) + list(state.clusters.values()):
                if name in db.nodes:
                    return db.nodes[name].pid, db.nodes[name].az
            if name in state.nodes:
                return state.nodes[name].pid, state.nodes[name].az
        known = [n for db in list(state.db.values()) + list(state.clusters.values()) for n in db.nodes] \
            + list(state.nodes)
        raise LabNotFound(f"node {name} not found (nodes: {', '.join(sorted(known))})")

    def _signal(self, name: str, sig: int, what: str) -> None:
        pid, _az = self._node(name)
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, TypeError):
            raise LabInvalidState(f"node {name} is not running (it is being replaced)") from None
        self.parts.marker(name, f"node {name} {what}")

    def crash(self, name: str) -> None:
        self._signal(name, signal.SIGKILL, "crashed (SIGKILL)")

    def freeze(self, name: str) -> None:
        self._signal(name, signal.SIGSTOP, "frozen (SIGSTOP)")

    def thaw(self, name: str) -> None:
        self._signal(name, signal.SIGCONT, "thawed (SIGCONT)")

    # one AZ ---------------------------------------------------------------------------------------
    def nodes_in(self, az: str, kinds=("db", "cache")) -> List[str]:
        state = self.parts.state
        with state.lock:
            db = [n for db in list(state.db.values()) + list(state.clusters.values())
                  for n, node in db.nodes.items() if node.az == az]
            cache = [n.id for n in state.nodes.values() if n.az == az]
        return (db if "db" in kinds else []) + (cache if "cache" in kinds else [])

    def interrupt(self, az: str, seconds: float, kinds=("db", "cache")) -> List[str]:
        """Cut the power of `az` for `seconds`; returns the nodes that lost power. `kinds` limits
        the cut to the DB or the cache nodes (FIS's ElastiCache action cuts only cache nodes)."""
        if az not in AZS:
            raise LabNotFound(f"Availability Zone {az} not found (the lab has {', '.join(AZS)})")
        if not 0 < float(seconds) <= MAX_INTERRUPTION_SECONDS:
            raise LabInvalidState(f"an interruption lasts more than 0 s and at most {MAX_INTERRUPTION_SECONDS} s")
        with self._lock:
            if az in self._off:
                raise LabInvalidState(f"Availability Zone {az} is already without power")
            self._off[az] = time.time() + float(seconds)
        nodes = self.nodes_in(az, kinds)
        self.parts.marker(az, f"power interrupted in {az} for {float(seconds):g} s: {', '.join(nodes)}",
                          categories=["power"])
        for name in nodes:
            pid, _ = self._node(name)
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, TypeError):
                pass
        timer = threading.Timer(float(seconds), self.restore, args=(az,))
        timer.daemon = True
        timer.start()
        return nodes

    def restore(self, az: str) -> None:
        """Power returns: the hosts reboot and every node of the AZ rejoins as standby or replica."""
        with self._lock:
            if self._off.pop(az, None) is None:
                return
        self.parts.marker(az, f"power restored in {az}", categories=["power"])
        state = self.parts.state
        for db in list(state.db.values()):
            for name, node in db.nodes.items():
                if node.az == az:
                    self._when_idle(("db", db.id))
                    if db.primary == name:  # never failed over (no standby): reboot in place
                        self.runner.run(("db", db.id), self.db.reboot_in_place, db.id, False)
                    else:
                        with state.lock:
                            node.status = "rebuilding"
                        self.runner.run(("db", db.id), self.db.recover_standby, db.id, name)
        self._restore_clusters(az)
        for node in list(state.nodes.values()):
            if node.az == az:
                owner = ("replication-group", node.replication_group_id)
                self._when_idle(owner)
                with state.lock:
                    state.groups[node.replication_group_id].status = "modifying"
                self.runner.run(owner, self._replace_cache_node, node.replication_group_id, node.id)

    def _restore_clusters(self, az: str) -> None:
        """A DB cluster's members in `az` rejoin as readers once the failover the outage started
        has finished (a writer that was never failed over is left to the health monitor)."""
        state = self.parts.state
        for cluster in list(state.clusters.values()):
            for name in [n for n, node in cluster.nodes.items() if node.az == az]:
                owner = ("db-cluster", cluster.id)
                self._when_idle(owner)
                if name == cluster.primary:
                    continue
                with state.lock:
                    cluster.status, cluster.nodes[name].status = "modifying", "rebuilding"
                self.runner.run(owner, self.cluster.recover_reader, cluster.id, name)

    def _replace_cache_node(self, group_id: str, node_id: str) -> None:
        if self.parts.state.nodes[node_id].role == "primary":  # back before anyone noticed it was gone
            self.cache.handle_failed_node(group_id, node_id, replace=True)
        else:
            self.cache.replace_node(group_id, node_id)
        with self.parts.state.lock:
            self.parts.state.groups[group_id].status = "available"
        self.parts.state.save()

    def _when_idle(self, owner: tuple, timeout: float = 600.0) -> None:
        """Wait until the failover that the outage started on this resource has finished."""
        poll_until(lambda: not self.runner.busy_with(owner), timeout, interval=0.1)
