"""RDS fault actions: Multi-AZ instance failover, DB cluster failover, plain reboot.

Each checks the guardrails before any mutating call, honours dry runs, and (with `wait`)
returns the fault result once the writer moved and, when `mysql_host` is configured, once the
MySQL endpoint takes writes again (the data-plane RTO). Without a `timeout`, the wait is
derived from the configured RTO threshold (chaosext.thresholds: twice the threshold).
"""
import logging
import time
from typing import Any, Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails
from chaosext.aws import aws_call, aws_client
from chaosext.errors import ActivityError
from chaosext.fault_model import spec
from chaosext.recovery import Fault, dry_run_result, run_fault
from chaosext.rds.probes import describe_cluster, describe_instance, events_since, instance_target, placement, writer_of
from chaosext.rds.targets import checked_cluster, checked_instance

__all__ = ["force_failover", "failover_db_cluster", "reboot_db_instance"]

logger = logging.getLogger("chaostoolkit")


def force_failover(db_instance_identifier: str, wait: bool = True,
                   timeout: Optional[float] = None, poll_interval: float = 1.0,
                   measure_data_plane: bool = True, dry_run: Optional[bool] = None, configuration: Configuration = None,
                   secrets: Secrets = None) -> Dict[str, Any]:
    """Reboot a Multi-AZ DB instance through a failover, so the standby becomes the primary.

    Refuses (changing nothing) unless the instance is Multi-AZ, not a DB cluster's member (nor
    a cluster's id), and passes the tag, allow-list, region and account guardrails. With
    `wait`, returns once the instance is `available` in the other AZ
    (and the MySQL endpoint, when configured, is writable again): injected / completed /
    writable timestamps, the AZs before and after and the failover events RDS reported. Fails
    when RDS declines the failover because one happened recently (RDS-EVENT-0034).
    """
    client = aws_client("rds", configuration, secrets)
    action = "RebootDBInstance(ForceFailover=True)"
    instance = checked_instance(client, db_instance_identifier, action, configuration)
    before = placement(instance)
    injected = {}

    def inject() -> None:
        injected["at"] = time.time()
        aws_call(client, "reboot_db_instance", f"DB instance {db_instance_identifier}",
                 DBInstanceIdentifier=db_instance_identifier, ForceFailover=True)

    def poll():
        now = placement(describe_instance(client, db_instance_identifier))
        moved = now["az"] != before["az"]
        if now["status"] == "available" and not moved:
            _raise_if_not_attempted(client, db_instance_identifier, injected["at"])
        return now["status"] == "available" and moved, now

    fault = Fault(
        spec("rds-force-failover"), db_instance_identifier, action, before, inject, poll,
        lambda since: events_since(client, "db-instance", db_instance_identifier, since))
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would reboot DB instance {db_instance_identifier} with "
                              f"ForceFailover=True, moving the primary from {before['az']} to "
                              f"{before['secondary_az']}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane,
                     configuration, secrets)


def failover_db_cluster(db_cluster_identifier: str,
                        target_db_instance_identifier: Optional[str] = None,
                        wait: bool = True, timeout: Optional[float] = None, poll_interval: float = 1.0,
                        measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Fail a Multi-AZ DB cluster or Aurora cluster over, so a reader becomes the writer.

    Without `target_db_instance_identifier` RDS picks the reader (the parameter is then not
    sent at all). Refuses (changing nothing) unless the cluster is `available`, has a reader,
    has its writer and readers in at least two AZs, is a cluster (not an instance's id) and
    passes the tag, allow-list, region and account guardrails. With `wait`, returns once the
    cluster is `available` with a
    different writer: timestamps, writer before and after, the cluster's failover events.
    """
    client = aws_client("rds", configuration, secrets)
    action = "FailoverDBCluster"
    cluster, _ = checked_cluster(client, db_cluster_identifier, action, configuration,
                                 target_db_instance_identifier)
    before = writer_of(cluster)
    params = {"DBClusterIdentifier": db_cluster_identifier}
    if target_db_instance_identifier:
        params["TargetDBInstanceIdentifier"] = target_db_instance_identifier

    def inject() -> None:
        aws_call(client, "failover_db_cluster", f"DB cluster {db_cluster_identifier}", **params)

    def poll():
        now = writer_of(describe_cluster(client, db_cluster_identifier))
        moved = now["writer"] not in (None, before["writer"]) and (
            not target_db_instance_identifier or now["writer"] == target_db_instance_identifier)
        return now["status"] == "available" and moved, now

    fault = Fault(
        spec("rds-cluster-failover"), db_cluster_identifier, action, before, inject, poll,
        lambda since: events_since(client, "db-cluster", db_cluster_identifier, since))
    if guardrails.is_dry_run(configuration, dry_run):
        to = target_db_instance_identifier or f"one of {before['readers']} (RDS chooses)"
        return dry_run_result(fault, f"would fail DB cluster {db_cluster_identifier} over from "
                              f"writer {before['writer']} to {to}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane,
                     configuration, secrets)


def reboot_db_instance(db_instance_identifier: str, wait: bool = True,
                       timeout: Optional[float] = None, poll_interval: float = 1.0,
                       measure_data_plane: bool = True, dry_run: Optional[bool] = None, configuration: Configuration = None,
                       secrets: Secrets = None) -> Dict[str, Any]:
    """Reboot a DB instance in place (no failover): the database is down until it restarts.

    Refuses (changing nothing) when the tag, region or account guardrails fail. With `wait`,
    returns once the instance is `available` again and restarted (RDS-EVENT-0006).
    """
    client = aws_client("rds", configuration, secrets)
    action = "RebootDBInstance"
    instance = describe_instance(client, db_instance_identifier)
    guardrails.check_target(instance_target(client, instance), action, configuration)
    before = placement(instance)
    seen = {"down": False}

    def inject() -> None:
        answer = aws_call(client, "reboot_db_instance", f"DB instance {db_instance_identifier}",
                          DBInstanceIdentifier=db_instance_identifier)
        seen["down"] = answer["DBInstance"].get("DBInstanceStatus") != "available"

    def poll():
        now = placement(describe_instance(client, db_instance_identifier))
        seen["down"] = seen["down"] or now["status"] != "available"
        return now["status"] == "available" and seen["down"], now

    fault = Fault(spec("rds-reboot"), db_instance_identifier, action, before, inject, poll,
                  lambda since: events_since(client, "db-instance", db_instance_identifier, since))
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would reboot DB instance {db_instance_identifier} "
                              "without failover")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane,
                     configuration, secrets)


def _raise_if_not_attempted(client, db_instance_identifier: str, since: float) -> None:
    for event in events_since(client, "db-instance", db_instance_identifier, since - 1.0):
        if event["kind"] == "failover-not-attempted":
            raise ActivityError(
                f"RebootDBInstance(ForceFailover=True) on DB instance {db_instance_identifier}: "
                f"RDS did not attempt the failover ({event['event_id']}: {event['message']})")
