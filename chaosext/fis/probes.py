"""AWS FIS probes: an experiment's state, actions and targets; the experiments of a template."""
import logging
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext.alerts import faults as fault_log
from chaosext.aws import aws_call, aws_client, paginate
from chaosext.errors import ActivityError
from chaosext.fault_model import service_of_data_plane
from chaosext.fis import live
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso, parse_time

__all__ = ["experiment_state", "template_experiments", "wait_for_experiments", "network_blast_radius"]

logger = logging.getLogger("chaostoolkit")

#: Experiment states after which nothing changes any more (FIS API reference, ExperimentState).
END_STATES = ("completed", "stopped", "failed", "cancelled")


# -- lookups shared with the actions (not activities themselves) ---------------------------
def get_experiment(client, experiment_id: str) -> Dict[str, Any]:
    return aws_call(client, "get_experiment", f"FIS experiment {experiment_id}",
                    id=experiment_id)["experiment"]


def summarize(experiment: Dict[str, Any]) -> Dict[str, Any]:
    """An FIS ``Experiment`` as a JSON-serialisable dict (ISO-8601 UTC times, snake_case)."""
    state = experiment.get("state") or {}
    return {
        "experiment_id": experiment.get("id"),
        "experiment_template_id": experiment.get("experimentTemplateId"),
        "state": state.get("status"),
        "reason": state.get("reason"),
        "error": dict(state["error"]) if state.get("error") else None,
        "created_at": iso(experiment.get("creationTime")),
        "started_at": iso(experiment.get("startTime")),
        "ended_at": iso(experiment.get("endTime")),
        "targets": {name: _target(t) for name, t in (experiment.get("targets") or {}).items()},
        "actions": {name: _action(a) for name, a in (experiment.get("actions") or {}).items()},
    }


def check_completed(summary: Dict[str, Any]) -> None:
    """Fail unless the experiment completed and did something (not every action skipped)."""
    label = f"FIS experiment {summary['experiment_id']} (template {summary['experiment_template_id']})"
    actions = list(summary["actions"].values())
    if summary["state"] == "completed" and actions and all(a["state"] == "skipped" for a in actions):
        raise ActivityError(f"{label} did nothing: every action was skipped because no target matched")
    if summary["state"] != "completed":
        code = (summary.get("error") or {}).get("code")
        raise ActivityError(f"{label} ended {summary['state']}{f' [{code}]' if code else ''}: "
                            f"{summary.get('reason') or 'no reason given'}", code=code)


def _target(target: Dict[str, Any]) -> Dict[str, Any]:
    out = {"resource_type": target.get("resourceType"), "selection_mode": target.get("selectionMode")}
    for key, name in (("resourceArns", "resource_arns"), ("resourceTags", "resource_tags"),
                      ("parameters", "parameters"), ("filters", "filters")):
        if target.get(key):
            out[name] = target[key]
    return out


def _action(action: Dict[str, Any]) -> Dict[str, Any]:
    state = action.get("state") or {}
    return {"action_id": action.get("actionId"), "state": state.get("status"),
            "reason": state.get("reason"), "parameters": action.get("parameters") or {},
            "targets": action.get("targets") or {}, "start_after": action.get("startAfter") or [],
            "started_at": iso(action.get("startTime")), "ended_at": iso(action.get("endTime"))}


# -- activities ----------------------------------------------------------------------------
def experiment_state(experiment_id: str, configuration: Configuration = None,
                     secrets: Secrets = None) -> Dict[str, Any]:
    """Read an FIS experiment's state, reason, targets and per-action states (changes nothing).

    Returns `state` (pending | initiating | running | completed | stopping | stopped | failed),
    `reason`, `error` (code and location when failed), the target definitions and each action's
    state with ISO-8601 UTC start and end times.
    """
    client = aws_client("fis", configuration, secrets)
    return summarize(get_experiment(client, experiment_id))


def template_experiments(experiment_template_id: Optional[str] = None,
                         configuration: Configuration = None,
                         secrets: Secrets = None) -> List[Dict[str, Any]]:
    """List FIS experiments (of one template, when given) with their states (changes nothing)."""
    client = aws_client("fis", configuration, secrets)
    params: Dict[str, Any] = {}
    if experiment_template_id:
        params["experimentTemplateId"] = experiment_template_id
    return [{"experiment_id": item.get("id"),
             "experiment_template_id": item.get("experimentTemplateId"),
             "state": (item.get("state") or {}).get("status"),
             "reason": (item.get("state") or {}).get("reason"),
             "created_at": iso(item.get("creationTime"))}
            for item in paginate(client, "list_experiments", "FIS experiments", "experiments",
                                 **params)]


