"""Replica lag of an AWS Multi-AZ DB cluster's members, read from CloudWatch during a game day.

RDS publishes a Multi-AZ DB cluster reader's lag as the CloudWatch metric `ReplicaLag`
(namespace `AWS/RDS`, dimension `DBInstanceIdentifier`, seconds; RDS User Guide, *Multi-AZ DB
cluster deployments*, "Replica lag and Multi-AZ DB clusters", multi-az-db-clusters-concepts.html;
-1 when replication is not running, *Monitoring MariaDB read replicas*), and RDS sends its metrics
to CloudWatch once a minute (*Monitoring Amazon RDS metrics with Amazon CloudWatch*). So on AWS
the pack cannot sample each second as it does on the lab: it asks CloudWatch (`GetMetricStatistics`, the permission the alert probes already need) for each member's
maximum per minute since the run began, once a minute while the run goes on and once at its end,
and appends the minutes it had not written yet to the run directory's `replica-lag.jsonl`, in the
lab sampler's line shape with `source` "cloudwatch". Every member of the cluster is asked: the
writer publishes no lag, and a member that changed role during the failover has minutes while it
was a reader. A reading that fails (a denied permission, a throttled call) costs that reading
only, and is said once on the console.
"""
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext.aws import aws_call, aws_client
from chaosext.errors import GamedayError

from groundfloor import run_files
from groundfloor.timefmt import iso, period_boundary

__all__ = ["CloudWatchLag", "lag_reader", "PERIOD_SECONDS", "SOURCE"]

PERIOD_SECONDS = 60  # ReplicaLag's resolution in CloudWatch
SOURCE = "cloudwatch"


def _line(member: str, az: Optional[str], point: Dict[str, Any]) -> Dict[str, Any]:
    t = point["Timestamp"].timestamp()
    value = point.get("Maximum")
    measured = isinstance(value, (int, float)) and value >= 0  # -1: replication not running
    return {"at": iso(t), "t": round(t, 3), "member": member, "az": az,
            "lag_seconds": value if measured else None, "transactions_behind": None,
            "source": SOURCE, "period_seconds": PERIOD_SECONDS,
            **({} if measured else {"why": f"ReplicaLag {value}: replication not running"})}


class CloudWatchLag:
    """Reads the members' `ReplicaLag` per minute from `started` on; `sample()` appends the
    minutes not written yet and returns how many lines it wrote."""

    def __init__(self, client, members: Dict[str, Optional[str]], out: Path, started: float,
                 say=print):
        self.client, self.members, self.out, self.started, self.say = client, members, out, started, say
        self.written: set = set()
        self.failure_said = False

    def _points(self, member: str, now: float) -> List[dict]:
        answer = aws_call(self.client, "get_metric_statistics", f"DB instance {member}",
                          Namespace="AWS/RDS", MetricName="ReplicaLag",
                          Dimensions=[{"Name": "DBInstanceIdentifier", "Value": member}],
                          StartTime=period_boundary(self.started, PERIOD_SECONDS, up=False),
                          EndTime=period_boundary(now, PERIOD_SECONDS, up=True),
                          Period=PERIOD_SECONDS, Statistics=["Maximum"])
        return answer.get("Datapoints", [])

    def sample(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        lines = []
        for member, az in sorted(self.members.items()):
            try:
                points = self._points(member, now)
            except GamedayError as exc:
                if not self.failure_said:
                    self.say(f"gameday: replica lag not read from CloudWatch: {exc}")
                    self.failure_said = True
                return 0
            lines += [_line(member, az, p) for p in points]
        new = sorted((line for line in lines if (line["member"], line["t"]) not in self.written),
                     key=lambda line: (line["t"], line["member"]))
        if new:
            with open(self.out, "a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(line) + "\n" for line in new))
            self.written.update((line["member"], line["t"]) for line in new)
        return len(new)


def lag_reader(clusters: Optional[Dict[str, dict]], configuration: Dict[str, Any], secrets: Dict[str, Any],
               run_dir: Path, started: float, say=print) -> Optional[CloudWatchLag]:
    """A reader for the DB clusters the preflight found (`facts["clusters"]`: each with its
    members' AZs), or None when the run has no DB cluster or no CloudWatch client can be made."""
    members = {member: az for cluster in (clusters or {}).values()
               for member, az in (cluster.get("zones") or {}).items()}
    if not members:
        return None
    try:
        client = aws_client("cloudwatch", configuration, secrets)
    except GamedayError as exc:
        say(f"gameday: replica lag not read from CloudWatch: {exc}")
        return None
    return CloudWatchLag(client, members, run_dir / run_files.REPLICA_LAG, started, say)
