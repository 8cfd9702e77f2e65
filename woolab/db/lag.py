"""Replica lag of the DB cluster's readers: read it, and make one reader lag on purpose.

AWS publishes a reader's lag as the CloudWatch metric `ReplicaLag`, the `Seconds_Behind_Master`
field of `SHOW REPLICA STATUS` (RDS User Guide, "Monitoring MariaDB read replicas";
docs/db-cluster.md). The lab reads the same field from each reader, with its admin user as
AWS's monitoring does, and adds how many of the writer's transactions the reader has not applied
yet (GTID positions, per replication domain).

A reader lags on purpose through MariaDB's delayed replication (`MASTER_DELAY`): it still
receives and acknowledges every commit at once (semi-sync holds, nothing is lost), but applies
each one only `seconds` after the writer committed it, so reads through it are that much
behind. The delay lasts until it is set to 0, or the reader is promoted or rebuilt. A promotion
of a delayed reader waits until it applied everything it received, as RDS completes a failover
only once the readers "have applied outstanding transactions" (docs/db-cluster.md): a lagging
reader makes the failover that much slower, and loses nothing.
"""
import logging
import time
from typing import Any, Dict, Optional

import pymysql

from .. import servers
from ..errors import LabInvalidState, LabNotFound
from ..parts import LabParts
from .setup import gtid_seqs

log = logging.getLogger("woolab")

MAX_DELAY_SECONDS = 300  # a lag for a game day; a failover that promotes the reader waits up to this

__all__ = ["replica_lag", "set_delay", "delay_of", "transactions_behind", "MAX_DELAY_SECONDS"]


def transactions_behind(writer_pos: Optional[str], reader_pos: Optional[str]) -> Optional[int]:
    """How many of the writer's transactions (GTID position) the reader's position lacks, summed
    over replication domains; None when either position is unknown."""
    if writer_pos is None or reader_pos is None:
        return None
    have = gtid_seqs(reader_pos)
    return sum(max(0, seq - have.get(domain, 0)) for domain, seq in gtid_seqs(writer_pos).items())


def _number(value: Any) -> Optional[float]:
    return None if value in (None, "") else float(value)


def _reader_status(parts: LabParts, name: str, writer_pos: Optional[str]) -> Dict[str, Any]:
    """One reader's replication status; a reader that does not answer has no lag figure."""
    try:
        with parts.admin.mysql(name, timeout=1.0, read_timeout=2.0) as conn:
            rows = servers.sql_dict(conn, "SHOW SLAVE STATUS")
            applied = servers.sql(conn, "SELECT @@gtid_slave_pos")[0][0]
    except Exception as exc:  # a member that is down or restarting has no lag to read
        return {"lag_seconds": None, "why": f"does not answer: {type(exc).__name__}"}
    if not rows:
        return {"lag_seconds": None, "why": "not replicating"}
    status = rows[0]
    running = status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    return {"lag_seconds": _number(status.get("Seconds_Behind_Master")),
            "replicating": running, "delay_seconds": int(status.get("SQL_Delay") or 0),
            "transactions_behind": transactions_behind(writer_pos, applied),
            "why": None if running else "replication stopped"}


def replica_lag(parts: LabParts, cluster_id: str) -> Dict[str, Any]:
    """Every reader's lag now: seconds behind the writer (`Seconds_Behind_Master`, None when
    replication is not running, as AWS reports -1) and transactions not applied yet."""
    with parts.state.lock:
        cluster = parts.state.db_cluster(cluster_id)
        writer, readers = cluster.primary, list(cluster.readers)
        azs = {name: cluster.nodes[name].az for name in cluster.nodes}
    at = time.time()
    try:
        with parts.admin.mysql(writer, timeout=1.0, read_timeout=2.0) as conn:
            writer_pos = servers.sql(conn, "SELECT @@gtid_binlog_pos")[0][0]
    except Exception:  # the writer is failing over: the readers' seconds still tell
        writer_pos = None
    rows = [{"member": name, "az": azs[name], **_reader_status(parts, name, writer_pos)}
            for name in readers]
    return {"at": at, "cluster": cluster_id, "writer": writer, "readers": rows}


def _check_reader(parts: LabParts, cluster_id: str, member: str) -> None:
    with parts.state.lock:
        cluster = parts.state.db_cluster(cluster_id)
        if member not in cluster.nodes:
            raise LabNotFound(f"DB instance {member} is not a member of DB cluster {cluster_id}: "
                              f"name one of its readers ({', '.join(cluster.readers)})")
        if member == cluster.primary:
            raise LabInvalidState(f"DB instance {member} is the writer of DB cluster {cluster_id}: "
                                  f"only a reader can lag (readers: {', '.join(cluster.readers)})")
        if cluster.nodes[member].status != "available":
            raise LabInvalidState(f"reader {member} is {cluster.nodes[member].status}, not available")


def _apply_delay(conn, seconds: int) -> None:
    """Set the delay (MariaDB changes it only with both replication threads stopped, for the
    milliseconds this takes; the other reader acknowledges commits meanwhile)."""
    servers.sql(conn, "STOP SLAVE")
    try:
        servers.sql(conn, f"CHANGE MASTER TO MASTER_DELAY = {int(seconds)}")
    finally:
        servers.sql(conn, "START SLAVE")


def set_delay(parts: LabParts, cluster_id: str, member: str, seconds: Any) -> Dict[str, Any]:
    """Make reader `member` apply the writer's commits `seconds` late (0: on time again).
    Bad input is refused with nothing changed."""
    try:
        delay = int(str(seconds))
    except ValueError:
        raise LabInvalidState(f"--seconds must be a whole number of seconds, not {seconds!r}") from None
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise LabInvalidState(f"--seconds must be between 0 and {MAX_DELAY_SECONDS}, not {delay}")
    _check_reader(parts, cluster_id, member)
    try:
        with parts.admin.mysql(member) as conn:
            _apply_delay(conn, delay)
    except pymysql.MySQLError as exc:
        raise LabInvalidState(f"reader {member} refused the delay: {exc}") from None
    what = f"reader {member} applies commits {delay} s late" if delay else f"reader {member} lag lifted"
    parts.marker(cluster_id, what, categories=["replica-lag"])
    log.info("%s", what)
    return {"cluster": cluster_id, "member": member, "delay_seconds": delay}


def delay_of(conn) -> int:
    """The reader's replication delay in seconds (0: none, or not a replica). A promotion waits
    that much longer for the reader to apply what it received: changing the delay then would
    discard its relay log, and with it commits the lost writer can no longer send."""
    rows = servers.sql_dict(conn, "SHOW SLAVE STATUS")
    return int(rows[0].get("SQL_Delay") or 0) if rows else 0