def wait_for_experiments(experiment_id: Optional[str] = None, timeout: float = 900.0,
                         poll_interval: float = 2.0, configuration: Configuration = None,
                         secrets: Secrets = None) -> Dict[str, Any]:
    """Wait until FIS experiments end: the given one, or every one this run started without
    waiting (an FIS action with `wait: false`, followed by data-plane measurements).

    Returns `experiments`: id -> the experiment summary (state, reason, targets, actions).
    Fails naming the experiment, its end state, error code and reason unless each `completed`,
    and when one has not ended within `timeout` seconds (it keeps running: the rollback
    `stop_experiment` stops it).
    """
    client = aws_client("fis", configuration, secrets)
    ids = [experiment_id] if experiment_id else sorted(live.live_experiments())
    if not ids:
        raise ActivityError("no FIS experiment to wait for: none was started by this run")
    ended: Dict[str, Dict[str, Any]] = {}

    def all_ended() -> bool:
        for pending in [i for i in ids if i not in ended]:
            summary = summarize(get_experiment(client, pending))
            if summary["state"] in END_STATES:
                ended[pending] = summary
                live.forget(pending)
        return len(ended) == len(ids)

    if not poll_until(all_ended, timeout, max(0.05, float(poll_interval))):
        running = [i for i in ids if i not in ended]
        raise ActivityError(f"FIS experiments {running} did not end within {timeout:g} s")
    announce_recoveries(ended)
    for summary in ended.values():
        check_completed(summary)
    return {"experiments": ended}


def _seconds_after(start: str, end: str) -> float:
    return round((parse_time(end) - parse_time(start)).total_seconds(), 3)


def _recovery(fault: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """service -> its RTO, from the first write each declared service's endpoint took again
    after the injection (`wait_until_writable`)."""
    injected = fault["injected_at"]
    recovery: Dict[str, Dict[str, Any]] = {}
    for watch in fault_log.writable_results():
        service = service_of_data_plane(watch.get("kind"))
        if service not in (fault.get("services") or [service]) or service in recovery \
                or parse_time(watch["writable_again_at"]) < parse_time(injected):
            continue
        recovery[service] = {"service": service, "writable_at": watch["writable_again_at"],
                             "rto_seconds": _seconds_after(injected, watch["writable_again_at"]),
                             "data_plane": watch}
    return recovery


def announce_recoveries(ended: Dict[str, Dict[str, Any]]) -> None:
    """Announce "recovered" for each fault started without waiting whose FIS experiment completed:
    control plane done when the experiment ended, each service's data plane writable again when
    the first write watch of its endpoint after the injection saw a write go through."""
    for fault in fault_log.faults():
        summary = ended.get((fault.get("fis") or {}).get("experiment_id"))
        if not summary or summary["state"] != "completed" or not summary.get("ended_at"):
            continue
        injected = fault["injected_at"]
        recovery = _recovery(fault)
        recovered = dict(fault, control_plane_completed_at=summary["ended_at"],
                         control_plane_seconds=_seconds_after(injected, summary["ended_at"]),
                         fis={**fault["fis"], **summary}, recovery=recovery,
                         rto_seconds=max((r["rto_seconds"] for r in recovery.values()),
                                         default=None))
        if not fault_log.announced("recovered", recovered):
            fault_log.announce("recovered", recovered)


def network_blast_radius(availability_zone: str, tags: Optional[Dict[str, str]] = None,
                         configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """List what an FIS network action in one AZ would reach: the subnets and the running EC2
    instances there that carry `tags` (default: the allow tag). Changes nothing.

    Returns `availability_zone`, `subnets` (id, CIDR, VPC) and `instances` (id, subnet): the blast
    radius of `disrupt_az_connectivity` (subnets) and of the slowdown scenarios (instances).
    """
    key, _, value = str((configuration or {}).get("chaos_allow_tag") or "chaos:allowed=true").partition("=")
    wanted = dict(tags) if tags else {key: value}
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in wanted.items()]
    filters.append({"Name": "availability-zone", "Values": [availability_zone]})
    ec2 = aws_client("ec2", configuration, secrets)
    subnets = [{"subnet_id": s["SubnetId"], "cidr": s.get("CidrBlock"), "vpc_id": s.get("VpcId")}
               for s in paginate(ec2, "describe_subnets", f"subnets in {availability_zone}", "Subnets",
                                 Filters=filters)]
    running = filters + [{"Name": "instance-state-name", "Values": ["running"]}]
    instances = [{"instance_id": i["InstanceId"], "subnet_id": i.get("SubnetId")}
                 for r in paginate(ec2, "describe_instances", f"instances in {availability_zone}",
                                   "Reservations", Filters=running) for i in r.get("Instances", [])]
    return {"availability_zone": availability_zone, "tags": wanted, "subnets": subnets, "instances": instances}
