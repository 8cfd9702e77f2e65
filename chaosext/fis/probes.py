"""AWS FIS probes: an experiment's state, actions and targets; the experiments of a template."""
import logging
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext.aws import aws_call, aws_client
from chaosext.timefmt import iso

__all__ = ["experiment_state", "template_experiments"]

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
