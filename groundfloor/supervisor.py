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
from typing import List, Optional

import psutil

__all__ = ["ProcessId", "pid_alive", "pid_cmdline", "stop_pid", "child_pids", "spawn", "poll_until"]


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
    """Whether `pid` runs; a zombie counts as dead (it can do nothing any more)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


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


def poll_until(condition, timeout: float, interval: float = 0.05):
    """Call `condition()` every `interval` seconds until it returns something truthy or `timeout`
    passes; returns that value, or None on timeout. The one wait loop of the pack and the lab."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
