"""A Multi-AZ DB cluster in the lab: a writer and two readers of MariaDB, one per AZ.

As the RDS User Guide describes Multi-AZ DB clusters (docs/db-cluster.md): the writer replicates
to both readers semi-synchronously and a commit is acknowledged once at least one reader has it
(MariaDB's semi-sync master waits for one replica's acknowledgement, `servers.mariadb_start`);
the readers serve reads; FailoverDBCluster promotes a reader (the named one, or the most
up-to-date) and the old writer comes back as a reader. Every step lands in the event log under
source type `db-cluster` with the cluster events' ids (RDS-EVENT-0073 started, 0071 completed,
0069 failed).
"""
import logging
import time
from typing import Optional

from .. import servers
from ..config import DB_CLUSTER_ID
from ..errors import LabInvalidState, LabNotFound
from ..parts import LabParts
from ..state import DbCluster, Endpoint
from .commitguard import strict_on_promotion
from .failover import DbMechanics
from .setup import gtid_seqs, replicate, restart_node, start_replicated

log = logging.getLogger("woolab")

MEMBER_NAMES = tuple(f"{DB_CLUSTER_ID}-instance-{i}" for i in (1, 2, 3))


def start_cluster(parts: LabParts) -> None:
    """Start the three members, create the users on the writer, make both others its readers;
    record the cluster."""
    cfg = parts.config
    names = list(MEMBER_NAMES)
    nodes, version = start_replicated(parts, names, ("writer", "reader"))
    with parts.state.lock:
        parts.state.clusters[DB_CLUSTER_ID] = DbCluster(
            id=DB_CLUSTER_ID, engine="mariadb", engine_version=version,
            endpoint=Endpoint(cfg.db_cluster_endpoint_name, cfg.db_endpoint_port),
            reader_endpoint=Endpoint(cfg.db_reader_endpoint_name, cfg.db_endpoint_port),
            primary=names[0], nodes=nodes, endpoint_node=names[0],
            member_endpoints={name: cfg.db_member_endpoint_name(name) for name in names})


def check_failover(parts: LabParts, cluster_id: str, target: Optional[str]) -> str:
    """Validate a FailoverDBCluster and mark the cluster `failing-over`; returns the reader to
    promote: `target`, or the most up-to-date available reader. Refusals change nothing."""
    with parts.state.lock:
        cluster = parts.state.db_cluster(cluster_id)
        if cluster.status != "available":
            raise LabInvalidState(f"DB cluster {cluster_id} is {cluster.status}, not available")
        readers = [r for r in cluster.readers if cluster.nodes[r].status == "available"]
        if target is not None and target not in cluster.readers:
            what = "is the writer" if target == cluster.primary else "is not a member"
            raise LabNotFound(f"DB instance {target} {what} of DB cluster {cluster_id}: "
                              f"name one of its readers ({', '.join(cluster.readers)})")
        if target is not None and target not in readers:
            raise LabInvalidState(f"reader {target} of DB cluster {cluster_id} is "
                                  f"{cluster.nodes[target].status}, not available")
        if not readers:
            raise LabInvalidState(f"DB cluster {cluster_id} has no available reader to promote")
        cluster.status = "failing-over"
    return target or most_up_to_date(parts, readers)


def most_up_to_date(parts: LabParts, readers: list) -> str:
    """The reader that received the most of the writer's transactions (ties: the first by name);
    a reader that does not answer counts as the least."""
    def received(name: str) -> tuple:
        try:
            with parts.admin.mysql(name, timeout=1.0, read_timeout=2.0) as conn:
                status = servers.sql_dict(conn, "SHOW SLAVE STATUS")
                position = (status[0].get("Gtid_IO_Pos") if status else None) or \
                    servers.sql(conn, "SELECT @@gtid_current_pos")[0][0]
        except Exception as exc:  # a reader that cannot answer is not the one to promote
            log.warning("cluster failover: reader %s does not answer: %s", name, exc)
            return (-1,)
        return tuple(seq for _domain, seq in sorted(gtid_seqs(position or "").items())) or (0,)
    return max(sorted(readers), key=received)


