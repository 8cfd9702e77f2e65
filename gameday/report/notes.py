"""The facilitator's notes placed on the run: time since the start and relative to the faults.

A note alone ("pager fired") means little; "4.2 s after rds-force-failover was injected, before
it was writable again" is what the retrospective discusses. The notes come from
``RUN_DIR/notes.md`` (gameday/notes.py); each fault's window is injection to data plane writable
again (else control plane done, else the end of its activity).
"""
from typing import Any, Dict, List, Optional

from gameday.notes import read_notes
from gameday.report import journal as jr

__all__ = ["placed_notes", "note_events"]


def _window(fault: Dict[str, Any]):
    start = jr.epoch(fault.get("injected_at"))
    end = (jr.epoch(fault.get("data_plane_writable_at"))
           or jr.epoch(fault.get("control_plane_completed_at")) or jr.epoch(fault.get("end")))
    return start, end


def relation(at: Optional[float], faults: List[Dict[str, Any]]) -> str:
    """Where a moment falls among the faults: before them, during one, or after one."""
    if at is None:
        return "no time given"
    windows = sorted(((_window(f), f["fault"]) for f in faults if _window(f)[0] is not None),
                     key=lambda w: w[0][0])
    if not windows or at < windows[0][0][0]:
        return "before the first fault" if windows else "no fault was injected"
    (start, end), name = [w for w in windows if w[0][0] <= at][-1]
    if end is None or at <= end:
        return f"during {name} (+{at - start:.1f} s after injection)"
    return f"after {name} ({at - end:.1f} s after it recovered)"


def placed_notes(run_dir: str, start: Optional[str], faults: List[Dict[str, Any]]
                 ) -> List[Dict[str, Any]]:
    """``{"at", "since_start_seconds", "relative_to_faults", "text"}`` per note, in file order."""
    began = jr.epoch(start)
    out = []
    for note in read_notes(run_dir, day=start[:10] if start else None):
        at = jr.epoch(note["at"])
        out.append({"at": note["at"], "text": note["text"],
                    "since_start_seconds": round(at - began, 1) if at is not None and began
                    is not None else None,
                    "relative_to_faults": "before the run started" if at is not None and began
                    is not None and at < began else relation(at, faults)})
    return out


def note_events(notes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The timed notes as entries of the report's event timeline (source ``note``)."""
    return [{"at": n["at"], "source": "note", "kind": "note", "message": n["text"]}
            for n in notes if n["at"]]
