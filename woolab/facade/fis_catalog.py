"""The FIS actions and target resource types the lab implements, and template validation.

Why: CreateExperimentTemplate refuses a template FIS would refuse (unknown action, a target of
the wrong resource type, a missing required parameter, a bad ``startAfter``), so a template that
the lab accepts is one AWS accepts too, and the experiment file stays portable. Sources
(docs/fis.md): the FIS user guide pages "Actions reference" (action ids, target keys,
parameters), "Targets" (resource types, resource parameters, selection modes) and "Actions for
AWS FIS" (``startAfter``). The lab runs the actions in ``woolab.facade.fis_actions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from woolab.facade import fis_network
from woolab.facade.restjson import validation_error


@dataclass(frozen=True)
class ActionSpec:
    """An FIS action: its target key and resource type, required and optional parameters."""

    action_id: str
    target_key: Optional[str]  # "DBInstances"; None for aws:fis:wait
    resource_type: Optional[str]
    required: Tuple[str, ...] = ()
    optional: Tuple[str, ...] = ()
    duration_range: Optional[Tuple[float, float]] = None  # seconds, for the "duration" parameter


ACTIONS: Dict[str, ActionSpec] = {spec.action_id: spec for spec in (
    ActionSpec("aws:rds:reboot-db-instances", "DBInstances", "aws:rds:db", optional=("forceFailover",)),
    ActionSpec("aws:rds:failover-db-cluster", "Clusters", "aws:rds:cluster"),
    # "duration: 1 minute to 12 hours" (actions reference, ElastiCache actions).
    ActionSpec("aws:elasticache:replicationgroup-interrupt-az-power", "ReplicationGroups",
               "aws:elasticache:replicationgroup", required=("duration",), duration_range=(60, 12 * 3600)),
    ActionSpec("aws:fis:wait", None, None, required=("duration",), duration_range=(0.001, 12 * 3600)),
    # "duration: from one minute to 12 hours"; scope and prefixListIdentifier (actions reference,
    # network actions); woolab.facade.fis_network says which scopes the lab models.
    ActionSpec("aws:network:disrupt-connectivity", "Subnets", "aws:ec2:subnet", required=("duration",),
               optional=("scope", "prefixListIdentifier"), duration_range=(60, 12 * 3600)),
    # documentArn, documentParameters, documentVersion, duration (actions reference, SSM actions).
    ActionSpec("aws:ssm:send-command", "Instances", "aws:ec2:instance", required=("documentArn", "duration"),
               optional=("documentParameters", "documentVersion"), duration_range=(60, 12 * 3600)),
)}


@dataclass(frozen=True)
class ResourceTypeSpec:
    """A target resource type: the ARN's service and kind, its resource parameters."""

    service: str
    arn_kind: str
    required: Tuple[str, ...] = ()
    optional: Tuple[str, ...] = ()


RESOURCE_TYPES: Dict[str, ResourceTypeSpec] = {
    "aws:rds:db": ResourceTypeSpec("rds", "db", optional=("availabilityZoneIdentifiers",)),
    "aws:rds:cluster": ResourceTypeSpec("rds", "cluster", optional=("writerAvailabilityZoneIdentifiers",)),
    "aws:elasticache:replicationgroup": ResourceTypeSpec("elasticache", "replicationgroup",
                                                         required=("availabilityZoneIdentifier",)),
    "aws:ec2:subnet": ResourceTypeSpec("ec2", "subnet", optional=("availabilityZoneIdentifier", "vpc")),
    "aws:ec2:instance": ResourceTypeSpec("ec2", "instance"),
}

