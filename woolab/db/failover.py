"""RDS RebootDBInstance, with and without ForceFailover, as the lab runs it.

Failover: the instance endpoint stops reaching the old primary, the old primary turns read-only
(so nothing it acknowledges afterwards can be lost), the standby applies every GTID the primary
had, the old primary goes down (RDS reboots it), the standby is promoted, the endpoint follows
after the configured outage, and the old primary comes back as the new standby. Every step lands
in the event log; "endpoint writable" is the ground truth the pack's RTO is measured against.
"""
import logging
import subprocess
import time
from typing import Optional

import pymysql

from groundfloor.supervisor import pid_alive, poll_until

from .. import servers
from ..config import DB_INSTANCE_ID
from ..errors import LabInvalidState, LabStartError
from ..parts import LabParts
from .setup import Diverged, gtid_seqs, holds_position, replicate, reseed, restart_node
from .lag import delay_of

log = logging.getLogger("woolab")

REBUILD_REPLICATION_TIMEOUT = 30.0  # seconds for both replication threads to run (busy machines)
# read_only=1 waits for commits still waiting for the standby's acknowledgement (up to the
# semi-sync timeout of `servers.mariadb_start`), so the quiesce must outwait that timeout
QUIESCE_TIMEOUT = 5.0
REBUILD_BUDGET = 120.0  # seconds of attempts before a standby is handed to healing
STANDBY_BUILD_SECONDS = 10.0  # about what a standby rebuild takes in the lab (a copy included)
# what a rebuild attempt meets on a busy machine and clears by starting the node again
TRANSIENT_ERRORS = (LabStartError, pymysql.MySQLError, OSError, subprocess.SubprocessError)


