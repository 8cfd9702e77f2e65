"""The one table of failover events the pack knows, and a classifier from message to kind.

RDS `DescribeEvents` returns Message/Date/SourceIdentifier/EventCategories but no event id
(only EventBridge's `detail.EventID` carries it), so the id is inferred from the message.
The often-quoted RDS-EVENT-0005 ("instance created") and RDS-EVENT-0006 ("instance restarted") are not
failover events; the failover ids are 0013 (started) and 0049 / 0015 (completed).
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from groundfloor.timefmt import iso

__all__ = ["EventKind", "EVENT_TABLE", "classify", "describe_event", "wording"]


@dataclass(frozen=True)
class EventKind:
    service: str  # "rds" | "elasticache"
    event_id: Optional[str]  # RDS event id; ElastiCache events have none
    kind: str  # failover-started | failover-completed | failover-not-attempted | ...
    message: str  # the AWS wording (documentation and the lab use it)
    pattern: str  # regex matched case-insensitively against DescribeEvents' Message


EVENT_TABLE: List[EventKind] = [
    EventKind("rds", "RDS-EVENT-0013", "failover-started",
              "Multi-AZ instance failover started.", r"multi-az instance failover started"),
    EventKind("rds", "RDS-EVENT-0049", "failover-completed",
              "Multi-AZ instance failover completed", r"multi-az instance failover (has )?completed"),
    EventKind("rds", "RDS-EVENT-0015", "failover-completed",
              "Multi-AZ failover to standby complete - DNS may take several minutes.",
              r"failover to standby (is )?complete"),
    EventKind("rds", "RDS-EVENT-0034", "failover-not-attempted",
              "Amazon RDS is not attempting a requested failover because a failover recently "
              "occurred on the DB instance.", r"not attempting a requested failover"),
    EventKind("rds", "RDS-EVENT-0004", "shutdown", "DB instance shutdown",
              r"db instance shutdown"),
    EventKind("rds", "RDS-EVENT-0006", "restarted", "DB instance restarted",
              r"db instance restarted"),
    EventKind("rds", "RDS-EVENT-0361", "standby-recovery-started",
              "Recovery of standby DB instance has started.", r"recovery of standby db instance has started"),
    EventKind("rds", "RDS-EVENT-0362", "standby-recovery-completed",
              "Recovery of standby DB instance has completed.", r"recovery of standby db instance has completed"),
    # The failover reason RDS adds to an automatic failover (the event table gives it no id).
    EventKind("rds", None, "failover-reason-unhealthy",
              "The primary host of the RDS Multi-AZ instance is unhealthy.",
              r"primary host of the rds multi-az instance is unhealthy"),
    EventKind("rds", None, "failover-reason-unreachable",
              "The primary host of the RDS Multi-AZ instance is unreachable due to loss of network connectivity.",
              r"multi-az instance is unreachable"),
    EventKind("rds", None, "failover-reason-busy",
              "The RDS Multi-AZ primary instance is busy and unresponsive.",
              r"primary instance is busy and unresponsive"),
    # Multi-AZ DB clusters and Aurora (source type db-cluster).
    EventKind("rds", "RDS-EVENT-0073", "failover-started",
              "Started cross AZ failover to DB instance: {name}",
              r"started cross[- ]az failover"),
    EventKind("rds", "RDS-EVENT-0072", "failover-started",
              "Started same AZ failover to DB instance: {name}", r"started same[- ]az failover"),
    EventKind("rds", "RDS-EVENT-0071", "failover-completed",
              "Completed failover to DB instance: {name}", r"completed failover to db instance"),
    EventKind("rds", "RDS-EVENT-0069", "failover-failed",
              "Cluster failover failed, check the health of your cluster instances and try again.",
              r"cluster failover failed"),
    # ElastiCache (source types replication-group and cache-cluster; no event ids).
    EventKind("elasticache", None, "failover-started",
              "Test Failover API called for node group {node_group}",
              r"test failover api called for node group"),
    EventKind("elasticache", None, "failover-completed",
              "Failover from primary node {old} to replica node {new} completed",
              r"failover from primary node .* to replica node .* completed"),
    EventKind("elasticache", None, "recovery-started", "Recovering cache nodes {nodes}",
              r"^recovering cache nodes"),
    EventKind("elasticache", None, "recovery-completed",
              "Finished recovery for cache nodes {nodes}", r"finished recovery for cache nodes"),
    EventKind("elasticache", None, "node-deleted", "Cache cluster deleted: {id}",
              r"cache cluster deleted"),
    EventKind("elasticache", None, "node-created", "Cache cluster created: {id}",
              r"cache cluster created"),
]

_COMPILED = [(re.compile(entry.pattern, re.IGNORECASE), entry) for entry in EVENT_TABLE]


def classify(message: str) -> Optional[EventKind]:
    """The table entry whose pattern matches an AWS event message, or None."""
    for pattern, entry in _COMPILED:
        if pattern.search(message or ""):
            return entry
    return None


def wording(service: str, kind: str, event_id: Optional[str] = None, **fields: Any) -> Tuple[Optional[str], str]:
    """(event id, message) in AWS's wording for an event the lab publishes.

    The lab emits from this table and the pack checks against it, so the two cannot drift.
    `fields` fill the placeholders (`{node_group}`, `{old}`, `{new}`, `{nodes}`, `{id}`, `{name}`).
    """
    for entry in EVENT_TABLE:
        if entry.service == service and entry.kind == kind and (event_id is None or entry.event_id == event_id):
            return entry.event_id, entry.message.format(**fields)
    raise KeyError(f"no {service} event of kind {kind!r} ({event_id or 'any id'}) in the table")


def describe_event(event: Dict[str, Any]) -> Dict[str, Any]:
    """A DescribeEvents item (RDS or ElastiCache) as a JSON-ready journal entry."""
    entry = classify(event.get("Message", ""))
    return {
        "date": iso(event.get("Date")),
        "source": event.get("SourceIdentifier"),
        "source_type": event.get("SourceType"),
        "message": event.get("Message"),
        "event_id": entry.event_id if entry else None,
        "kind": entry.kind if entry else None,
    }