_SELECTION = re.compile(r"^(ALL|COUNT\((\d+)\)|PERCENT\((\d+)\))$")
_DURATION = re.compile(r"^PT(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def duration_seconds(text: str) -> Optional[float]:
    """ISO-8601 ``PT1H30M`` / ``PT1M`` / ``PT30S`` -> seconds; ``None`` when malformed."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def selection(mode: str) -> Tuple[str, int]:
    """``ALL`` -> ("ALL", 0); ``COUNT(2)`` -> ("COUNT", 2); ``PERCENT(50)`` -> ("PERCENT", 50)."""
    match = _SELECTION.match(mode or "")
    if not match:
        raise validation_error(f"Invalid selectionMode {mode!r}: use ALL, COUNT(n) or PERCENT(n).")
    if match.group(2) is not None:
        return "COUNT", int(match.group(2))
    if match.group(3) is not None:
        return "PERCENT", int(match.group(3))
    return "ALL", 0


def validate_template(params: Mapping[str, Any]) -> None:
    """Raise the ``ValidationException`` FIS would answer to this CreateExperimentTemplate."""
    targets = params.get("targets") or {}
    actions = params.get("actions") or {}
    for condition in params.get("stopConditions") or []:
        if condition["source"] != "none":
            raise validation_error(f"Stop condition source {condition['source']!r} is not supported by the "
                                   "failover-gameday lab (it has no CloudWatch alarms); use source 'none'.")
    if not actions:
        raise validation_error("The experiment template must contain at least one action.")
    for name, target in targets.items():
        _validate_target(name, target)
    for name, action in actions.items():
        _validate_action(name, action, targets, actions)
    _check_no_cycle(actions)


def _validate_target(name: str, target: Mapping[str, Any]) -> None:
    spec = RESOURCE_TYPES.get(target["resourceType"])
    if target["resourceType"] in fis_network.FORMER_NAMES:
        raise fis_network.former_name_error(target["resourceType"], f"Target {name}")
    if spec is None:
        raise validation_error(f"Target {name}: resource type {target['resourceType']} is not supported "
                               f"(supported here: {', '.join(sorted(RESOURCE_TYPES))}).")
    selection(target["selectionMode"])
    arns, tags = target.get("resourceArns"), target.get("resourceTags")
    if arns and (tags or target.get("filters")):
        raise validation_error(f"Target {name}: resourceArns cannot be combined with resourceTags or filters.")
    if not (arns or tags or target.get("parameters")):
        raise validation_error(f"Target {name}: specify resourceArns, resourceTags or parameters.")
    for arn in arns or []:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != spec.service \
                or not parts[5].startswith((spec.arn_kind + ":", spec.arn_kind + "/")):
            raise validation_error(f"Target {name}: {arn} is not the ARN of a {target['resourceType']} resource.")
    _check_parameters(f"Target {name}", target.get("parameters") or {}, spec.required, spec.optional)


def _validate_action(name: str, action: Mapping[str, Any], targets, actions) -> None:
    spec = ACTIONS.get(action["actionId"])
    if action["actionId"] in fis_network.FORMER_NAMES:
        raise fis_network.former_name_error(action["actionId"], f"Action {name}")
    if action["actionId"] in fis_network.CONTAINER_ACTIONS:
        raise fis_network.container_action_error(action["actionId"], f"Action {name}")
    if spec is None:
        raise validation_error(f"Action {name}: action type {action['actionId']} is not supported "
                               f"(supported here: {', '.join(sorted(ACTIONS))}).")
    parameters = action.get("parameters") or {}
    _check_parameters(f"Action {name}", parameters, spec.required, spec.optional)
    if spec.duration_range:
        seconds = duration_seconds(parameters["duration"])
        low, high = spec.duration_range
        if seconds is None or not low <= seconds <= high:
            raise validation_error(f"Action {name}: duration {parameters['duration']!r} must be an ISO-8601 "
                                   f"duration (PT1M, PT30S) between {_human(low)} and {_human(high)}.")
    if "forceFailover" in parameters and parameters["forceFailover"] not in ("true", "false"):
        raise validation_error(f"Action {name}: forceFailover must be 'true' or 'false'.")
    if spec.action_id == "aws:network:disrupt-connectivity":
        fis_network.check_scope(name, parameters)
    elif spec.action_id == "aws:ssm:send-command":
        fis_network.document_plan(name, parameters)
    _validate_action_targets(name, spec, action.get("targets") or {}, targets)
    for before in action.get("startAfter") or []:
        if before not in actions or before == name:
            raise validation_error(f"Action {name}: startAfter names {before!r}, which is not another "
                                   "action of this template.")


def _validate_action_targets(name: str, spec: ActionSpec, wanted: Mapping[str, str], targets) -> None:
    allowed = {spec.target_key} if spec.target_key else set()
    for key, target_name in wanted.items():
        if key not in allowed:
            raise validation_error(f"Action {name}: {spec.action_id} has no target {key!r}"
                                   + (f" (its target is {spec.target_key!r})." if spec.target_key else "."))
        if target_name not in targets:
            raise validation_error(f"Action {name}: target {target_name!r} is not defined in the template.")
        actual = targets[target_name]["resourceType"]
        if actual != spec.resource_type:
            raise validation_error(f"Action {name}: target {target_name!r} has resource type {actual}; "
                                   f"{spec.action_id} needs {spec.resource_type}.")
    if spec.target_key and spec.target_key not in wanted:
        raise validation_error(f"Action {name}: {spec.action_id} needs the target {spec.target_key!r}.")


def _check_parameters(where: str, given: Mapping[str, str], required, optional) -> None:
    for key in given:
        if key not in required and key not in optional:
            raise validation_error(f"{where}: unknown parameter {key!r}"
                                   f" (known: {', '.join(required + optional) or 'none'}).")
    for key in required:
        if not given.get(key):
            raise validation_error(f"{where}: the parameter {key!r} is required.")


def _check_no_cycle(actions: Mapping[str, Mapping[str, Any]]) -> None:
    state: Dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 1:
            raise validation_error(f"Action {name}: startAfter forms a cycle.")
        if state.get(name) == 2:
            return
        state[name] = 1
        for before in actions[name].get("startAfter") or []:
            visit(before)
        state[name] = 2

    for name in actions:
        visit(name)


def _human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
