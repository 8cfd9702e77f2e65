"""What RDS and ElastiCache handlers share: ARNs, tag lists, paging, the DescribeEvents window.

Why: both services name resources by ARN, page with Marker/MaxRecords and filter events the
same way; one implementation keeps the two handler modules to their service's rules.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from woolab.facade.protocol import AwsError


def arn(snapshot: Mapping[str, Any], service: str, kind: str, resource_id: str) -> str:
    """``arn:aws:rds:us-east-1:123456789012:db:shop-db`` in the lab's fixed dummy account."""
    return f"arn:aws:{service}:{snapshot['region']}:{snapshot['account_id']}:{kind}:{resource_id}"


def split_arn(snapshot: Mapping[str, Any], service: str, value: str) -> Tuple[str, str]:
    """ARN -> (resource kind, id); ``None`` kind when it is another region/account's resource.

    Raises ``ValueError`` for a string that is not an ARN of ``service``.
    """
    parts = value.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != service:
        raise ValueError(value)
    _, _, _, region, account, kind, resource_id = parts
    if region != snapshot["region"] or account != snapshot["account_id"]:
        return "", resource_id
    return kind, resource_id


def tag_list(tags: Mapping[str, str]) -> List[Dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tags_from_list(items: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
    return {item["Key"]: item.get("Value", "") for item in items or ()}


def page(items: List[Any], params: Mapping[str, Any], default: int = 100, minimum: int = 20,
         maximum: int = 100) -> Tuple[List[Any], Optional[str]]:
    """Marker/MaxRecords paging as the Describe* calls do it: (this page, next marker or None)."""
    size = params.get("MaxRecords", default)
    if not minimum <= size <= maximum:
        raise AwsError("InvalidParameterValue",
                       f"Invalid value for MaxRecords: {size}, must be between {minimum} and {maximum}.")
    try:
        start = int(params.get("Marker") or 0)
    except ValueError:
        raise AwsError("InvalidParameterValue", "Invalid Marker value.") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def event_window(params: Mapping[str, Any], now: Optional[float] = None) -> Tuple[float, float]:
    """(start, end) in epoch seconds from StartTime/EndTime/Duration (minutes, default 60)."""
    now = time.time() if now is None else now
    end = params["EndTime"].timestamp() if "EndTime" in params else now
    if "StartTime" in params:
        start = params["StartTime"].timestamp()
        if "Duration" in params and "EndTime" not in params:
            end = start + 60 * params["Duration"]
    else:
        start = end - 60 * params.get("Duration", 60)
    if start > end:
        raise AwsError("InvalidParameterCombination", "StartTime must be before EndTime.")
    return start, end


def query_events(lab, params: Mapping[str, Any], source_types: Iterable[str]) -> List[dict]:
    """The lab's ground-truth events of the given AWS source types that match the filters."""
    allowed = set(source_types)
    wanted = params.get("SourceType")
    if wanted is not None and wanted not in allowed:
        return []
    start, end = event_window(params)
    events = lab.events.query(source_type=wanted, source_id=params.get("SourceIdentifier"),
                              start=start, end=end)
    return sorted((e for e in events if e["source_type"] in allowed), key=lambda e: e["time"])
