"""What every mechanic needs, handed down by the lab: the state store, the event log, the admin
clients, the endpoints, the running processes and the lab's settings.

Mechanics (`woolab.db`, `woolab.cache`) receive one `LabParts` and never call back into the `Lab`
object, so the floors stay one-way: lab -> mechanics -> parts.
"""
import logging
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from groundfloor.aws_events import wording
from groundfloor.supervisor import pid_alive, stop_pid

from .admin import Admin
from .config import LabConfig
from .endpoints import DnsEndpoints
from .events import EventLog
from .state import LabState
from .timing import TimingProfile

log = logging.getLogger("woolab")


class LabProcesses:
    """The lab's children by name; every change is mirrored into the state (for crash cleanup)."""

    def __init__(self, state: LabState):
        self._procs: Dict[str, subprocess.Popen] = {}
        self._state = state
        self._lock = threading.Lock()

    def add(self, name: str, proc: subprocess.Popen) -> subprocess.Popen:
        """Track `proc` as `name`. One process per name: one still running under that name is
        stopped first, since once replaced it would be tracked by nobody and outlive the lab
        (holding the node's port and socket, answering for a data directory that is gone)."""
        old = self._procs.get(name)
        if old is not None and old.pid != proc.pid and pid_alive(old.pid):
            log.warning("%s started again while its process %s still ran: stopping that one", name, old.pid)
            stop_pid(old.pid, timeout=5.0, hard=True)
            old.poll()
        with self._lock:
            self._procs[name] = proc
        with self._state.lock:
            self._state.processes[name] = proc.pid
        return proc

    def get(self, name: str) -> Optional[subprocess.Popen]:
        return self._procs.get(name)

    def pid(self, name: str) -> Optional[int]:
        proc = self._procs.get(name)
        return proc.pid if proc else None

    def alive(self, name: str) -> bool:
        return pid_alive(self.pid(name))

    def stop(self, name: str, hard: bool = False, timeout: float = 5.0) -> None:
        proc = self._procs.get(name)
        if proc is not None:
            stop_pid(proc.pid, timeout=timeout, hard=hard)
            proc.poll()

    def forget(self, name: str) -> None:
        with self._lock:
            self._procs.pop(name, None)

    def names(self) -> list:
        with self._lock:
            return list(self._procs)

    def pids(self) -> Dict[str, int]:
        with self._lock:
            return {name: proc.pid for name, proc in self._procs.items()}


@dataclass
class LabParts:
    config: LabConfig
    state: LabState
    events: EventLog
    admin: Admin
    endpoints: DnsEndpoints
    procs: LabProcesses
    secrets: dict
    timing: TimingProfile
    stopping: threading.Event = field(default_factory=threading.Event)
    # whether a network impairment is in force (woolab/network): a link it cuts is not a failure
    network_impaired: Callable[[], bool] = lambda: False
    # whether the commit guard holds (woolab/db/commitguard.py): a writer promoted meanwhile must
    # wait for its readers without a timeout too
    commits_strict: bool = False

    def aws_event(self, source_type: str, source_id: str, service: str, kind: str,
                  event_id: Optional[str] = None, categories=(), **fields) -> dict:
        """Publish an AWS event in the wording of the pack's one event table."""
        found_id, message = wording(service, kind, event_id, **fields)
        return self.events.record(source_type, source_id, message, found_id, categories)

    def marker(self, source_id: str, message: str, **kwargs) -> dict:
        """A lab-internal ground-truth marker (not an AWS event)."""
        return self.events.record("lab", source_id, message, **kwargs)
