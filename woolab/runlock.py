"""One mutating run per lab: a lock in the state directory that names its holder.

Two game days on one lab measure each other's faults (the second one's steady state fails for a
reason nobody can see). So every run that changes the lab (`gameday run`, `gameday matrix` across
its runs, `gameday lab failover`, `lab crash|freeze|thaw|interrupt-az`, `lab shop-settings`,
`lab down`, `gameday cleanup` of a lab run) takes `run.lock`; reading the lab (`lab status`, `lab env`,
reports) never does.

The lock is an advisory `flock` on the file, which the kernel releases when its holder dies in
any way, SIGKILL included, so a dead holder can never block the lab. The file's content (who
holds it) outlives a holder that could not clean up; the next run then takes over with a note
naming the run that ended without releasing it.
"""
import contextlib
import fcntl
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from .errors import LabBusy

__all__ = ["LOCK_FILE", "LabLock", "lab_lock", "lock_holder", "describe"]

LOCK_FILE = "run.lock"
_held: dict = {}  # lock path -> LabLock this process holds (a matrix holds it across its runs)


def _read(fd: int) -> Optional[dict]:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder: Optional[dict]) -> str:
    """`gameday run gameday` (run …, pid 1234, since 22:40:01 UTC), for one-line messages."""
    if not holder:
        return "another run (it has not written its name yet)"
    since = time.strftime("%H:%M:%S UTC", time.gmtime(holder.get("since") or 0))
    run = f"run {holder['run_id']}, " if holder.get("run_id") else ""
    return f"`{holder.get('command') or '?'}` ({run}pid {holder.get('pid')}, since {since})"


class LabLock:
    """The lock of the lab at `state_dir`, for `command` (and the run id it writes to)."""

    def __init__(self, state_dir: Path, command: Optional[str] = None, run_id: Optional[str] = None):
        self.path = Path(state_dir) / LOCK_FILE
        self.command = command or "gameday " + shlex.join(sys.argv[1:])
        self.run_id = run_id
        self.fd: Optional[int] = None

    def acquire(self) -> Optional[str]:
        """Take the lock or raise LabBusy naming its holder; returns a note after a takeover."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LabBusy(f"the lab at {self.path.parent} is in use by {describe(holder)}; wait "
                          f"for it, or stop it with `kill -INT {holder.get('pid') if holder else '<pid>'}`"
                          ) from None
        previous = _read(fd)
        me = {"pid": os.getpid(), "command": self.command, "run_id": self.run_id, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self.fd = fd
        if previous and previous.get("pid") != me["pid"]:
            return f"took over the lab lock of {describe(previous)}, which ended without releasing it"
        return None

    def release(self) -> None:
        """Empty the file (a clean exit leaves nothing to take over) and unlock."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None


@contextlib.contextmanager
def lab_lock(state_dir: Path, command: Optional[str] = None, run_id: Optional[str] = None,
             note=None) -> Iterator[LabLock]:
    """Hold the lab's lock for the block; `note(text)` hears about a stale lock taken over.
    Re-entrant within one process: a block inside another keeps the outer holder."""
    lock = LabLock(state_dir, command, run_id)
    key = str(lock.path.resolve())
    if key in _held:
        yield _held[key]
        return
    taken_over = lock.acquire()
    _held[key] = lock
    if taken_over:
        (note or (lambda text: print(f"gameday: note: {text}", file=sys.stderr, flush=True)))(taken_over)
    try:
        yield lock
    finally:
        del _held[key]
        lock.release()


def lock_holder(state_dir: Path) -> Optional[dict]:
    """Who holds the lab's lock now ({} if unknown), or None when nobody does. Never blocks."""
    path = Path(state_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(fd) or {}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
