"""AWS FIS probes: an experiment's state, actions and targets; the experiments of a template."""
import logging
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext.alerts import faults as fault_log
from chaosext.aws import aws_call, aws_client
from chaosext.errors import ActivityError
from chaosext.fis import live
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso, parse_time

__all__ = ["experiment_state", "template_experiments", "wait_for_experiments"]

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
    found: List[Dict[str, Any]] = []
    while True:
        page = aws_call(client, "list_experiments", "FIS experiments", **params)
        for item in page.get("experiments", []):
            state = item.get("state") or {}
            found.append({"experiment_id": item.get("id"),
                          "experiment_template_id": item.get("experimentTemplateId"),
                          "state": state.get("status"), "reason": state.get("reason"),
                          "created_at": iso(item.get("creationTime"))})
        if not page.get("nextToken"):
            return found
        params["nextToken"] = page["nextToken"]


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


def announce_recoveries(ended: Dict[str, Dict[str, Any]]) -> None:
    """Announce "recovered" for each fault started without waiting whose FIS experiment completed:
    control plane done when the experiment ended, data plane writable again when the last write
    watch after the injection (`wait_until_writable`) saw a write go through."""
    for fault in fault_log.faults():
        summary = ended.get((fault.get("fis") or {}).get("experiment_id"))
        if not summary or summary["state"] != "completed" or not summary.get("ended_at"):
            continue
        injected = fault["injected_at"]
        writable = [w["writable_again_at"] for w in fault_log.writable_results()
                    if parse_time(w["writable_again_at"]) >= parse_time(injected)]
        recovered = dict(fault, control_plane_completed_at=summary["ended_at"],
                         control_plane_seconds=_seconds_after(injected, summary["ended_at"]),
                         rto_seconds=(_seconds_after(injected, max(writable, key=parse_time))
                                      if writable else None))
        if not fault_log.announced("recovered", recovered):
            fault_log.announce("recovered", recovered)
