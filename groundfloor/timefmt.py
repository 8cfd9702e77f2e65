"""ISO-8601 UTC timestamps with milliseconds, the one time format of journals and reports; the
ISO-8601 durations AWS FIS writes; and the period boundaries CloudWatch's statistics fall on."""
import math
import re
from datetime import datetime, timezone
from typing import Optional, Union

__all__ = ["iso", "parse_time", "duration_seconds", "period_boundary"]


def iso(value: Union[float, datetime, None]) -> Optional[str]:
    """Epoch seconds or a datetime as "2026-11-26T06:00:00.000Z" (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), tz=timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Union[str, float, datetime]) -> datetime:
    """An ISO-8601 string (Z or offset), epoch seconds or datetime, as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_ISO_DURATION = re.compile(r"^PT(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def duration_seconds(text: str) -> Optional[float]:
    """An ISO-8601 time duration as AWS FIS writes it (``PT1H30M``, ``PT1M``, ``PT90S``) in
    seconds; None when the text is not one."""
    match = _ISO_DURATION.match(str(text or ""))
    if not match:
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def period_boundary(moment: Union[float, datetime], period: int, up: bool) -> datetime:
    """The boundary of a `period`-second CloudWatch period at or before (`up`: at or after) a
    moment: GetMetricStatistics answers whole periods, so a window asked on its boundaries
    gets every datapoint that falls inside it."""
    seconds = parse_time(moment).timestamp() / period
    return parse_time((math.ceil(seconds) if up else math.floor(seconds)) * period)
