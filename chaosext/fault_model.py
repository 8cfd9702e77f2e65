"""What a fault is, apart from how it is injected: the services it touches and its kind.

Every fault of the pack is declared here once (`CATALOGUE`), and everything that judges a
fault follows from the declaration, never from the fault's name:

- its **services** (`SERVICES`): "rds" (the database, measured through the MySQL endpoint),
  "rds-reader" (a DB cluster's reader endpoint, measured by reads through it: serving again)
  and/or "elasticache" (the cache, measured through the Redis endpoint). Each service has its
  own RTO threshold (configuration `rto_threshold_seconds`, chaosext.thresholds), and a fault
  that touches several services gets one recovery figure per service, judged against that
  service's threshold;
- its **kind** (`KINDS`):
  - "failover": the service moves its primary on request; the control plane reports completion
    with an event, then the endpoint takes writes again. Figure: the RTO (injection until a
    client writes again), per service;
  - "outage": a node or a whole AZ stops (crash, power loss); the service detects it and heals
    by itself. Measured like a failover;
  - "impairment": hosts stay up while their network is slow, lossy or cut; nothing fails over
    and no completion event exists. The control plane is done when the impairment ends (the
    fault's `poll`), and the figure is the time to recover: from the end of the impairment
    until each service takes writes again (0 when it never stopped).

Adding a fault: declare it here (`FaultSpec`), inject it in one mechanics module, expose it
in one action module that builds a `chaosext.recovery.Fault` from this spec, and use it in one
experiment file (docs/architecture.md, "Adding a fault").
"""
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

from chaosext.errors import ActivityError

__all__ = ["Service", "Kind", "FaultSpec", "SERVICES", "KINDS", "CATALOGUE", "ACTIVITIES",
           "spec", "service_of_data_plane", "declared"]


@dataclass(frozen=True)
class Service:
    """An AWS service a fault can touch, and the endpoint through which its recovery is seen
    (a service with two endpoints, a DB cluster's writer and readers, is one entry per endpoint)."""

    name: str  # the key of `rto_threshold_seconds` mappings: "rds", "rds-reader", "elasticache"
    label: str  # what a report calls it: "database", "database readers", "cache"
    data_plane: str  # the endpoint kind: "mysql", "redis" (chaosext.dataplane), "mysql-reader" (readplane)
    recovered: str = "writable"  # what recovery means there: "writable" again, or "serving" reads again


@dataclass(frozen=True)
class Kind:
    """How a fault ends and what is measured."""

    name: str
    completion_event: bool  # the control plane reports completion through an AWS event
    figure: str  # "rto" (injection -> writable) or "time_to_recover" (impairment end -> writable)


@dataclass(frozen=True)
class FaultSpec:
    """One fault as the pack declares it: name, services touched, kind, completion event."""

    name: str
    services: Tuple[str, ...]  # empty only for a generic FIS template nobody declared
    kind: str
    completion_kind: Optional[str] = "failover-completed"  # the event kind that ends it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ActivityError(f"fault {self.name}: unknown kind {self.kind!r}; "
                                f"use one of {', '.join(KINDS)}")
        unknown = [s for s in self.services if s not in SERVICES]
        if unknown:
            raise ActivityError(f"fault {self.name}: unknown service(s) {', '.join(map(str, unknown))}; "
                                f"use {', '.join(SERVICES)}")


