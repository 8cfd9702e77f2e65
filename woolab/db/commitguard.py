"""No acknowledged commit without the standby while the network between them is impaired.

MariaDB's semi-synchronous replication waits `rpl_semi_sync_master_timeout` (the lab: 2 s) for
the standby's acknowledgement and then falls back to asynchronous replication: it acknowledges
commits the standby never received. A crash of the primary after that fallback would promote a
standby that lacks acknowledged commits. RDS Multi-AZ replicates synchronously instead, so while
an impairment touches a DB node the lab's primary waits for the standby without a timeout: a
commit the standby cannot acknowledge is not acknowledged to the shop either (an outage, not a
loss). That only holds while semi-sync is on (a standby that rejoined turns it on again once it
has caught up), so an impairment is refused while it is off. When the last such impairment
ends, the primary gets its normal timeout back (docs/lab-network.md).
"""
import logging
import time

from .. import servers
from ..errors import LabInvalidState
from ..parts import LabParts

log = logging.getLogger("woolab")
STRICT_TIMEOUT_MS = 86_400_000  # a day: longer than any impairment the lab accepts (12 h)
NORMAL_TIMEOUT_MS = 2000  # servers.mariadb_start's --rpl-semi-sync-master-timeout


def _primaries(parts: LabParts) -> list:
    with parts.state.lock:
        return [db.primary for db in parts.state.db.values() if db.standby] + \
            [cluster.primary for cluster in parts.state.clusters.values()]


def _semi_sync_on(conn) -> bool:
    """Whether the primary waits for its standby now; a write first, since a standby that caught
    up turns semi-sync back on only when it acknowledges an event."""
    servers.sql(conn, "REPLACE INTO woolab.probe VALUES (2, %s)", (time.time(),))
    rows = servers.sql(conn, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
    return bool(rows) and rows[0][1] == "ON"


def _set(conn, strict: bool) -> None:
    servers.sql(conn, "SET GLOBAL rpl_semi_sync_master_wait_no_slave = %s", (1 if strict else 0,))
    servers.sql(conn, "SET GLOBAL rpl_semi_sync_master_timeout = %s",
                (STRICT_TIMEOUT_MS if strict else NORMAL_TIMEOUT_MS,))


def _earlier_commits_acknowledged(conn) -> bool:
    """A commit already waiting when the timeout changed keeps the 2 s it started with: cut off
    now, it would time out and switch semi-sync off, and the commits after it would be
    acknowledged without the standby. The standby acknowledges by binlog position, so once a
    commit made after the change is acknowledged (semi-sync still on), every earlier one is."""
    try:
        return _semi_sync_on(conn)
    except Exception as exc:  # no acknowledgement within the admin read timeout
        log.warning("commit guard: no acknowledgement from the standby: %s", exc)
        return False


def set_strict(parts: LabParts, strict: bool) -> None:
    """Make the current primary wait for its standby without a timeout (`strict`), or restore
    the fallback. Strict is refused (nothing changed) while semi-sync is off, and until a commit
    made after the change is acknowledged: the standby is not in sync, and commits would go on
    without it."""
    if not strict:
        parts.commits_strict = False
    for name in _primaries(parts):
        try:
            with parts.admin.mysql(name, timeout=1.0, read_timeout=5.0) as conn:
                if strict and not _semi_sync_on(conn):
                    raise LabInvalidState(f"the DB standby is not in sync with {name} (semi-synchronous replication "
                                          "is off): wait for full redundancy (gameday lab status), then try again")
                _set(conn, strict)
                if strict and not _earlier_commits_acknowledged(conn):
                    _restore(parts, name)
                    raise LabInvalidState(f"the DB standby did not acknowledge {name}'s commits: wait for full "
                                          "redundancy (gameday lab status), then try again")
        except LabInvalidState:
            raise
        except Exception as exc:  # a crashed or frozen primary: nothing to set
            log.warning("commit guard: could not set %s strict=%s: %s", name, strict, exc)
            continue
        parts.marker(name, "commits wait for the standby without a timeout" if strict
                     else "commits fall back to asynchronous after 2 s without the standby")
    if strict:
        parts.commits_strict = True


def strict_on_promotion(parts: LabParts, name: str) -> None:
    """Make a writer promoted while the guard holds wait for its readers without a timeout, as
    its predecessor did: a later impairment that cuts its readers too calls no guard, and with
    MariaDB's 2 s fallback it would acknowledge commits alone that a crash then loses. Called
    only when a reader follows the new writer (with none, it acknowledges alone, as the lab does
    while a standby is rebuilt)."""
    if not parts.commits_strict:
        return
    try:
        with parts.admin.mysql(name, timeout=1.0, read_timeout=5.0) as conn:
            _set(conn, True)
    except Exception as exc:  # a writer that does not answer: the health monitor's to handle
        log.warning("commit guard: could not make the promoted writer %s strict: %s", name, exc)
        return
    parts.marker(name, "commits wait for the standby without a timeout")


def _restore(parts: LabParts, name: str) -> None:
    """The normal timeout back, on a fresh connection (the one that timed out may be unusable)."""
    try:
        with parts.admin.mysql(name, timeout=1.0, read_timeout=5.0) as conn:
            _set(conn, False)
    except Exception as exc:
        log.warning("commit guard: could not restore %s's timeout: %s", name, exc)
