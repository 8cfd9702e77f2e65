"""Alerting probes: did the failover events, the CloudWatch alarm and the SNS topic fire in time?

A game day is only half done when the database came back: the people on call must also have
been told. These probes check the evidence AWS keeps — DescribeEvents for RDS/ElastiCache,
CloudWatch alarm history, the SNS topic's NumberOfMessagesPublished metric — for a window that
starts at the fault (`since`, a fault result, or the last fault this run injected).
"""
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails, thresholds
from chaosext.alerts import faults as fault_log
from chaosext.aws import aws_call, aws_client, paginate
from chaosext.elasticache.probes import describe_group, group_events
from chaosext.errors import ActivityError
from groundfloor.aws_events import EVENT_TABLE
from chaosext.rds.probes import events_since
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso, parse_time, period_boundary

__all__ = ["failover_events_within", "cloudwatch_alarm_fired", "sns_topic_published"]

logger = logging.getLogger("chaostoolkit")

DEFAULT_EXPECT = ("started", "completed")
# Kinds that mean "AWS did not fail over"; they make a check unmet unless they were expected.
REFUSAL_KINDS = ("failover-not-attempted", "failover-failed")
RDS_SOURCE_TYPES = ("db-instance", "db-cluster")


# -- the window ------------------------------------------------------------------------------
def _time(value: Any, what: str) -> datetime:
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        raise ActivityError(f"{what} {value!r} is not an ISO-8601 time (e.g. "
                            "2026-11-26T06:00:00Z)") from None


def window_start(since: Optional[str], fault: Optional[Dict[str, Any]], target: Optional[str],
                 window_seconds: Optional[float] = None) -> datetime:
    """Where a check's window starts: `since`, the fault's `injected_at`, this run's last fault
    (on `target`), else `window_seconds` ago — or a clear error when that is None too."""
    if since:
        return _time(since, "since")
    if fault is not None:
        if not isinstance(fault, dict) or not fault.get("injected_at"):
            raise ActivityError("fault must be a fault result with `injected_at` (the output "
                                "of a failover action)")
        return _time(fault["injected_at"], "fault injected_at")
    remembered = fault_log.last_fault(target) or fault_log.last_fault()
    if remembered:
        return _time(remembered["injected_at"], "injected_at")
    if window_seconds is not None:
        return parse_time(time.time()) - timedelta(seconds=float(window_seconds))
    raise ActivityError(
        "no start for the window: pass `since` (ISO-8601) or `fault`, or inject the fault "
        "earlier in this run with the chaosext.alerts.notify control declared (it remembers "
        "fault results)")


def _repeat(check: Callable[[], Dict[str, Any]], done: Callable[[Dict[str, Any]], bool],
            until: float, poll_interval: float) -> Dict[str, Any]:
    """Run `check` until `done` or the epoch time `until`; return the last answer."""
    last: Dict[str, Any] = {}

    def finished() -> bool:
        last["answer"] = check()
        return done(last["answer"])

    poll_until(finished, max(0.0, until - time.time()), max(0.05, float(poll_interval)))
    return last["answer"]


# -- failover events -------------------------------------------------------------------------
def _matcher(service: str, name: str) -> Callable[[Dict[str, Any]], bool]:
    """A predicate for one `expect` item: a kind, a kind without "failover-", or an event id."""
    wanted = str(name).strip().lower()
    entries = [e for e in EVENT_TABLE if e.service == service]
    if any(wanted in (e.kind, e.kind.replace("failover-", ""), (e.event_id or "").lower())
           for e in entries):
        return lambda ev: wanted in ((ev.get("kind") or "").replace("failover-", ""),
                                     ev.get("kind"), (ev.get("event_id") or "").lower())
    names = sorted({e.kind.replace("failover-", "") for e in entries}
                   | {e.event_id for e in entries if e.event_id})
    raise ActivityError(f"unknown {service} event {name!r} in expect: use one of {names}")


def _fetch_events(kind: str, resource_id: str, start: float, source_type: str,
                  fault: Optional[Dict[str, Any]], configuration, secrets):
    client = aws_client("rds" if kind == "rds" else "elasticache", configuration, secrets)
    if kind == "rds":
        return lambda: events_since(client, source_type, resource_id, start)
    before = (fault or {}).get("before") or {}
    extra = [n for n in [before.get("node"), *before.get("replicas", [])] if n]

    def fetch():  # describe every time: a deleted primary leaves MemberClusters
        return group_events(client, describe_group(client, resource_id), start, extra)
    return fetch


