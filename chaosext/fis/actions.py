"""AWS FIS fault actions: run an experiment (any template), the RDS and ElastiCache FIS actions,
the AZ power interruption scenario, and the `stop_experiment` rollback.

The same calls run against AWS and against the lab (whose AWS-compatible API implements the FIS
subset these need). Each checks the guardrails before creating anything: every target must
select by the allow tag (configuration `chaos_allow_tag`, default chaos:allowed=true) or name
resources that carry it. Configuration keys: `fis_role_arn` (the IAM role FIS assumes; required
when a template is created), `chaos_allow_tag`, the region/account allow-lists and
`gameday_dry_run` (see chaosext.guardrails). An experiment still running when the activity is
interrupted (safeguard, SIGTERM, Ctrl-C) or times out is stopped with StopExperiment.
"""
import logging
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import thresholds
from chaosext.aws import aws_client
from chaosext.errors import ActivityError
from chaosext.fault_model import FaultSpec, service_of_data_plane, spec
from chaosext.fis import templates
from chaosext.fis.impairment import ImpairmentRun, Plan, checked_cut, positive_numbers
from chaosext.fis.placement import PRIMARY, node_zones, resolve_zone
from chaosext.fis.experiment import FisRun, stop_live, stop_one
from chaosext.guardrails import DEFAULT_ALLOW_TAG
from chaosext.rds.probes import describe_cluster, writer_of
from chaosext.rds.targets import checked_cluster

__all__ = ["run_experiment", "reboot_db_instances", "failover_db_cluster",
           "interrupt_cache_az_power", "az_power_interruption", "stop_experiment",
           "disrupt_az_connectivity", "az_application_slowdown", "cross_az_traffic_slowdown"]

logger = logging.getLogger("chaostoolkit")


def run_experiment(template: Optional[Dict[str, Any]] = None,
                   experiment_template_id: Optional[str] = None, role_arn: Optional[str] = None,
                   data_plane: Optional[str] = None, wait: bool = True, timeout: float = 900.0,
                   poll_interval: float = 2.0, measure_data_plane: bool = True,
                   dry_run: Optional[bool] = None, services: Optional[List[str]] = None,
                   kind: str = "outage", configuration: Configuration = None,
                   secrets: Secrets = None) -> Dict[str, Any]:
    """Run an AWS FIS experiment (from a template given here, or an existing template id).

    `template` is a CreateExperimentTemplate request (description, targets, actions; roleArn
    and stopConditions default to `role_arn`/`fis_role_arn` and none). With `wait`, returns once
    the experiment ended: the fault result (injected / completed times, one data-plane RTO per
    service the template touches, when its endpoint is configured) plus `fis`: experiment and
    template ids, state, reason, targets and each action's state. Fails with the experiment's
    state, error code and reason unless it `completed`, or when every action was skipped.
    `services` ("rds", "elasticache") declares what the template touches (default: the service
    behind `data_plane`, "mysql" -> rds, "redis" -> elasticache); `kind` is "failover",
    "outage" or "impairment" (chaosext.fault_model).
    """
    declared = tuple(services or ([service_of_data_plane(data_plane)] if data_plane else []))
    fault = FaultSpec("fis-experiment", declared, kind, "fis-experiment-ended")
    run = FisRun(fault, template, experiment_template_id, role_arn, configuration, secrets)
    return run.run("FIS StartExperiment", wait, timeout, poll_interval, measure_data_plane,
                   dry_run)


def _tags(tags: Optional[Dict[str, str]], configuration: Configuration) -> Dict[str, str]:
    """The target tags: those given, else the allow tag itself (so FIS selects only those)."""
    if tags:
        return dict(tags)
    key, has_value, value = str((configuration or {}).get("chaos_allow_tag") or DEFAULT_ALLOW_TAG).partition("=")
    if not has_value:
        raise ActivityError(f"the allow tag {key!r} has no value, and FIS matches tag values exactly: "
                            "pass `tags` to choose the targets")
    return {key: value}


def _run(fault: str, template: Dict[str, Any], method: str, role_arn, wait, timeout,
         poll_interval, measure_data_plane, dry_run, configuration, secrets):
    run = FisRun(spec(fault), template, None, role_arn, configuration, secrets)
    return run.run(method, wait, timeout, poll_interval, measure_data_plane, dry_run)


