"""FIS network actions on the lab: what a template may ask, and how the lab's network layer does it.

Why: the same template must run on AWS and on the lab. The actions and their documented values
(docs/fis.md, "Network actions", with sources):

- ``aws:network:disrupt-connectivity`` on subnets (``aws:ec2:subnet``), parameter ``scope``:
  ``all`` -> the subnets' AZs are black-holed both ways (every flow of their nodes stops);
  ``availability-zone`` -> those AZs are cut from the other AZs (the lab's partition: replication
  and node-to-node flows). The other documented scopes (``dynamodb``, ``s3``, ``s3express``,
  ``prefix-list``, ``vpc``) name AWS endpoints or boundaries the lab has not got: refused at
  CreateExperimentTemplate.
- ``aws:ssm:send-command`` with AWS's documents ``AWSFIS-Run-Network-Latency-Sources`` and
  ``AWSFIS-Run-Network-Packet-Loss-Sources`` on the shop's instances (``aws:ec2:instance``):
  the actions of the scenarios "AZ: Application Slowdown" and "Cross-AZ: Traffic Slowdown".
  The lab adds the delay or loss to every flow toward (``egress``) or from (``ingress``) the
  nodes in each source AZ, for the document's ``DurationSeconds``.
The lab applies them through ``LabBackend.impair_network`` and ends them with ``clear_network``
(the AZ's impairments end; docs/lab-network.md).
"""
import json
from typing import Any, Dict, List, Mapping, Optional

from woolab.config import AZS
from woolab.errors import LabError
from woolab.facade.restjson import validation_error

SCOPES = ("all", "availability-zone", "dynamodb", "s3", "s3express", "prefix-list", "vpc")
LAB_SCOPES = ("all", "availability-zone")
LATENCY_DOCUMENT = "AWSFIS-Run-Network-Latency-Sources"
LOSS_DOCUMENT = "AWSFIS-Run-Network-Packet-Loss-Sources"
#: document -> (the parameter that sets the effect, the lab's impairment key)
DOCUMENTS = {LATENCY_DOCUMENT: ("DelayMilliseconds", "delay_ms"), LOSS_DOCUMENT: ("LossPercent", "loss_percent")}
_COMMON = ("Sources", "TrafficType", "FlowsPercent", "DurationSeconds", "Interface", "InstallDependencies")
DOCUMENT_PARAMETERS = {LATENCY_DOCUMENT: ("DelayMilliseconds", "JitterMilliseconds") + _COMMON,
                       LOSS_DOCUMENT: ("LossPercent",) + _COMMON}
MAX_DURATION_SECONDS = 43_200  # FIS's 12 h, the longest any action lasts
#: Former ids FIS used; the current actions reference lists only the new ones (docs/fis.md).
FORMER_NAMES = {"aws:elasticache:interrupt-cluster-az-power": "aws:elasticache:replicationgroup-interrupt-az-power",
                "aws:elasticache:redis-replicationgroup": "aws:elasticache:replicationgroup"}


#: The scenarios' actions for containers (Slowdown and Cross-AZ scenario pages): the lab has no
#: ECS tasks or EKS pods, and runs the scenarios' EC2 action (aws:ssm:send-command) instead.
CONTAINER_ACTIONS = ("aws:ecs:task-network-latency", "aws:ecs:task-network-packet-loss",
                     "aws:eks:pod-network-latency", "aws:eks:pod-network-packet-loss")


def container_action_error(action_id: str, what: str):
    """The refusal of a scenario's ECS or EKS network action."""
    runs_on = "ECS tasks" if ":ecs:" in action_id else "EKS pods"
    return validation_error(f"{what}: {action_id} runs on {runs_on}, which the failover-gameday lab does not "
                            "have; the lab runs the scenario's EC2 form, aws:ssm:send-command with "
                            f"{LATENCY_DOCUMENT} or {LOSS_DOCUMENT} on the shop's instances.")


def former_name_error(name: str, what: str):
    """The refusal of a former action or resource type id, naming the current one."""
    return validation_error(f"{what}: {name} is the former name of {FORMER_NAMES[name]}; the FIS actions "
                            f"reference lists only {FORMER_NAMES[name]}, and so does the failover-gameday lab.")


def check_scope(name: str, parameters: Mapping[str, str]) -> None:
    """Refuse a ``scope`` FIS does not document, or one the lab does not model."""
    scope = parameters.get("scope", "all")
    if scope not in SCOPES:
        raise validation_error(f"Action {name}: scope {scope!r} is not valid; FIS documents "
                               f"{', '.join(SCOPES)}.")
    if scope not in LAB_SCOPES:
        raise validation_error(f"Action {name}: scope {scope!r} is valid on AWS, but the failover-gameday lab "
                               f"does not model it (it has no {scope} endpoints); the lab models scope "
                               f"{' and '.join(LAB_SCOPES)}.")
    if parameters.get("prefixListIdentifier"):
        raise validation_error(f"Action {name}: prefixListIdentifier applies to scope prefix-list only.")


