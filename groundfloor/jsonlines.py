"""Reading the JSON-lines files of a run directory while they are being appended to.

Controls and recorders append one JSON object per line (the fault ledger, progress, pauses);
readers in other processes (the pulse, the live view, the report) may meet a last line that is
still being written, or a file that does not exist yet. Both are normal, not errors.
"""
import json
from typing import Any, Dict, List

__all__ = ["records"]


def records(path: str) -> List[Dict[str, Any]]:
    """The JSON objects of `path`, in order; a torn or foreign line is skipped, a missing or
    unreadable file yields []."""
    found: List[Dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found