SERVICES: Dict[str, Service] = {
    "rds": Service("rds", "database", "mysql"),
    "rds-reader": Service("rds-reader", "database readers", "mysql-reader", "serving"),
    "elasticache": Service("elasticache", "cache", "redis"),
}
KINDS: Dict[str, Kind] = {
    "failover": Kind("failover", True, "rto"),
    "outage": Kind("outage", True, "rto"),
    "impairment": Kind("impairment", False, "time_to_recover"),
}
_FIS_ENDED = "fis-experiment-ended"
CATALOGUE: Dict[str, FaultSpec] = {s.name: s for s in (
    FaultSpec("rds-force-failover", ("rds",), "failover"),
    FaultSpec("rds-cluster-failover", ("rds", "rds-reader"), "failover"),
    FaultSpec("rds-reboot", ("rds",), "outage", "restarted"),
    FaultSpec("elasticache-test-failover", ("elasticache",), "failover"),
    FaultSpec("elasticache-primary-deletion", ("elasticache",), "outage"),
    FaultSpec("elasticache-restore-replicas", ("elasticache",), "outage", "node-created"),
    FaultSpec("db-primary-crash", ("rds",), "outage"),
    FaultSpec("cache-primary-crash", ("elasticache",), "outage"),
    FaultSpec("fis-rds-reboot-db-instances", ("rds",), "failover", _FIS_ENDED),
    FaultSpec("fis-rds-failover-db-cluster", ("rds", "rds-reader"), "failover", _FIS_ENDED),
    FaultSpec("fis-elasticache-interrupt-az-power", ("elasticache",), "outage", _FIS_ENDED),
    FaultSpec("fis-az-power-interruption", ("rds", "elasticache"), "outage", _FIS_ENDED),
    # FIS network actions (chaosext.fis.actions): the shop's flows to the database and the cache
    FaultSpec("fis-az-connectivity-disruption", ("rds", "elasticache"), "impairment", None),
    FaultSpec("fis-az-application-slowdown", ("rds", "elasticache"), "impairment", None),
    FaultSpec("fis-cross-az-traffic-slowdown", ("rds", "elasticache"), "impairment", None),
    # gray failures on the lab's network (chaosext.network): the hosts stay up
    FaultSpec("az-network-slowdown", ("rds", "elasticache"), "impairment", None),
    FaultSpec("az-network-isolation", ("rds", "elasticache"), "impairment", None),
    FaultSpec("cross-az-packet-loss", ("rds", "elasticache"), "impairment", None),
    FaultSpec("cache-latency", ("elasticache",), "impairment", None),
)}
# Fault actions (function name) -> the fault they inject: how long an experiment may take
# (chaosext.thresholds.experiment_seconds) without running it.
ACTIVITIES: Dict[str, str] = {
    "force_failover": "rds-force-failover", "failover_db_cluster": "rds-cluster-failover",
    "reboot_db_instance": "rds-reboot", "test_failover": "elasticache-test-failover",
    "delete_primary_node": "elasticache-primary-deletion",
    "checkout_through_db_failover": "rds-force-failover",
    "crash_db_primary": "db-primary-crash", "crash_cache_primary": "cache-primary-crash",
    "reboot_db_instances": "fis-rds-reboot-db-instances",
    "interrupt_cache_az_power": "fis-elasticache-interrupt-az-power",
    "az_power_interruption": "fis-az-power-interruption",
    "disrupt_az_connectivity": "fis-az-connectivity-disruption",
    "az_application_slowdown": "fis-az-application-slowdown",
    "cross_az_traffic_slowdown": "fis-cross-az-traffic-slowdown",
    "impair_az_network": "az-network-slowdown",
}


def spec(name: str) -> FaultSpec:
    """The declared fault `name` (an unknown name is a bug of the pack, not a user mistake)."""
    return CATALOGUE[name]


def service_of_data_plane(kind: Optional[str]) -> Optional[str]:
    """"rds" for "mysql", "elasticache" for "redis", else None."""
    return next((s.name for s in SERVICES.values() if s.data_plane == kind), None)


def declared(services: Iterable[str], kind: Optional[str] = None) -> Tuple[Tuple[str, ...], str]:
    """Services and kind as a result or ledger record carries them, checked: unknown services
    are dropped, and a record without a known kind is read as a failover."""
    known = tuple(s for s in services or () if s in SERVICES)
    return known, (kind if kind in KINDS else "failover")