def document_plan(name: str, parameters: Mapping[str, str]) -> Dict[str, Any]:
    """The impairment an ``aws:ssm:send-command`` asks for, or the ValidationException."""
    document = parameters.get("documentArn", "").rsplit("/", 1)[-1]
    if ":document/" not in parameters.get("documentArn", "") or document not in DOCUMENTS:
        raise validation_error(f"Action {name}: the failover-gameday lab runs only the SSM documents "
                               f"{LATENCY_DOCUMENT} and {LOSS_DOCUMENT} (documentArn "
                               f"arn:aws:ssm:REGION::document/NAME), not {parameters.get('documentArn')!r}.")
    try:
        given = json.loads(parameters.get("documentParameters") or "{}")
    except ValueError:
        raise validation_error(f"Action {name}: documentParameters is not a JSON object.") from None
    if not isinstance(given, dict):
        raise validation_error(f"Action {name}: documentParameters is not a JSON object.")
    unknown = sorted(set(given) - set(DOCUMENT_PARAMETERS[document]))
    if unknown:
        raise validation_error(f"Action {name}: {document} has no parameter {unknown[0]!r} "
                               f"(known: {', '.join(DOCUMENT_PARAMETERS[document])}).")
    effect_key, lab_key = DOCUMENTS[document]
    highest = 100.0 if lab_key == "loss_percent" else 60_000.0
    plan = {"document": document, lab_key: _number(name, given, effect_key, highest),
            "seconds": _number(name, given, "DurationSeconds", MAX_DURATION_SECONDS),
            "direction": _direction(name, given.get("TrafficType", "egress")),
            "azs": _sources(name, given.get("Sources"))}
    if "JitterMilliseconds" in given:
        plan["jitter_ms"] = _number(name, given, "JitterMilliseconds", plan.get("delay_ms", 0.0), allow_zero=True)
    if str(given.get("FlowsPercent", "100")) not in ("100", "100.0"):
        raise validation_error(f"Action {name}: FlowsPercent {given['FlowsPercent']} is not modelled by the "
                               "failover-gameday lab: its impairments act on every flow (use 100).")
    return plan


def _number(name: str, given: Mapping[str, Any], key: str, high: float, allow_zero: bool = False) -> float:
    try:
        value = float(given[key])
    except KeyError:
        raise validation_error(f"Action {name}: documentParameters needs {key}.") from None
    except (TypeError, ValueError):
        raise validation_error(f"Action {name}: {key} must be a number, not {given[key]!r}.") from None
    if value != value or value < 0 or (value == 0 and not allow_zero) or value > high:
        raise validation_error(f"Action {name}: {key} {value:g} must be more than 0 and at most {high:g}.")
    return value


def _direction(name: str, traffic: str) -> str:
    directions = {"egress": "to", "ingress": "from"}
    if traffic not in directions:
        raise validation_error(f"Action {name}: TrafficType must be egress or ingress, not {traffic!r}.")
    return directions[traffic]


def _sources(name: str, sources: Optional[str]) -> List[str]:
    """The AZs whose nodes the flows go to: AZ names, or ALL; addresses and domains are refused."""
    if not sources:
        raise validation_error(f"Action {name}: documentParameters needs Sources.")
    items = [s.strip() for s in str(sources).split(",") if s.strip()]
    if items == ["ALL"]:
        return list(AZS)
    unknown = [s for s in items if s not in AZS]
    if unknown:
        raise validation_error(f"Action {name}: source {unknown[0]!r} is not modelled by the failover-gameday "
                               f"lab: it models Availability Zone sources ({', '.join(AZS)}) and ALL.")
    return list(dict.fromkeys(items))


def impair(lab, zones: List[str], values: Dict[str, Any], started: List[str], failed) -> None:
    """Apply ``values`` to each AZ (appending it to ``started``); ``failed(reason)`` on refusal."""
    for zone in zones:
        try:
            lab.impair_network({"az": zone, **values})
        except LabError as exc:
            raise failed(f"network impairment of {zone} was refused by the lab: {exc}") from None
        started.append(zone)


def lift(lab, zones: List[str]) -> None:
    """End the impairments of ``zones`` (an AZ whose impairment already expired is fine)."""
    for zone in zones:
        try:
            lab.clear_network(zone)
        except LabError:
            pass
