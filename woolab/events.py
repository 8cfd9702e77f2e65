"""The lab's ground-truth event log: every failover step with its timestamp, in AWS wording.

The facade serves these as DescribeEvents; tests compare measured RTOs against them.
Events with source_type "lab" are internal markers (for example the exact moment an
endpoint became writable again) and are not AWS events.
"""
import json
import threading
import time
from pathlib import Path
from typing import Iterable, List, Optional


class EventLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._events: List[dict] = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    self._events.append(json.loads(line))

    def record(self, source_type: str, source_id: str, message: str,
               event_id: Optional[str] = None, categories: Iterable[str] = (),
               at: Optional[float] = None) -> dict:
        event = {"time": at if at is not None else time.time(), "source_type": source_type,
                 "source_id": source_id, "message": message, "event_id": event_id,
                 "categories": list(categories)}
        with self._lock:
            self._events.append(event)
            with self.path.open("a") as f:
                f.write(json.dumps(event) + "\n")
        return event

    def tail(self, count: int) -> List[dict]:
        """The last `count` events (what a failed convergence check shows)."""
        with self._lock:
            return list(self._events[-count:])

    def query(self, source_type: Optional[str] = None, source_id: Optional[str] = None,
              start: Optional[float] = None, end: Optional[float] = None) -> List[dict]:
        with self._lock:
            events = list(self._events)
        return [e for e in events
                if (source_type is None or e["source_type"] == source_type)
                and (source_id is None or e["source_id"] == source_id)
                and (start is None or e["time"] >= start)
                and (end is None or e["time"] <= end)]


def read_events(path: Path) -> List[dict]:
    """Events of a lab state dir, read from outside the controller (tests, reports)."""
    return EventLog(path).query()
