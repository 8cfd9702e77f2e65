"""Process supervision shared by the lab and the load control.

Both start long-running children in their own sessions and must be able to stop them later,
even from another process that only has a recorded pid. A pid alone is not an identity (the
kernel recycles pids), so a child is identified by its pid *and* its start time, which psutil
reads portably; stopping escalates from SIGTERM to SIGKILL and reaps our own zombies.

This module is neutral ground: the extension uses it for Locust, the lab for its servers, and it
imports neither of them.
"""
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, TypeVar, Union

import psutil

__all__ = ["ProcessId", "pid_alive", "pid_cmdline", "stop_pid", "child_pids", "spawn", "poll_until",
           "Poller", "Deadline"]

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessId:
    """A process as recorded on disk: pid plus kernel start time (so a recycled pid never matches)."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> Optional["ProcessId"]:
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        """True while the very process we recorded runs (not a zombie, not a recycled pid)."""
        current = ProcessId.of(self.pid)
        return current is not None and abs(current.started - self.started) < 0.05 and pid_alive(self.pid)


def pid_alive(pid: Optional[int]) -> bool:
    """Whether `pid` runs. A zombie counts as dead (it can do nothing any more), but only once it is
    the last of its threads: a main thread that has exited shows its process as a zombie while the
    other threads still run, or are still exiting, and hold every file and socket the process had
    open: a lab stopped on the word of the zombie alone could still hold its ports."""
    if not pid:
        return False
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return _threads_left(pid) > 1


def _threads_left(pid: int) -> int:
    """Threads of `pid` the kernel still has, the exited main thread included (Linux's /proc)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def pid_cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pid(pid: Optional[int], expect_in_cmdline: str = "", timeout: float = 3.0, hard: bool = False) -> None:
    """Stop one process: SIGTERM (or SIGKILL when `hard`), then SIGKILL after `timeout`.

    `expect_in_cmdline` guards against a recycled pid when all we have is a number on disk.
    """
    if not pid_alive(pid):
        return
    if expect_in_cmdline and expect_in_cmdline not in pid_cmdline(pid):
        return
    for sig, wait in ((signal.SIGKILL if hard else signal.SIGTERM, timeout), (signal.SIGKILL, 30.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if poll_until(lambda: (_reap(pid), not pid_alive(pid))[1], wait, interval=0.01):
            return


def child_pids(pid: int) -> set:
    """Direct children of a process (gunicorn's workers)."""
    try:
        return {child.pid for child in psutil.Process(pid).children()}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()


def spawn(argv: List[str], log_path: Path, env: Optional[dict] = None) -> subprocess.Popen:
    """Start a child in its own session (a terminal's Ctrl-C is ours to forward), output to a log."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    finally:
        log.close()


class Deadline:
    """A moment on the monotonic clock, `seconds` from now: the one notion of "how long may
    this still take" that several waits of one activity can share."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at


class Poller:
    """Calls a condition at a steady pace until it returns something truthy or a deadline
    passes: the one wait loop of the pack, the lab and the tests.

    Calls start at most every `interval` seconds (a slow condition is not followed by a full
    extra sleep), the condition is always called at least once, and once more at the deadline,
    so a wait never gives up without having looked.
    """

    def __init__(self, timeout: Union[float, Deadline], interval: float = 0.05) -> None:
        self.deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
        self.interval = max(0.0, float(interval))

    def until(self, condition: Callable[[], T]) -> Optional[T]:
        """The first truthy value of `condition()`, or None when the deadline passed first."""
        while True:
            began = time.monotonic()
            value = condition()
            if value:
                return value
            left = self.deadline.remaining()
            if left <= 0:
                return None
            time.sleep(min(left, max(0.0, self.interval - (time.monotonic() - began))))


def poll_until(condition: Callable[[], T], timeout: Union[float, Deadline],
               interval: float = 0.05) -> Optional[T]:
    """Call `condition()` every `interval` seconds until it returns something truthy or `timeout`
    (seconds, or a shared `Deadline`) passes; returns that value, or None on timeout."""
    return Poller(timeout, interval).until(condition)
