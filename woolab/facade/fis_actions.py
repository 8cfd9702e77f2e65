"""What each FIS action does on the lab: it calls the lab's own mechanics, nothing else.

Why: an FIS experiment on the lab must fail the lab over exactly as the RDS and ElastiCache APIs
do (``lab.start_db_reboot``), so the measurements of a FIS-driven game day compare with the
others. Each runner gets an ``ActionRun`` and returns when the action is done, raises
``ActionFailed`` with the reason FIS would report, or returns early once ``run.stop`` is set
(the experiment was stopped), undoing what can be undone (the AZ power comes back).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping

from woolab.errors import LabError
from woolab.facade import fis_network
from woolab.facade.fis_catalog import duration_seconds
from woolab.facade.fis_targets import Resource

#: How long a rebooted DB instance may take to be ``available`` again before the action fails.
REBOOT_TIMEOUT = 900.0
POLL = 0.2


class ActionFailed(Exception):
    """The action failed: ``str(exc)`` is its ``state.reason``; ``code`` the experiment's error code.

    Codes from the FIS troubleshooting page: ``DependentServiceFailure`` (another service's call
    failed), ``ConfigurationFailure``, ``InternalFailure``.
    """

    def __init__(self, reason: str, code: str = "DependentServiceFailure"):
        super().__init__(reason)
        self.code = code


@dataclass
class ActionRun:
    lab: Any
    name: str
    parameters: Mapping[str, str]
    targets: Dict[str, List[Resource]]  # target key ("DBInstances") -> resolved resources
    stop: threading.Event


def reboot_db_instances(run: ActionRun) -> None:
    """RebootDBInstance on every target (with ``forceFailover``), then wait until each is back."""
    force = run.parameters.get("forceFailover", "false") == "true"
    instances = run.targets.get("DBInstances", [])
    for resource in instances:
        try:
            run.lab.start_db_reboot(resource.id, force)
        except LabError as exc:
            raise ActionFailed(f"RebootDBInstance failed for {resource.id}: {exc}") from None
    _wait(run, lambda snap: all(snap["db_instances"].get(r.id, {}).get("status") == "available"
                                for r in instances), REBOOT_TIMEOUT,
          f"DB instances {', '.join(r.id for r in instances)} were not available again")


def failover_db_cluster(run: ActionRun) -> None:
    """FailoverDBCluster on every target cluster (RDS picks the reader), then wait until each is
    `available` again."""
    clusters = run.targets.get("Clusters", [])
    for resource in clusters:
        try:
            run.lab.start_db_cluster_failover(resource.id, None)
        except LabError as exc:
            raise ActionFailed(f"FailoverDBCluster failed for {resource.id}: {exc}") from None
    _wait(run, lambda snap: all(snap.get("db_clusters", {}).get(r.id, {}).get("status") == "available"
                                for r in clusters), REBOOT_TIMEOUT,
          f"DB clusters {', '.join(r.id for r in clusters)} were not available again")


def interrupt_az_power(run: ActionRun) -> None:
    """Power off the targets' nodes in the chosen AZ for ``duration``; power returns at the end."""
    start, end = run.lab.start_az_power_interruption, run.lab.end_az_power_interruption
    seconds = duration_seconds(run.parameters["duration"])
    zones = list(dict.fromkeys(r.az for r in run.targets.get("ReplicationGroups", [])))
    started = []
    try:
        for zone in zones:
            try:
                start(zone, seconds, node_kinds=["cache"])  # the action powers off cache nodes only
            except LabError as exc:
                raise ActionFailed(f"AZ power interruption of {zone} failed: {exc}") from None
            started.append(zone)
        run.stop.wait(seconds)
    finally:
        if run.stop.is_set():  # stopped early: power comes back now, not at the end of the duration
            for zone in started:
                _end_quietly(end, zone)


def _end_quietly(end: Callable[[str], Any], zone: str) -> None:
    try:
        end(zone)
    except LabError:
        pass  # the interruption already ended by itself


def disrupt_connectivity(run: ActionRun) -> None:
    """aws:network:disrupt-connectivity: the target subnets' AZs black-holed (scope ``all``) or
    cut from the other AZs (``availability-zone``) for ``duration``; lifted at the end or on stop."""
    seconds = duration_seconds(run.parameters["duration"])
    values = ({"partition": "*"} if run.parameters.get("scope") == "availability-zone" else {"blackhole": "1"})
    zones = list(dict.fromkeys(r.az for r in run.targets.get("Subnets", [])))
    _impaired_for(run, zones, {**values, "seconds": seconds}, seconds)


def send_command(run: ActionRun) -> None:
    """aws:ssm:send-command with AWSFIS-Run-Network-Latency-Sources / -Packet-Loss-Sources on the
    shop's instances: delay or loss on the flows toward (egress) or from (ingress) the source AZs'
    nodes for the document's DurationSeconds (at most the action's ``duration``)."""
    plan = fis_network.document_plan(run.name, run.parameters)
    seconds = min(plan["seconds"], duration_seconds(run.parameters["duration"]))
    values = {k: plan[k] for k in ("delay_ms", "jitter_ms", "loss_percent") if k in plan}
    _impaired_for(run, plan["azs"], {**values, "direction": plan["direction"], "seconds": seconds}, seconds)


def _impaired_for(run: ActionRun, zones, values: Mapping[str, Any], seconds: float) -> None:
    """Impair ``zones`` with ``values``, wait ``seconds`` (or the stop), lift what was started."""
    if not hasattr(run.lab, "impair_network"):
        raise ActionFailed("network impairments are not implemented by this lab yet.", "InternalFailure")
    started: list = []
    try:
        fis_network.impair(run.lab, zones, dict(values), started, ActionFailed)
        run.stop.wait(seconds)
    finally:
        fis_network.lift(run.lab, started)


def wait(run: ActionRun) -> None:
    """aws:fis:wait: nothing happens for ``duration`` (or until the experiment is stopped)."""
    run.stop.wait(duration_seconds(run.parameters["duration"]))


def _wait(run: ActionRun, done: Callable[[Mapping[str, Any]], bool], timeout: float, what: str) -> None:
    waited = 0.0
    while not done(run.lab.snapshot()):
        if run.stop.wait(POLL):
            return
        waited += POLL
        if waited >= timeout:
            raise ActionFailed(f"{what} within {timeout:g} s.")


RUNNERS: Dict[str, Callable[[ActionRun], None]] = {
    "aws:rds:reboot-db-instances": reboot_db_instances,
    "aws:rds:failover-db-cluster": failover_db_cluster,
    "aws:elasticache:replicationgroup-interrupt-az-power": interrupt_az_power,
    "aws:fis:wait": wait,
    "aws:network:disrupt-connectivity": disrupt_connectivity,
    "aws:ssm:send-command": send_command,
}
