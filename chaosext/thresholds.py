"""How long a fault may take: RTO thresholds, the waits and timeouts derived from them.

A failover in the fast lab lasts a second or two; on AWS an RDS Multi-AZ instance failover
takes 60-120 s and an ElastiCache primary failover tens of seconds (docs/experiments/gameday.md,
"At AWS timescales"). Every wait of the pack is therefore derived from one configured value,
the RTO threshold of the fault, instead of being written into each experiment for one target.

Configuration keys:
- `rto_threshold_seconds`: a number, or a mapping by fault name ("rds-force-failover"), target
  id ("shop-db") or service ("rds", "elasticache": the services a fault declares,
  chaosext.fault_model) with an optional "default"; also a JSON text of either (what an
  `{"type": "env", "env_var_type": "json"}` entry yields), so `$GAMEDAY_RTO_THRESHOLD_SECONDS`
  can set it per target. A fault's name never selects a service: a fault named `network-...`
  that declares the database gets the database's threshold.
- `fault_timeout_factor` (2): a fault action without an explicit `timeout` waits this many
  thresholds for the control plane and the data plane.
- `redundancy_timeout_seconds` (1800): how long a rollback waits for redundancy (a new replica).
- `impairment_thresholds`: what shoppers may feel during and after a network impairment, per
  journey step (`impairment_thresholds`, below; docs/reports.md "Impairments").
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from chaoslib import substitute_dict

from chaosext.errors import GamedayError
from chaosext.fault_model import ACTIVITIES, CATALOGUE, service_of_data_plane
from groundfloor.timefmt import duration_seconds

__all__ = ["per_fault", "per_service", "threshold_from", "rto_threshold", "fault_threshold",
           "fault_timeout", "redundancy_timeout", "experiment_seconds", "DEFAULT_FAULT_TIMEOUT",
           "impairment_thresholds", "step_limits"]

DEFAULT_FAULT_TIMEOUT = 300.0  # no threshold configured: what the actions always waited
DEFAULT_TIMEOUT_FACTOR = 2.0
DEFAULT_REDUNDANCY_TIMEOUT = 1800.0  # AWS adds an ElastiCache replica in minutes, not seconds
OTHER_ACTIVITY_SECONDS = 60.0  # a probe or action with no timeout of its own
HYPOTHESIS_SECONDS = 120.0  # one steady-state hypothesis (HTTP journeys, RPO look-ups)


def _number(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _parsed(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def per_fault(value: Any, fault: Optional[str], target: Optional[str] = None,
              service: Optional[str] = None) -> Any:
    """What a per-fault setting says for `fault` on `target`, for one of its services.

    `value` is a plain value, or a mapping by fault name, target id or service, with an
    optional "default"; JSON text of either is parsed.
    """
    value = _parsed(value)
    if isinstance(value, Mapping):
        for key in (fault, target, service):
            if key and key in value:
                return per_fault(value[key], fault, target, service)
        return per_fault(value.get("default"), fault, target, service)
    return value


def per_service(value: Any, fault: Optional[str], target: Optional[str],
                services: Sequence[str]) -> Dict[Optional[str], Any]:
    """`per_fault` for each declared service (a fault without one: {None: ...})."""
    return {service: per_fault(value, fault, target, service) for service in (services or [None])}


def threshold_from(value: Any, fault: Optional[str], target: Optional[str] = None,
                   service: Optional[str] = None) -> Optional[float]:
    """The threshold in seconds `value` (see `per_fault`) sets for one service of `fault`."""
    return _number(per_fault(value, fault, target, service))


def rto_threshold(configuration: Optional[Mapping[str, Any]], fault: Optional[str],
                  target: Optional[str] = None, service: Optional[str] = None
                  ) -> Optional[float]:
    """The configured RTO threshold of one service of `fault` on `target`, or None."""
    return threshold_from((configuration or {}).get("rto_threshold_seconds"), fault, target,
                          service)


def fault_threshold(configuration: Optional[Mapping[str, Any]], fault: Optional[str],
                    target: Optional[str] = None, services: Sequence[str] = ()
                    ) -> Optional[float]:
    """How long the whole fault may take: the largest threshold of its services, or None."""
    found = [t for t in per_service((configuration or {}).get("rto_threshold_seconds"),
                                    fault, target, services).values()
             if _number(t) is not None]
    return max((_number(t) for t in found), default=None)


def fault_timeout(configuration: Optional[Mapping[str, Any]], fault: Optional[str],
                  target: Optional[str] = None, given: Any = None,
                  services: Sequence[str] = ()) -> float:
    """How long a fault action waits for recovery: `given`, else factor x threshold (the
    largest of its services'), else 300 s.

    Long enough that the RTO is still measured when it overshoots the threshold (the safeguard,
    not this timeout, decides when an outage has run away).
    """
    explicit = _number(given)
    if explicit is not None:
        return explicit
    threshold = fault_threshold(configuration, fault, target, services)
    if threshold is None:
        return DEFAULT_FAULT_TIMEOUT
    factor = _number((configuration or {}).get("fault_timeout_factor")) or DEFAULT_TIMEOUT_FACTOR
    return max(threshold * factor, threshold + 30.0)


def redundancy_timeout(configuration: Optional[Mapping[str, Any]], given: Any = None) -> float:
    """How long a rollback waits for redundancy to be restored (a replica added)."""
    explicit = _number(given)
    if explicit is not None:
        return explicit
    configured = _number((configuration or {}).get("redundancy_timeout_seconds"))
    return configured if configured is not None else DEFAULT_REDUNDANCY_TIMEOUT


def _activity_seconds(activity: Dict[str, Any], configuration: Mapping[str, Any]) -> float:
    provider = activity.get("provider") or {}
    func = provider.get("func")
    # "${name}" arguments as `chaos run` resolves them (a cut of ${cut_duration} lasts that long)
    args = substitute_dict(dict(provider.get("arguments") or {}), dict(configuration))
    if func in ACTIVITIES:
        declared = CATALOGUE[ACTIVITIES[func]]
        seconds = fault_timeout(configuration, declared.name, None, args.get("timeout"),
                                declared.services)
        seconds += _number(args.get("wait_for_fault")) or 0.0
        seconds += _fault_length(args) if args.get("timeout") is None else 0.0
    elif func == "wait_until_writable":
        service = service_of_data_plane(args.get("kind"))
        seconds = fault_timeout(configuration, None, None, args.get("timeout"),
                                [service] if service else [])
    elif func == "restore_replicas":
        seconds = redundancy_timeout(configuration, args.get("timeout"))
    elif func == "failover_events_within":
        seconds = _number(args.get("within_seconds")) or rto_threshold(
            configuration, None, None, args.get("kind")) or OTHER_ACTIVITY_SECONDS
    else:
        seconds = _number(args.get("timeout")) or OTHER_ACTIVITY_SECONDS
    pauses = activity.get("pauses") or {}
    return seconds + sum(_number(pauses.get(k)) or 0.0 for k in ("before", "after"))


def _fault_length(args: Mapping[str, Any]) -> float:
    """How long a fault lasts by its own arguments (an FIS `duration` such as "PT1M", or
    `duration_seconds`): a recovery wait starts only after it."""
    length = _number(args.get("duration_seconds"))
    if length is None and isinstance(args.get("duration"), str):
        length = duration_seconds(args["duration"])
    return length or 0.0


def experiment_seconds(experiment: Optional[Mapping[str, Any]],
                       configuration: Optional[Mapping[str, Any]] = None) -> Optional[float]:
    """The longest an experiment can run when every wait uses its whole timeout, or None.

    The load's run-time bound must be at least this, or Locust stops in the middle of a slow
    (AWS-timescale) failover and the run fails for the wrong reason.
    """
    if not experiment:
        return None
    configuration = configuration or {}
    steps: Iterable[Dict[str, Any]] = [*(experiment.get("method") or []),
                                       *(experiment.get("rollbacks") or [])]
    total = sum(_activity_seconds(a, configuration) for a in steps if isinstance(a, dict))
    if experiment.get("steady-state-hypothesis"):
        total += 2 * HYPOTHESIS_SECONDS
    return total


# Impairment thresholds (configuration `impairment_thresholds`), judged by what shoppers felt
# during and after a network impairment (gameday/report/impairment.py):
#   {"time_to_recover_seconds": 5, "orders_lost": 0,
#    "steps": {"checkout": {"max_error_ratio": 0.05, "max_p95_ms": 2000,
#                           "max_p95_increase_ms": 1500}}}
# Every entry is optional; a step named "*" applies to every journey step without its own entry.
IMPAIRMENT_TOP_KEYS = ("time_to_recover_seconds", "orders_lost", "steps")
IMPAIRMENT_STEP_KEYS = ("max_error_ratio", "max_p95_ms", "max_p95_increase_ms",
                        "max_unavailable_seconds", "time_to_recover_seconds")


def _limit(value: Any, where: str, ratio: bool = False) -> float:
    """A threshold value: a number >= 0 (a ratio also <= 1), else one clear sentence."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise GamedayError(f"impairment_thresholds: {where} must be a number, got {value!r}")
    if value < 0 or (ratio and value > 1):
        raise GamedayError(f"impairment_thresholds: {where} must be "
                           + ("between 0 and 1" if ratio else "0 or more") + f", got {value!r}")
    return float(value)


def _known(entries: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    unknown = sorted(str(k) for k in entries if k not in keys)
    if unknown:
        raise GamedayError(f"impairment_thresholds{where}: unknown key(s) {', '.join(unknown)}; "
                           f"use {', '.join(keys)}")


def _step_limits(step: str, entries: Any) -> Dict[str, float]:
    if not isinstance(entries, Mapping):
        raise GamedayError(f"impairment_thresholds: steps.{step} must be an object of limits "
                           f"({', '.join(IMPAIRMENT_STEP_KEYS)}), got {entries!r}")
    _known(entries, IMPAIRMENT_STEP_KEYS, f": steps.{step}")
    return {key: _limit(value, f"steps.{step}.{key}", ratio=key == "max_error_ratio")
            for key, value in entries.items()}


def impairment_thresholds(value: Any) -> Dict[str, Any]:
    """The configured `impairment_thresholds`, checked: {"time_to_recover_seconds": float|None,
    "orders_lost": float|None, "steps": {step: {limit: float}}}.

    `value` is the mapping, its JSON text or None (no thresholds). A bad shape raises
    GamedayError with one sentence that names the entry, so the run is refused before it starts.
    """
    raw, value = value, _parsed(value)
    if value is None and isinstance(raw, str) and raw.strip():
        raise GamedayError(f"impairment_thresholds is not valid JSON: {raw.strip()[:80]!r}")
    if value in (None, ""):
        value = {}
    if not isinstance(value, Mapping):
        raise GamedayError(f"impairment_thresholds must be an object such as "
                           f'{{"time_to_recover_seconds": 5, "steps": {{"checkout": '
                           f'{{"max_p95_increase_ms": 1500}}}}}}, got {value!r}')
    _known(value, IMPAIRMENT_TOP_KEYS, "")
    steps = value.get("steps") or {}
    if not isinstance(steps, Mapping):
        raise GamedayError(f"impairment_thresholds: steps must be an object by journey step, "
                           f"got {steps!r}")
    out: Dict[str, Any] = {key: None if value.get(key) is None else _limit(value[key], key)
                           for key in ("time_to_recover_seconds", "orders_lost")}
    out["steps"] = {str(step): _step_limits(str(step), limits) for step, limits in steps.items()}
    return out


def step_limits(parsed: Mapping[str, Any], step: str) -> Dict[str, float]:
    """The limits that apply to one journey step: its own entry, else the "*" entry; a
    top-level `time_to_recover_seconds` applies to every step that sets none."""
    steps = parsed.get("steps") or {}
    limits = dict(steps.get(step, steps.get("*", {})))
    if parsed.get("time_to_recover_seconds") is not None:
        limits.setdefault("time_to_recover_seconds", parsed["time_to_recover_seconds"])
    return limits
