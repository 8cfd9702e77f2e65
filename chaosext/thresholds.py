"""How long a fault may take: RTO thresholds, the waits and timeouts derived from them.

A failover in the fast lab lasts a second or two; on AWS an RDS Multi-AZ instance failover
takes 60-120 s and an ElastiCache primary failover tens of seconds (docs/experiments/gameday.md,
"At AWS timescales"). Every wait of the pack is therefore derived from one configured value,
the RTO threshold of the fault, instead of being written into each experiment for one target.

Configuration keys:
- `rto_threshold_seconds`: a number, or a mapping by fault name ("rds-force-failover"), target
  id ("shop-db") or service prefix ("rds", "elasticache") with an optional "default"; also a
  JSON text of either (what an `{"type": "env", "env_var_type": "json"}` entry yields), so
  `$GAMEDAY_RTO_THRESHOLD_SECONDS` can set it per target.
- `fault_timeout_factor` (2): a fault action without an explicit `timeout` waits this many
  thresholds for the control plane and the data plane.
- `redundancy_timeout_seconds` (1800): how long a rollback waits for redundancy (a new replica).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Mapping, Optional

__all__ = ["service_of", "per_fault", "threshold_from", "rto_threshold", "fault_timeout", "redundancy_timeout",
           "experiment_seconds", "DEFAULT_FAULT_TIMEOUT"]

DEFAULT_FAULT_TIMEOUT = 300.0  # no threshold configured: what the actions always waited
DEFAULT_TIMEOUT_FACTOR = 2.0
DEFAULT_REDUNDANCY_TIMEOUT = 1800.0  # AWS adds an ElastiCache replica in minutes, not seconds
OTHER_ACTIVITY_SECONDS = 60.0  # a probe or action with no timeout of its own
HYPOTHESIS_SECONDS = 120.0  # one steady-state hypothesis (HTTP journeys, RPO look-ups)

# Words in a fault name that tell its service.
SERVICE_ALIASES = {"rds": "rds", "db": "rds", "elasticache": "elasticache", "cache": "elasticache"}
# Data-plane endpoint kind -> the service whose RTO threshold bounds a wait for it.
DATA_PLANE_SERVICE = {"mysql": "rds", "redis": "elasticache"}
# Fault actions: function name -> the fault name their result carries.
FAULT_FUNCS = {"force_failover": "rds-force-failover", "failover_db_cluster": "rds-cluster-failover",
               "reboot_db_instance": "rds-reboot", "test_failover": "elasticache-test-failover",
               "delete_primary_node": "elasticache-primary-deletion",
               "checkout_through_db_failover": "rds-force-failover",
               "crash_db_primary": "db-primary-crash", "crash_cache_primary": "cache-primary-crash"}


def _number(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def service_of(fault: Optional[str]) -> Optional[str]:
    """"rds" or "elasticache" for a fault name that names its service (`fis-rds-...`,
    `db-primary-crash`, `cache-primary-crash`), else None."""
    for token in str(fault or "").split("-"):
        if token in SERVICE_ALIASES:
            return SERVICE_ALIASES[token]
    return None


def per_fault(value: Any, fault: Optional[str], target: Optional[str] = None) -> Any:
    """What a per-fault setting says for `fault` on `target`.

    `value` is a plain value, or a mapping by fault name, target id, service (`service_of`) or
    the fault name's first word, with an optional "default"; JSON text of either is parsed.
    """
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping):
        prefix = str(fault or "").split("-")[0]
        for key in (fault, target, service_of(fault), prefix):
            if key and key in value:
                return per_fault(value[key], fault, target)
        return per_fault(value.get("default"), fault, target)
    return value


def threshold_from(value: Any, fault: Optional[str], target: Optional[str] = None
                   ) -> Optional[float]:
    """The threshold in seconds `value` (see `per_fault`) sets for `fault` on `target`."""
    return _number(per_fault(value, fault, target))


def rto_threshold(configuration: Optional[Mapping[str, Any]], fault: Optional[str],
                  target: Optional[str] = None) -> Optional[float]:
    """The configured RTO threshold of `fault` (a fault name or a service prefix), or None."""
    return threshold_from((configuration or {}).get("rto_threshold_seconds"), fault, target)


def fault_timeout(configuration: Optional[Mapping[str, Any]], fault: str,
                  target: Optional[str] = None, given: Any = None) -> float:
    """How long a fault action waits for recovery: `given`, else factor x threshold, else 300 s.

    Long enough that the RTO is still measured when it overshoots the threshold (the safeguard,
    not this timeout, decides when an outage has run away).
    """
    explicit = _number(given)
    if explicit is not None:
        return explicit
    threshold = rto_threshold(configuration, fault, target)
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
    args = provider.get("arguments") or {}
    if func in FAULT_FUNCS:
        seconds = fault_timeout(configuration, FAULT_FUNCS[func], None, args.get("timeout"))
        seconds += _number(args.get("wait_for_fault")) or 0.0
    elif func == "wait_until_writable":
        seconds = fault_timeout(configuration, DATA_PLANE_SERVICE.get(args.get("kind"), "default"),
                                None, args.get("timeout"))
    elif func == "restore_replicas":
        seconds = redundancy_timeout(configuration, args.get("timeout"))
    elif func == "failover_events_within":
        seconds = _number(args.get("within_seconds")) or rto_threshold(
            configuration, args.get("kind")) or OTHER_ACTIVITY_SECONDS
    else:
        seconds = _number(args.get("timeout")) or OTHER_ACTIVITY_SECONDS
    pauses = activity.get("pauses") or {}
    return seconds + sum(_number(pauses.get(k)) or 0.0 for k in ("before", "after"))


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