class DbMechanics:
    def __init__(self, parts: LabParts):
        self.parts = parts

    def _event(self, instance_id: str, kind: str, event_id: Optional[str], categories) -> None:
        self.parts.aws_event("db-instance", instance_id, "rds", kind, event_id, categories)

    # planned failover ---------------------------------------------------------------------------
    def _start_failover(self, instance_id: str) -> tuple:
        """Publish the start, take the endpoint off the old primary; (old, new, now)."""
        db = self.parts.state.db_instance(instance_id)
        old, new = db.primary, db.standby
        self._event(instance_id, "failover-started", "RDS-EVENT-0013", ["failover"])
        self.parts.endpoints.db_cut(old)
        self.parts.marker(instance_id, f"endpoint unavailable (was {old})")
        return old, new, time.monotonic()

    def failover(self, instance_id: str) -> None:
        parts = self.parts
        old, new, went_down = self._start_failover(instance_id)
        position = self.quiesce(old)
        self.promote(new, position)
        parts.procs.stop(old, hard=True)
        self._finish_promotion(instance_id, old, new, went_down)

    def quiesce(self, old: str) -> Optional[str]:
        """Make the old primary read-only and return its GTID position (None when it is dead)."""
        if not self.parts.procs.alive(old):
            return None
        try:
            with self.parts.admin.mysql(old, timeout=1.0, read_timeout=QUIESCE_TIMEOUT) as conn:  # it may hang
                servers.sql(conn, "SET GLOBAL read_only=1")
                return servers.sql(conn, "SELECT @@gtid_binlog_pos")[0][0]
        except Exception as exc:  # a dying primary: promote what the standby received
            log.warning("could not quiesce %s: %s", old, exc)
            return None

    def promote(self, new: str, position: Optional[str], catch_up_timeout: float = 10.0) -> None:
        """Let the standby apply `position` (or, with the primary gone, everything it received:
        semi-sync acknowledged each commit once it was in the standby's relay log), then make it a
        writable primary."""
        with self.parts.admin.mysql(new) as conn:
            delay = delay_of(conn)  # a reader lagging on purpose applies what it received late
            if delay:
                log.info("promoting %s: it applies commits %d s late, the promotion waits for them", new, delay)
                catch_up_timeout += delay
            current = lambda: servers.sql(conn, "SELECT @@gtid_current_pos")[0][0]  # noqa: E731
            if position is None:
                servers.sql(conn, "STOP SLAVE IO_THREAD")
                position = servers.sql_dict(conn, "SHOW SLAVE STATUS")[0].get("Gtid_IO_Pos") or None
            if position and not poll_until(lambda: holds_position(current(), position), catch_up_timeout, 0.005):
                log.error("standby %s did not apply %s within %.0f s (it has %s)", new, position,
                          catch_up_timeout, current())
            servers.sql(conn, "STOP SLAVE")
            servers.sql(conn, "RESET SLAVE ALL")
            servers.sql(conn, "SET GLOBAL read_only=0")

    def _finish_promotion(self, instance_id: str, old: str, new: str, went_down: float,
                          rebuild: bool = True) -> None:
        """Endpoint to the new primary after the outage, old primary back as the standby, events."""
        parts = self.parts
        db = parts.state.db_instance(instance_id)
        held = parts.timing.sample("db_failover_seconds") - (time.monotonic() - went_down)
        if held > 0:  # the RDS endpoint's DNS flip takes a while: shoppers must meet the outage
            time.sleep(held)
        parts.endpoints.db_open(new)
        parts.marker(instance_id, f"endpoint writable on {new}", categories=["writable"],
                     at=parts.endpoints.wait_db_writable())
        with parts.state.lock:
            db.primary, db.standby = new, old
            db.nodes[new].role, db.nodes[old].role = "primary", "standby"
            db.nodes[old].status = "rebuilding" if rebuild else "failed"
        if rebuild:
            time.sleep(parts.endpoints.db_ttl)  # the old address refuses until cached answers expired
            if self.rebuild_standby(instance_id, old):
                self._event(instance_id, "restarted", "RDS-EVENT-0006", ["availability"])
        with parts.state.lock:
            db.status = "available"
            db.last_failover_at = time.time()
        self._event(instance_id, "failover-completed", "RDS-EVENT-0049", ["failover"])
        parts.state.save()

    def rebuild_standby(self, instance_id: str, name: str) -> bool:
        """Start `name` again as a read-only replica of the current primary (GTID catch-up), or
        build it afresh from a copy of the primary when it diverged. A node slow to start or a
        refused connection is retried within `REBUILD_BUDGET`; beyond that the node is handed
        to healing (status `failed`, the health monitor replaces it), never left `rebuilding`.
        Returns whether the standby replicates now. `instance_id` may name a DB cluster, whose
        readers are rebuilt the same way. A primary whose process is gone ends the attempts at
        once: no standby can be built from it, and its loss is the health monitor's to handle
        (restarted in place), which it does only once this rebuild has ended."""
        parts = self.parts
        db = parts.state.db_resource(instance_id)
        primary_lost = []

        def attempt() -> bool:
            if parts.stopping.is_set():  # the lab is going down: start nothing it would not stop
                parts.procs.stop(name, hard=True)
                return False
            try:
                self._start_replica(db, name)
                return True
            except TRANSIENT_ERRORS as exc:
                log.warning("rebuilding standby %s: %s; starting it again", name, exc)
                parts.procs.stop(name, hard=True)
                if not pid_alive(db.nodes[db.primary].pid):
                    primary_lost.append(db.primary)
                return False
        if poll_until(lambda: attempt() or bool(primary_lost) or parts.stopping.is_set(), REBUILD_BUDGET,
                      interval=1.0) and not primary_lost and not parts.stopping.is_set():
            with parts.state.lock:
                db.nodes[name].status = "available"
            return True
        with parts.state.lock:
            db.nodes[name].status = "failed"
        why = (f"its primary {primary_lost[0]} is down" if primary_lost
               else f"not rebuilt within {REBUILD_BUDGET:.0f} s")
        parts.marker(instance_id, f"standby {name} {why}: handed to healing (it is replaced again)")
        parts.state.save()
        return False

    def _start_replica(self, db, name: str) -> None:
        """One rebuild attempt: restart and catch up, or copy the primary afresh if `name` holds
        transactions the primary never had."""
        restart_node(self.parts, name, read_only=True)
        try:
            replicate(self.parts, name, db.primary, db.nodes[db.primary], gtid_mode="current_pos",
                      timeout=REBUILD_REPLICATION_TIMEOUT)
        except Diverged as exc:
            self.parts.marker(db.id, f"standby {name} diverged from {db.primary} ({exc}); "
                                     f"building it afresh from a copy of {db.primary}")
            reseed(self.parts, name, db.primary)
            replicate(self.parts, name, db.primary, db.nodes[db.primary], gtid_mode="slave_pos",
                      timeout=REBUILD_REPLICATION_TIMEOUT)

    # unplanned failures (RDS's own monitoring acts; nobody called an API) ----------------------
    def automatic_failover(self, instance_id: str, reason: str, rebuild: bool = True,
                           failed_since: Optional[float] = None) -> None:
        """The primary crashed, hung or became unreachable: fail over to the standby, publish the
        failover with its reason, then replace the lost primary's host with a new standby.
        The outage (`db_failover_seconds`) counts from `failed_since` (monotonic): AWS's failover
        time includes noticing the failure."""
        parts = self.parts
        db = parts.state.db_instance(instance_id)
        old, new, now = self._start_failover(instance_id)
        went_down = failed_since or now
        parts.procs.stop(old, hard=True)  # a hung host is replaced, not waited for
        with parts.state.lock:
            db.nodes[old].status = "failed"
        self.promote(new, None)
        self.parts.aws_event("db-instance", instance_id, "rds", reason, None, ["failover"])
        self._finish_promotion(instance_id, old, new, went_down, rebuild=False)
        if rebuild:
            self.recover_standby(instance_id, old)

    def recover_standby(self, instance_id: str, name: str) -> None:
        """Rebuild a lost standby (its host crashed, or its AZ has power again)."""
        self._event(instance_id, "standby-recovery-started", "RDS-EVENT-0361", ["recovery"])
        self.parts.procs.stop(name, hard=True)
        time.sleep(max(self.parts.timing.sample("replacement_delay_seconds"), self.parts.endpoints.db_ttl))
        if self.rebuild_standby(instance_id, name):
            self._event(instance_id, "standby-recovery-completed", "RDS-EVENT-0362", ["recovery"])
        with self.parts.state.lock:
            self.parts.state.db_instance(instance_id).status = "available"
        self.parts.state.save()

    # reboot in place ------------------------------------------------------------------------------
    def restart_lost_primary(self, instance_id: str) -> None:
        """The primary crashed or hung while no standby could take over: its host is restarted in
        place (an outage, never a promotion of a standby that may lack acknowledged commits)."""
        self.reboot_in_place(instance_id, failover_refused=False, hard=True)

    def reboot_in_place(self, instance_id: str, failover_refused: bool, hard: bool = False) -> None:
        parts = self.parts
        db = parts.state.db_instance(instance_id)
        primary = db.primary
        if failover_refused:
            self._event(instance_id, "failover-not-attempted", "RDS-EVENT-0034", ["failover"])
        self._event(instance_id, "shutdown", "RDS-EVENT-0004", ["availability"])
        parts.endpoints.db_cut(primary)
        parts.marker(instance_id, f"endpoint unavailable (was {primary})")
        parts.procs.stop(primary, timeout=10, hard=hard)
        restart_node(parts, primary, read_only=False)
        parts.endpoints.db_open(primary)
        parts.marker(instance_id, f"endpoint writable on {primary}", categories=["writable"],
                     at=parts.endpoints.wait_db_writable())
        self._event(instance_id, "restarted", "RDS-EVENT-0006", ["availability"])
        with parts.state.lock:
            db.status = "available"
        parts.state.save()


