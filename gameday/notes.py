"""The facilitator's notes of a run: ``RUN_DIR/notes.md``, written while it runs, read by the report.

People in a game day see things the measurements do not (a dashboard alarm that never fired, a
support chat question, a slow page in a real browser). `gameday note RUN_DIR "text"` appends one
timestamped line; the file is plain Markdown, so a scribe may also edit it by hand::

    - 2026-12-01T01:02:03.250Z checkout spinner visible in the browser
    - 01:02:40Z on-call pager fired (time of day: the run's date is assumed)
    free text without a time is kept as a note without a place on the timeline
      an indented line continues the note above

Headings (``#``) and blank lines are ignored. The report lists the notes with their time since
the start of the run and where they fall relative to the faults (gameday/report/summary.py).
"""
import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext.errors import GamedayError
from groundfloor.timefmt import iso, parse_time

__all__ = ["NOTES_FILE", "add_note", "read_notes", "resolve_run_dir"]

NOTES_FILE = "notes.md"
# a run dir has at least one of these from the moment `gameday run` creates it
RUN_MARKERS = ("experiment.json", "target.json", "journal.json", "timeline.jsonl", "faults.jsonl")
STAMP = re.compile(r"^(?:[-*]\s+)?(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z?"
                   r"|\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z?)(?:\s+[-–:]?\s*|$)(?P<text>.*)$")


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_MARKERS)


def resolve_run_dir(name: str) -> Path:
    """A run directory from a path, a run id under the reports directory, or ``latest``."""
    from chaosext.rundir import reports_dir
    path = Path(name)
    if _is_run_dir(path):
        return path.resolve()
    reports = reports_dir()
    if name == "latest":
        runs = [p for p in reports.iterdir() if _is_run_dir(p)] if reports.is_dir() else []
        if not runs:
            raise GamedayError(f"no run directory under {reports} (give RUN_DIR)")
        return max(runs, key=lambda p: min((p / m).stat().st_mtime for m in RUN_MARKERS
                                            if (p / m).exists()))
    if path.parent == Path(".") and _is_run_dir(reports / name):
        return (reports / name).resolve()
    raise GamedayError(f"{name} is not a run directory (reports/<run-id> with experiment.json or "
                       "journal.json); give the run dir `gameday run` printed")


def _when(at: Optional[str], now: float) -> float:
    """`--at HH:MM[:SS]` on today's UTC date (the run's day), or now."""
    if not at:
        return now
    if not re.fullmatch(r"\d\d:\d\d(:\d\d(\.\d+)?)?Z?", at.strip()):
        raise GamedayError(f"--at {at!r} is not a UTC time of day (HH:MM or HH:MM:SS)")
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    try:
        return parse_time(f"{day}T{at.strip().rstrip('Z')}Z").timestamp()
    except ValueError:
        raise GamedayError(f"--at {at!r} is not a valid time of day") from None


def add_note(run_dir: str, text: str, at: Optional[str] = None, now: Optional[float] = None) -> str:
    """Append one timestamped line to the run's notes; returns what was written (one line)."""
    path = resolve_run_dir(run_dir)
    text = " ".join(text.split())
    if not text:
        raise GamedayError("the note is empty: give the observation as text")
    stamp = iso(_when(at, time.time() if now is None else now))
    line = f"- {stamp} {text}\n"  # milliseconds: a lab failover lasts about a second
    fd = os.open(path / NOTES_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))  # one write: notes from two terminals never interleave
    finally:
        os.close(fd)
    return f"{path / NOTES_FILE}: {line.strip()}"


def read_notes(run_dir: str, day: Optional[str] = None) -> List[Dict[str, Any]]:
    """The notes in file order: ``{"at": ISO stamp or None, "text"}``; a time of day is placed on
    ``day`` (``YYYY-MM-DD``, the run's start date)."""
    try:
        lines = (Path(run_dir) / NOTES_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    notes: List[Dict[str, Any]] = []
    for raw in lines:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = STAMP.match(raw.strip())
        if match:
            notes.append({"at": _stamp(match.group("stamp"), day),
                          "text": match.group("text").strip()})
        elif raw[:1].isspace() and notes:
            notes[-1]["text"] = (notes[-1]["text"] + " " + raw.strip()).strip()
        else:
            notes.append({"at": None, "text": raw.strip().lstrip("-* ").strip()})
    return notes


def _stamp(stamp: str, day: Optional[str]) -> Optional[str]:
    if "T" not in stamp:
        if not day:
            return None
        stamp = f"{day}T{stamp}"
    try:
        return iso(parse_time(stamp if stamp.endswith("Z") else stamp + "Z"))
    except ValueError:
        return None
