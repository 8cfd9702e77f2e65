"""Lab-only fault actions: crash (kill -9) the DB primary or the cache primary under load.

They prove the automatic path of Multi-AZ: nobody calls an API, RDS's or ElastiCache's own
monitoring notices the loss, fails over, publishes its events, and rebuilds the lost node. The
result has the shape of every other fault (docs/architecture.md, "Fault results") plus the time
redundancy was back (`redundancy_restored_at`).
"""
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails
from chaosext.aws import aws_client
from chaosext.elasticache.actions import PrimaryLoss
from chaosext.errors import ActivityError
from chaosext.rds.probes import describe_instance, events_since, instance_target, placement
from chaosext.fault_model import spec
from chaosext.recovery import Fault, dry_run_result, run_fault
from groundfloor.timefmt import iso

__all__ = ["crash_db_primary", "crash_cache_primary"]

logger = logging.getLogger("chaostoolkit")


CRASH_REFUSAL = ("this fault exists only in the local lab: AWS offers no way to crash an RDS or "
                 "ElastiCache host (on AWS use rds-force-failover, elasticache-test-failover or "
                 "the FIS AZ power interruption)")


def lab_control_url(configuration: Configuration = None, refusal: str = CRASH_REFUSAL) -> str:
    """The lab's control routes: `lab_control_url`, $GAMEDAY_LAB_CONTROL_URL, or a loopback
    $AWS_ENDPOINT_URL (the lab serves both on one port). Refuses anything that is not the lab
    with `refusal` (one line: what to use on AWS instead)."""
    url = ((configuration or {}).get("lab_control_url") or os.environ.get("GAMEDAY_LAB_CONTROL_URL")
           or os.environ.get("AWS_ENDPOINT_URL") or "")
    host = urllib.parse.urlsplit(url).hostname or ""
    if os.environ.get("GAMEDAY_TARGET") == "aws" or not (host == "localhost" or host.startswith("127.")):
        raise ActivityError(refusal)
    return url.rstrip("/")


def lab_call(configuration: Configuration, path: str, method: str = "GET",
             refusal: str = CRASH_REFUSAL) -> Dict[str, Any]:
    """One call of the lab's control routes; a refusal (4xx) becomes one ActivityError line."""
    url = lab_control_url(configuration, refusal) + path
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise ActivityError(f"the lab refused {path.split('?')[0]}: {detail}") from None
    except OSError as exc:
        raise ActivityError(f"the lab's control routes are not reachable at {url} ({exc})") from None


def _lab(configuration: Configuration, path: str, method: str = "GET") -> Dict[str, Any]:
    return lab_call(configuration, path, method)


def _redundant_db(status: Dict[str, Any], instance_id: str) -> bool:
    db = status["db_instances"][instance_id]
    return db["status"] == "available" and all(n["status"] == "available" for n in db["nodes"].values())


def _redundant_cache(status: Dict[str, Any], group_id: str) -> bool:
    group = status["replication_groups"][group_id]
    members = group["node_groups"][next(iter(group["node_groups"]))]["members"]
    return group["status"] == "available" and len(members) >= 2 and all(
        status["cache_clusters"][m]["status"] == "available" for m in members)


def crash_db_primary(db_instance_identifier: str, wait: bool = True, timeout: Optional[float] = None,
                     poll_interval: float = 0.5, measure_data_plane: bool = True,
                     dry_run: Optional[bool] = None, configuration: Configuration = None,
                     secrets: Secrets = None) -> Dict[str, Any]:
    """Kill -9 the lab DB instance's primary, so Multi-AZ fails over on its own (lab only).

    With `wait`, returns once the instance is `available` in the other AZ with a rebuilt standby
    (and the MySQL endpoint, when configured, is writable again): injected / completed / writable /
    redundancy-restored timestamps, the AZs before and after, and the events RDS published.
    """
    client = aws_client("rds", configuration, secrets)
    instance = describe_instance(client, db_instance_identifier)
    action = "kill -9 of the primary's mariadbd (lab)"
    guardrails.check_target(instance_target(client, instance), action, configuration)
    guardrails.require_multi_az(instance, action)
    before = placement(instance)
    lab_status = _lab(configuration, "/_lab/status")
    primary = lab_status["db_instances"][db_instance_identifier]["primary"]
    extra: Dict[str, Any] = {"crashed_node": primary}

    def poll():
        now = placement(describe_instance(client, db_instance_identifier))
        moved = now["status"] == "available" and now["az"] != before["az"]
        redundant = moved and _redundant_db(_lab(configuration, "/_lab/status"), db_instance_identifier)
        if redundant:
            extra["redundancy_restored_at"] = iso(time.time())
        return redundant, now

    fault = Fault(spec("db-primary-crash"), db_instance_identifier, action, before,
                  lambda: _lab(configuration, f"/_lab/crash?id={primary}", "POST"), poll,
                  lambda since: events_since(client, "db-instance", db_instance_identifier, since),
                  extra=extra)
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would kill -9 {primary}, the primary of {db_instance_identifier}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane, configuration, secrets)


def crash_cache_primary(replication_group_id: str, node_group_id: Optional[str] = None, wait: bool = True,
                        timeout: Optional[float] = None, poll_interval: float = 0.5,
                        measure_data_plane: bool = True,
                        dry_run: Optional[bool] = None, configuration: Configuration = None,
                        secrets: Secrets = None) -> Dict[str, Any]:
    """Kill -9 the lab replication group's primary node: automatic failover, node replacement (lab only).

    With `wait`, returns once another node is primary and the group is back to full redundancy:
    the same result as `test_failover`, plus the crashed node and `redundancy_restored_at`.
    """
    loss = PrimaryLoss(replication_group_id, node_group_id, "kill -9 of the primary's redis-server (lab)",
                       configuration, secrets)
    primary = loss.before["node"]
    fault = loss.fault("cache-primary-crash", "kill -9 of the primary's redis-server (lab)",
                       lambda: _lab(configuration, f"/_lab/crash?id={primary}", "POST"))
    fault.extra = {"crashed_node": primary}

    def poll():
        moved, now = loss.poll()
        redundant = moved and _redundant_cache(_lab(configuration, "/_lab/status"), replication_group_id)
        if redundant:
            fault.extra["redundancy_restored_at"] = iso(time.time())
        return redundant, now
    fault.poll = poll
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would kill -9 {primary}, the primary of {replication_group_id}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane, configuration, secrets)