def _evaluate(events: List[Dict[str, Any]], matchers: Dict[str, Callable], anchor: float,
              deadline: float) -> Dict[str, Any]:
    found, late = {}, []
    for name, matches in matchers.items():
        hits = sorted((parse_time(e["date"]).timestamp(), e["date"], e) for e in events
                      if matches(e) and e.get("date"))
        if not hits:
            continue
        # An event just before the fault is clock skew only if nothing matches after it (a
        # back-to-back earlier failover must not satisfy this one).
        when, _, first = next((h for h in hits if h[0] >= anchor), hits[0])
        found[name] = {**first, "latency_seconds": round(when - anchor, 3)}
        if when > deadline:
            late.append(name)
    expected_kinds = {hit.get("kind") for hit in found.values()}
    refusals = [e for e in events
                if e.get("kind") in REFUSAL_KINDS and e.get("kind") not in expected_kinds]
    missing = [n for n in matchers if n not in found or n in late]
    return {"met": not missing and not refusals, "missing": missing, "late": late,
            "refusals": refusals, "found": found,
            "latency_seconds": {n: v["latency_seconds"] for n, v in found.items()},
            "events": events}


def failover_events_within(kind: str, resource_id: str, since: Optional[str] = None,
                           within_seconds: Optional[float] = None,
                           expect: Optional[Sequence[str]] = None,
                           fault: Optional[Dict[str, Any]] = None,
                           source_type: str = "db-instance", wait: bool = True,
                           poll_interval: float = 2.0, clock_skew_seconds: float = 0.0,
                           configuration: Configuration = None, secrets: Secrets = None
                           ) -> Dict[str, Any]:
    """Check that the expected failover events were reported within `within_seconds` of the fault.

    `kind` is "rds" (a DB instance, or `source_type` "db-cluster") or "elasticache" (a
    replication group and its nodes). `expect` lists event kinds from groundfloor.aws_events
    ("started", "completed", "recovery-completed", "restarted", ...) or RDS event ids
    ("RDS-EVENT-0049"); default started + completed. The window starts at `since` (ISO-8601),
    at `fault["injected_at"]`, or at the last fault this run injected; `within_seconds` defaults
    to the configured RTO threshold of `kind` (chaosext.thresholds, 300 s when none). With `wait`, polls
    DescribeEvents until every expected event is there or the bound has passed. Events dated
    before the window start are ignored; raise `clock_skew_seconds` only if this machine's clock
    may run ahead of AWS's (back-to-back failovers would otherwise match the previous one).

    Returns {"met", "missing", "late", "refusals", "found", "latency_seconds" (per expected
    event, from the fault), "events", ...}. `met` is false when an expected event is missing or
    late, or when AWS reported it did not fail over (RDS-EVENT-0034, a failed cluster failover).
    An empty `resource_id` (the experiment names no such resource, say no DB instance on a DB
    cluster) is not checked: `met` None and `skipped`, so one experiment serves both topologies.
    """
    kind = str(kind).strip().lower()
    if kind not in ("rds", "elasticache"):
        raise ActivityError(f"unknown kind {kind!r}: use rds or elasticache")
    if kind == "rds" and source_type not in RDS_SOURCE_TYPES:
        raise ActivityError(f"unknown RDS source type {source_type!r}: use db-instance or db-cluster")
    names = [expect] if isinstance(expect, str) else list(expect or DEFAULT_EXPECT)
    matchers = {str(n): _matcher(kind, n) for n in names}
    unjudged = dict(met=None, kind=kind, resource_id=resource_id, expected=names, missing=[], late=[], refusals=[],
                    found={}, latency_seconds={}, events=[])
    if guardrails.is_dry_run(configuration):  # nothing failed over, nothing to judge
        return {**unjudged, "dry_run": True}
    if not resource_id:  # e.g. the DB instance's probe when the DB is a cluster: nothing to judge
        logger.info("Failover events of %s: no resource configured, not checked", kind)
        return {**unjudged, "skipped": "no resource configured"}
    anchor = window_start(since, fault, resource_id).timestamp()
    if within_seconds is None:
        within_seconds = thresholds.rto_threshold(configuration, None, resource_id, kind) \
            or thresholds.DEFAULT_FAULT_TIMEOUT
    deadline = anchor + float(within_seconds)
    fetch = _fetch_events(kind, resource_id, anchor - float(clock_skew_seconds), source_type,
                          fault, configuration, secrets)

    def check():
        return _evaluate(fetch(), matchers, anchor, deadline)

    result = _repeat(check, lambda r: not r["missing"] or bool(r["late"]),
                     deadline if wait else 0.0, poll_interval)
    result.update(kind=kind, resource_id=resource_id, since=iso(anchor),
                  within_seconds=float(within_seconds), expected=names,
                  checked_at=iso(time.time()))
    logger.info("Failover events of %s %s within %g s: %s%s", kind, resource_id,
                float(within_seconds), "met" if result["met"] else "NOT met",
                f" (missing {result['missing']})" if result["missing"] else "")
    return result


# -- CloudWatch alarm history ----------------------------------------------------------------
def _transition(item: Dict[str, Any]) -> Dict[str, Any]:
    try:
        data = json.loads(item.get("HistoryData") or "{}")
    except ValueError:
        data = {}
    return {"date": iso(item.get("Timestamp")),
            "from": (data.get("oldState") or {}).get("stateValue"),
            "to": (data.get("newState") or {}).get("stateValue"),
            "summary": item.get("HistorySummary"),
            "reason": (data.get("newState") or {}).get("stateReason")}


