"""No acknowledged commit without the standby while the network between them is impaired.

MariaDB's semi-synchronous replication waits `rpl_semi_sync_master_timeout` (the lab: 2 s) for
the standby's acknowledgement and then falls back to asynchronous replication: it acknowledges
commits the standby never received. A crash of the primary after that fallback would promote a
standby that lacks acknowledged commits. RDS Multi-AZ replicates synchronously instead, so while
an impairment touches a DB node the lab's primary waits for the standby without a timeout: a
commit the standby cannot acknowledge is not acknowledged to the shop either (an outage, not a
loss). When the last such impairment ends, the primary gets its normal timeout back
(docs/lab-network.md).
"""
import logging

from .. import servers
from ..parts import LabParts

log = logging.getLogger("woolab")
STRICT_TIMEOUT_MS = 86_400_000  # a day: longer than any impairment the lab accepts (12 h)
NORMAL_TIMEOUT_MS = 2000  # servers.mariadb_start's --rpl-semi-sync-master-timeout


def set_strict(parts: LabParts, strict: bool) -> None:
    """Make the current primary wait for its standby without a timeout (`strict`), or restore
    the fallback. A node that does not answer is skipped: it is down, and starts with defaults."""
    with parts.state.lock:
        primaries = [db.primary for db in parts.state.db.values() if db.standby]
    for name in primaries:
        try:
            with parts.admin.mysql(name, timeout=1.0, read_timeout=2.0) as conn:
                servers.sql(conn, "SET GLOBAL rpl_semi_sync_master_wait_no_slave = %s", (1 if strict else 0,))
                servers.sql(conn, "SET GLOBAL rpl_semi_sync_master_timeout = %s",
                            (STRICT_TIMEOUT_MS if strict else NORMAL_TIMEOUT_MS,))
        except Exception as exc:  # a crashed or frozen primary: nothing to set
            log.warning("commit guard: could not set %s strict=%s: %s", name, strict, exc)
            continue
        parts.marker(name, "commits wait for the standby without a timeout" if strict
                     else "commits fall back to asynchronous after 2 s without the standby")