def reboot_db_instances(tags: Optional[Dict[str, str]] = None, force_failover: bool = True,
                        availability_zone: Optional[str] = None,
                        db_instance_arns: Optional[List[str]] = None, role_arn: Optional[str] = None,
                        wait: bool = True, timeout: float = 900.0, poll_interval: float = 2.0,
                        measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                        configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Reboot the tagged DB instances through FIS (aws:rds:reboot-db-instances), by default
    with `forceFailover`, so each Multi-AZ instance fails over to its standby.

    Targets: `db_instance_arns`, or the instances carrying `tags` (default: the allow tag), in
    `availability_zone` when given. Returns the fault result with the FIS experiment; the RTO
    is measured on the MySQL endpoint when configured.
    """
    template = templates.reboot_db_instances_template(_tags(tags, configuration), force_failover,
                                                      availability_zone, db_instance_arns)
    return _run("fis-rds-reboot-db-instances", template, "FIS aws:rds:reboot-db-instances",
                role_arn, wait, timeout, poll_interval, measure_data_plane, dry_run, configuration, secrets)


def failover_db_cluster(tags: Optional[Dict[str, str]] = None,
                        writer_availability_zone: Optional[str] = None,
                        db_cluster_arns: Optional[List[str]] = None, db_cluster_identifier: Optional[str] = None,
                        role_arn: Optional[str] = None, wait: bool = True, timeout: float = 900.0,
                        poll_interval: float = 2.0, measure_data_plane: bool = True,
                        dry_run: Optional[bool] = None, configuration: Configuration = None,
                        secrets: Secrets = None) -> Dict[str, Any]:
    """Fail the tagged Multi-AZ DB clusters or Aurora clusters over through FIS
    (aws:rds:failover-db-cluster), optionally only those whose writer is in one AZ.

    With `db_cluster_identifier`, FIS selects only the tagged cluster of that id, and the cluster
    is checked first as the API action checks it (a cluster, not an instance; `available`; a
    reader; writer and readers in two AZs or more; tag and allow-lists), refusing in one line
    before any template exists, and the result's `writer` says which member was the writer
    before and after (`moved`). Returns the fault result with the FIS experiment.
    """
    rds = aws_client("rds", configuration, secrets) if db_cluster_identifier else None
    if rds is not None:
        cluster, _ = checked_cluster(rds, db_cluster_identifier, "FIS aws:rds:failover-db-cluster", configuration)
    template = templates.failover_db_cluster_template(_tags(tags, configuration), writer_availability_zone,
                                                      db_cluster_arns, db_cluster_identifier)
    result = _run("fis-rds-failover-db-cluster", template, "FIS aws:rds:failover-db-cluster",
                  role_arn, wait, timeout, poll_interval, measure_data_plane, dry_run, configuration, secrets)
    if rds is not None and wait and not result.get("dry_run"):
        before, after = writer_of(cluster), writer_of(describe_cluster(rds, db_cluster_identifier))
        result["writer"] = {"before": before["writer"], "after": after["writer"],
                            "moved": after["writer"] not in (None, before["writer"])}
    return result


def interrupt_cache_az_power(availability_zone: str, duration: str = "PT1M",
                             tags: Optional[Dict[str, str]] = None,
                             replication_group_arns: Optional[List[str]] = None,
                             role_arn: Optional[str] = None, wait: bool = True, timeout: float = 900.0,
                             poll_interval: float = 2.0, measure_data_plane: bool = True,
                             dry_run: Optional[bool] = None, configuration: Configuration = None,
                             secrets: Secrets = None) -> Dict[str, Any]:
    """Cut the power of the tagged replication groups' nodes in one AZ for `duration` (ISO-8601,
    PT1M to PT12H) through FIS (aws:elasticache:replicationgroup-interrupt-az-power).

    ElastiCache promotes a replica in another AZ and replaces nothing in that AZ until the power
    returns. Returns once the experiment ended (after `duration`); the RTO is measured on the
    Redis endpoint when configured.
    """
    template = templates.interrupt_cache_az_power_template(_tags(tags, configuration), availability_zone,
                                                           duration, replication_group_arns)
    return _run("fis-elasticache-interrupt-az-power", template,
                "FIS aws:elasticache:replicationgroup-interrupt-az-power", role_arn, wait,
                timeout, poll_interval, measure_data_plane, dry_run, configuration, secrets)


def az_power_interruption(availability_zone: str, duration: str = "PT1M",
                          tags: Optional[Dict[str, str]] = None, include_db_clusters: bool = True,
                          role_arn: Optional[str] = None, wait: bool = True, timeout: float = 900.0,
                          poll_interval: float = 2.0, measure_data_plane: bool = True,
                          dry_run: Optional[bool] = None, configuration: Configuration = None,
                          secrets: Secrets = None) -> Dict[str, Any]:
    """Interrupt the power of one AZ for the shop's databases and caches through FIS: the RDS
    and ElastiCache part of the "AZ Availability: Power Interruption" scenario.

    At once: the tagged Multi-AZ DB instances in the AZ reboot with failover, DB clusters whose
    writer is there fail over, and the tagged replication groups' nodes there lose power for
    `duration`. Actions whose targets match nothing are skipped, as in the scenario; the
    activity fails if every action was skipped. With `wait`, the result carries one recovery
    figure per service (`recovery.rds`, `recovery.elasticache`); without, measure each with a
    `wait_until_writable` probe after it (the report pairs them by endpoint kind). `availability_zone` "primary": the AZ that holds the configured
    `db_instance_id`'s primary and `replication_group_id`'s primary now; refused, before anything
    starts, when they are in different AZs (chaosext.fis.placement).
    """
    availability_zone = resolve_zone(availability_zone, configuration, secrets)
    template = templates.az_power_interruption_template(_tags(tags, configuration), availability_zone,
                                                        duration, include_db_clusters)
    return _run("fis-az-power-interruption", template, "FIS AZ power interruption", role_arn,
                wait, timeout, poll_interval, measure_data_plane, dry_run, configuration, secrets)


def stop_experiment(experiment_id: Optional[str] = None, configuration: Configuration = None,
                    secrets: Secrets = None) -> Dict[str, Any]:
    """Stop an FIS experiment (StopExperiment) — by default every one this run started that is
    still going. For rollbacks: an experiment that already ended is left as it is.

    Returns `stopped`: experiment id -> the state it was stopped in (None: it had ended).
    """
    if experiment_id is None:
        return {"stopped": stop_live("rollback")}
    client = aws_client("fis", configuration, secrets)
    return {"stopped": {experiment_id: stop_one(client, experiment_id, "rollback")}}


# --------------------------------------------------------------------------- network faults
def _impair(fault: str, plan: Plan, template: Dict[str, Any], method: str, role_arn, wait, timeout,
            poll_interval, measure_data_plane, dry_run, configuration, secrets):
    """Run an FIS network template as an impairment fault; without a `timeout`, the wait is the
    impairment's length plus the recovery wait of its services (chaosext.thresholds)."""
    declared = spec(fault)
    if timeout is None:
        timeout = plan.duration_seconds + thresholds.fault_timeout(configuration, fault, None, None,
                                                                   declared.services)
    run = ImpairmentRun(plan, declared, template, None, role_arn, configuration, secrets)
    return run.run(method, wait, timeout, poll_interval, measure_data_plane, dry_run)