def _alarm_history(client, alarm_name: str, start: datetime, end: datetime):
    return paginate(client, "describe_alarm_history", f"alarm {alarm_name}",
                    "AlarmHistoryItems", AlarmName=alarm_name, HistoryItemType="StateUpdate",
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"], StartDate=start, EndDate=end,
                    ScanBy="TimestampAscending", MaxRecords=100)


def _until(until: Optional[str]) -> Callable[[], datetime]:
    if until:
        fixed = _time(until, "until")
        return lambda: fixed
    return lambda: parse_time(time.time())


def cloudwatch_alarm_fired(alarm_name: str, since: Optional[str] = None,
                           until: Optional[str] = None, window_seconds: float = 900.0,
                           state: str = "ALARM", wait_seconds: float = 0.0,
                           poll_interval: float = 15.0, fault: Optional[Dict[str, Any]] = None,
                           configuration: Configuration = None, secrets: Secrets = None
                           ) -> Dict[str, Any]:
    """Check in CloudWatch's alarm history that the alarm went to `state` during the window.

    The window runs from `since` (else `fault["injected_at"]`, the last fault of this run, or
    `window_seconds` ago) to `until` (else now). CloudWatch evaluates alarms once a period, so
    give `wait_seconds` to keep looking for a while after the fault. Read-only
    (DescribeAlarmHistory).

    Returns {"fired", "alarm_name", "state", "since", "until", "first_at", "latency_seconds",
    "transitions": [{"date", "from", "to", "summary", "reason"}]}.
    """
    state = str(state).upper()
    if state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise ActivityError(f"unknown alarm state {state!r}: use ALARM, OK or INSUFFICIENT_DATA")
    client = aws_client("cloudwatch", configuration, secrets)
    start = window_start(since, fault, None, window_seconds)
    end_of = _until(until)

    def check():
        end = end_of()
        moves = [_transition(i) for i in _alarm_history(client, alarm_name, start, end)]
        hits = [m for m in moves if m["to"] == state]
        first = min((m["date"] for m in hits), default=None)
        return {"fired": bool(hits), "alarm_name": alarm_name, "state": state,
                "since": iso(start), "until": iso(end), "first_at": first,
                "latency_seconds": round(parse_time(first).timestamp() - start.timestamp(), 3)
                if first else None,
                "transitions": moves}

    return _repeat(check, lambda r: r["fired"], time.time() + float(wait_seconds),
                   poll_interval)


# -- SNS topic metric ------------------------------------------------------------------------
def _topic_name(topic_arn: str) -> str:
    parts = str(topic_arn).split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
        raise ActivityError(f"{topic_arn!r} is not an SNS topic ARN "
                            "(arn:aws:sns:REGION:ACCOUNT:NAME)")
    return parts[5]


def sns_topic_published(topic_arn: str, since: Optional[str] = None,
                        until: Optional[str] = None, window_seconds: float = 900.0,
                        min_messages: int = 1, period: int = 60, wait_seconds: float = 0.0,
                        poll_interval: float = 30.0, fault: Optional[Dict[str, Any]] = None,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Check that the SNS topic had at least `min_messages` published during the window.

    Reads the AWS/SNS NumberOfMessagesPublished metric (Sum per `period` seconds) with
    GetMetricStatistics; the window is widened to whole periods, and SNS metrics reach CloudWatch
    minutes late, so give `wait_seconds` when checking right after the fault. Window as for
    `cloudwatch_alarm_fired`. Read-only.

    Returns {"published", "messages", "topic_name", "since", "until", "datapoints": [{"t",
    "sum"}]}.
    """
    name = _topic_name(topic_arn)
    period = int(period)
    if period < 60 or period % 60:
        raise ActivityError(f"period {period} must be a multiple of 60 seconds")
    client = aws_client("cloudwatch", configuration, secrets)
    start = window_start(since, fault, None, window_seconds)
    end_of = _until(until)

    def check():
        end = end_of()
        answer = aws_call(client, "get_metric_statistics", f"SNS topic {name}",
                          Namespace="AWS/SNS", MetricName="NumberOfMessagesPublished",
                          Dimensions=[{"Name": "TopicName", "Value": name}],
                          StartTime=period_boundary(start, period, up=False),
                          EndTime=period_boundary(end, period, up=True) if end > start
                          else period_boundary(start, period, up=True),
                          Period=period, Statistics=["Sum"])
        points = sorted(({"t": iso(p["Timestamp"]), "sum": p.get("Sum", 0.0)}
                         for p in answer.get("Datapoints", [])), key=lambda p: p["t"])
        total = sum(p["sum"] for p in points)
        return {"published": total >= int(min_messages), "messages": total, "topic_name": name,
                "topic_arn": topic_arn, "since": iso(start), "until": iso(end),
                "datapoints": points}

    return _repeat(check, lambda r: r["published"], time.time() + float(wait_seconds),
                   poll_interval)
