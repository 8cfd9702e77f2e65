"""ISO-8601 UTC timestamps with milliseconds, the one time format of journals and reports."""
from datetime import datetime, timezone
from typing import Optional, Union

__all__ = ["iso", "parse_time"]


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