def disrupt_az_connectivity(availability_zone: str = PRIMARY, duration: str = "PT1M", scope: str = "all",
                            tags: Optional[Dict[str, str]] = None, role_arn: Optional[str] = None,
                            wait: bool = True, timeout: Optional[float] = None, poll_interval: float = 0.5,
                            measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                            configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Cut the network of one AZ's tagged subnets for `duration` (PT1M to PT12H) through FIS
    (aws:network:disrupt-connectivity); the hosts there stay up.

    `scope` "all": every flow into and out of the subnets stops; "availability-zone": their
    traffic with the other AZs stops. `availability_zone` "primary" (default): the AZ of the
    configured DB instance's and cache's primaries. Returns once the experiment ended: an
    impairment fault with `impairment` and each service's `time_to_recover_seconds` from the
    end of the cut.
    """
    seconds = checked_cut(duration, scope)
    zone = resolve_zone(availability_zone, configuration, secrets)
    cut = scope == "availability-zone"
    plan = Plan(zone, f"every flow between the subnets of {zone} and the other AZs" if cut
                else f"every flow into and out of the subnets of {zone}", seconds,
                blackhole=not cut, partition="*" if cut else None)
    template = templates.disrupt_az_connectivity_template(_tags(tags, configuration), zone, duration, scope)
    return _impair("fis-az-connectivity-disruption", plan, template,
                   f"FIS aws:network:disrupt-connectivity (scope {scope})", role_arn, wait, timeout,
                   poll_interval, measure_data_plane, dry_run, configuration, secrets)


def az_application_slowdown(availability_zone: str = PRIMARY, delay_ms: int = 200, duration_seconds: int = 1800,
                            jitter_ms: int = 0, tags: Optional[Dict[str, str]] = None,
                            role_arn: Optional[str] = None, wait: bool = True, timeout: Optional[float] = None,
                            poll_interval: float = 0.5, measure_data_plane: bool = True,
                            dry_run: Optional[bool] = None, configuration: Configuration = None,
                            secrets: Secrets = None) -> Dict[str, Any]:
    """Slow the flows inside one AZ by `delay_ms` for `duration_seconds` through FIS's "AZ:
    Application Slowdown" (aws:ssm:send-command, AWSFIS-Run-Network-Latency-Sources on the
    tagged EC2 instances in the AZ, toward that AZ).

    `availability_zone` "primary" (default): the AZ of the configured primaries. Returns the
    impairment fault once the experiment ended.
    """
    checked = positive_numbers(delay_ms=delay_ms, duration_seconds=duration_seconds)
    delay_ms, duration_seconds = checked["delay_ms"], checked["duration_seconds"]
    zone = resolve_zone(availability_zone, configuration, secrets)
    plan = Plan(zone, f"egress of the shop's instances in {zone} toward {zone} (+{delay_ms:g} ms)",
                float(duration_seconds), direction="to", delay_ms=delay_ms, jitter_ms=jitter_ms)
    template = templates.az_application_slowdown_template(_tags(tags, configuration), zone, _region(configuration,
                                                          secrets), delay_ms, duration_seconds, jitter_ms)
    return _impair("fis-az-application-slowdown", plan, template, "FIS AZ application slowdown "
                   "(aws:ssm:send-command AWSFIS-Run-Network-Latency-Sources)", role_arn, wait, timeout,
                   poll_interval, measure_data_plane, dry_run, configuration, secrets)


def cross_az_traffic_slowdown(availability_zone: str = PRIMARY, loss_percent: int = 15,
                              duration_seconds: int = 1800, source_availability_zones: Optional[List[str]] = None,
                              tags: Optional[Dict[str, str]] = None, role_arn: Optional[str] = None,
                              wait: bool = True, timeout: Optional[float] = None, poll_interval: float = 0.5,
                              measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                              configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Drop `loss_percent` of the packets the tagged instances in one AZ send to the other AZs,
    for `duration_seconds`, through FIS's "Cross-AZ: Traffic Slowdown" (aws:ssm:send-command,
    AWSFIS-Run-Network-Packet-Loss-Sources).

    The other AZs: `source_availability_zones`, else every AZ the configured DB instance and
    cache nodes are in, except this one. Returns the impairment fault once the experiment ended.
    """
    checked = positive_numbers(loss_percent=loss_percent, duration_seconds=duration_seconds)
    loss_percent, duration_seconds = checked["loss_percent"], checked["duration_seconds"]
    zone = resolve_zone(availability_zone, configuration, secrets)
    others = [z for z in (source_availability_zones or node_zones(configuration, secrets)) if z != zone]
    if not others:
        raise ActivityError(f"no other AZ to slow traffic to from {zone}: pass source_availability_zones")
    plan = Plan(zone, f"egress of the shop's instances in {zone} toward {', '.join(others)} "
                f"({loss_percent:g} % loss)", float(duration_seconds), direction="to", loss_percent=loss_percent)
    template = templates.cross_az_traffic_slowdown_template(_tags(tags, configuration), zone,
                                                            _region(configuration, secrets), others, loss_percent,
                                                            duration_seconds)
    return _impair("fis-cross-az-traffic-slowdown", plan, template, "FIS cross-AZ traffic slowdown "
                   "(aws:ssm:send-command AWSFIS-Run-Network-Packet-Loss-Sources)", role_arn, wait, timeout,
                   poll_interval, measure_data_plane, dry_run, configuration, secrets)


def _region(configuration: Configuration, secrets: Secrets) -> str:
    return aws_client("fis", configuration, secrets).meta.region_name