class ClusterMechanics:
    """FailoverDBCluster and the automatic failover of a cluster whose writer failed."""

    def __init__(self, parts: LabParts, db: DbMechanics):
        self.parts, self.db = parts, db

    def _event(self, cluster_id: str, kind: str, event_id: str, **fields) -> None:
        self.parts.aws_event("db-cluster", cluster_id, "rds", kind, event_id, ["failover"], **fields)

    def _member_event(self, name: str, kind: str, event_id: str) -> None:
        """An event of one member: a cluster's members are DB instances with their own events."""
        self.parts.aws_event("db-instance", name, "rds", kind, event_id, ["availability"])

    def failover(self, cluster_id: str, target: str, failed_since: Optional[float] = None,
                 rejoin: bool = True) -> None:
        """Promote `target`: the old writer stops taking writes (or is already lost), `target`
        applies every transaction the writer had, the other reader follows `target`, the
        cluster endpoint moves after the profile's outage, and the old writer rejoins as a
        reader. `failed_since` (monotonic) marks an automatic failover of a writer that crashed
        or hung: the outage counts from then, and what the readers received is promoted. Without
        `rejoin` (its AZ has no power) the old writer stays `failed` until the power returns."""
        parts = self.parts
        cluster = parts.state.db_cluster(cluster_id)
        old = cluster.primary
        automatic = failed_since is not None
        went_down = failed_since or time.monotonic()
        self._event(cluster_id, "failover-started", "RDS-EVENT-0073", name=target)
        parts.marker(cluster_id, f"cluster endpoint unavailable (was {old})")
        position = None if automatic else self.db.quiesce(old)
        parts.procs.stop(old, hard=True)  # RDS terminates the old writer, then promotes a reader
        with parts.state.lock:
            cluster.nodes[old].status = "failed" if automatic else "rebuilding"
        self.db.promote(target, position)
        self._follow(cluster, target)
        if any(cluster.nodes[r].status == "available" for r in cluster.readers if r != target):
            strict_on_promotion(parts, target)
        self._open_endpoint(cluster, old, target, went_down)
        time.sleep(parts.endpoints.db_ttl)  # the old address refuses until cached answers expired
        rejoined = self.db.rebuild_standby(cluster_id, old) if rejoin else True
        with parts.state.lock:
            cluster.status = "available"
            cluster.last_failover_at = time.time()
        if rejoined:
            self._event(cluster_id, "failover-completed", "RDS-EVENT-0071", name=target)
        else:
            self._event(cluster_id, "failover-failed", "RDS-EVENT-0069")
        parts.state.save()

    def recover_reader(self, cluster_id: str, name: str) -> None:
        """Rebuild a lost reader (its host crashed or hung, or it stopped replicating)."""
        self.parts.procs.stop(name, hard=True)
        time.sleep(max(self.parts.timing.sample("replacement_delay_seconds"), self.parts.endpoints.db_ttl))
        self.db.rebuild_standby(cluster_id, name)
        with self.parts.state.lock:
            self.parts.state.db_cluster(cluster_id).status = "available"
        self.parts.state.save()

    def restart_lost_writer(self, cluster_id: str) -> None:
        """The writer crashed or hung while no reader could take over: its host is restarted in
        place, as the instance topology restarts a primary without a standby. An outage, never a
        promotion of a reader that may lack acknowledged commits; the cluster endpoint keeps
        naming the writer, and readers that come back follow it (the healer rebuilds them)."""
        parts = self.parts
        cluster = parts.state.db_cluster(cluster_id)
        writer = cluster.primary
        self._member_event(writer, "shutdown", "RDS-EVENT-0004")
        parts.marker(cluster_id, f"cluster endpoint unavailable (was {writer})")
        parts.procs.stop(writer, timeout=10, hard=True)
        restart_node(parts, writer, read_only=False)
        parts.marker(cluster_id, f"endpoint writable on {writer}", categories=["writable"],
                     at=parts.endpoints.wait_db_writable())
        self._member_event(writer, "restarted", "RDS-EVENT-0006")
        with parts.state.lock:
            cluster.status = "available"
        parts.state.save()

    def _follow(self, cluster: DbCluster, writer: str) -> None:
        """Point every reader that still answers at the new writer (GTID catch-up)."""
        for name in cluster.readers:
            if name == writer or cluster.nodes[name].status != "available":
                continue
            try:
                replicate(self.parts, name, writer, cluster.nodes[writer], gtid_mode="slave_pos")
            except Exception as exc:  # the healer rebuilds a reader that cannot follow
                log.warning("cluster failover: reader %s did not follow %s: %s", name, writer, exc)
                with self.parts.state.lock:
                    cluster.nodes[name].status = "failed"

    def _open_endpoint(self, cluster: DbCluster, old: str, new: str, went_down: float) -> None:
        """Hold the outage for the profile's duration, move the cluster endpoint to `new`, record
        the first commit through it, and swap the roles."""
        parts = self.parts
        held = parts.timing.sample("db_cluster_failover_seconds") - (time.monotonic() - went_down)
        if held > 0:  # the endpoint's DNS flip takes a while: shoppers must meet the outage
            time.sleep(held)
        with parts.state.lock:
            cluster.endpoint_node = new
            cluster.primary = new
            cluster.nodes[new].role, cluster.nodes[old].role = "writer", "reader"
        parts.marker(cluster.id, f"endpoint writable on {new}", categories=["writable"],
                     at=parts.endpoints.wait_db_writable())


__all__ = ["ClusterMechanics", "MEMBER_NAMES", "check_failover", "most_up_to_date", "start_cluster"]