def check_reboot(parts: LabParts, instance_id: str, force_failover: bool) -> bool:
    """Validate a RebootDBInstance and mark the instance `rebooting`; returns True when RDS would
    not attempt the requested failover because one happened too recently (RDS-EVENT-0034)."""
    with parts.state.lock:
        db = parts.state.db_instance(instance_id)
        if db.status != "available":
            raise LabInvalidState(f"DB instance {instance_id} is {db.status}, not available")
        if force_failover and not db.multi_az:
            raise LabInvalidState(f"DB instance {instance_id} is not Multi-AZ: no standby to fail over to")
        if force_failover and db.nodes[db.standby].status != "available":
            wait = parts.timing.sample("replacement_delay_seconds") + parts.endpoints.db_ttl + STANDBY_BUILD_SECONDS
            raise LabInvalidState(f"DB instance {instance_id} has no healthy standby right now "
                                  f"({db.standby} is {db.nodes[db.standby].status}: RDS replaces it on its own; "
                                  f"retry in about {wait:.0f} s)")
        last = db.last_failover_at
        too_soon = bool(force_failover and last and time.time() - last < parts.config.min_failover_interval)
        db.status = "rebooting"
    return too_soon


__all__ = ["DbMechanics", "check_reboot", "gtid_seqs", "holds_position", "DB_INSTANCE_ID"]
