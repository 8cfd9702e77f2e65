"""SIGINT, SIGTERM and SIGHUP from outside mean what Ctrl-C means, for every `gameday` command.

Game days are stopped from outside: a cancelled CI job or `timeout` sends SIGTERM, a stopped
systemd unit or a closed terminal SIGHUP, an operator Ctrl-C (SIGINT to the whole foreground
process group) or `kill` (to gameday alone). All of them get one meaning, by phase:

* **while `chaos run` is our child** (`run_child`): each signal is passed on to it as SIGINT,
  which Chaos Toolkit turns into a KeyboardInterrupt. The first stops the method at once; Chaos
  Toolkit then plays the rollbacks, the load control stops Locust, and the journal is written.
  The second aborts the rollbacks. If chaos has not exited `ABORT_GRACE` seconds after that (or
  a third signal comes), its whole process group is killed. chaos runs in a session of its own,
  so a signal sent to our process group reaches it only through us, once: sending the signal to
  gameday alone or to its group behaves the same. chaos also gets SIGINT if gameday dies
  without a chance to pass anything on (SIGKILL): Linux's parent-death signal.
* **while cleaning up** (`deferring`: stopping a lab this run started, writing the report): the
  first signal is noted and the cleanup goes on; a second one aborts it.
* **otherwise** (starting the lab, other commands): the signal raises `Interrupted`, a
  KeyboardInterrupt, so `finally` blocks run and the command stops where it was.

A stopped command exits with 128 + the first signal's number (130 SIGINT, 143 SIGTERM, 129
SIGHUP), as a shell reports a process killed by that signal; docs/exit-codes.md lists all codes.
"""
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from groundfloor.timefmt import iso
from groundfloor import run_files

__all__ = ["SIGNALS", "EXIT_PASSED", "EXIT_FAILED", "EXIT_INTERRUPTED", "Interrupted", "Interrupts",
           "child_setup", "signal_exit_code", "verdict_exit_code"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_PASSED = 0
EXIT_FAILED = 1  # the verdict is failed or deviated (or an expected error, printed on one line)
EXIT_INTERRUPTED = 3  # the run stopped itself: a safeguard tripped, a guardrail or the load refused
ABORT_GRACE = 30.0  # seconds chaos gets after the second signal before its group is killed
# GNU timeout sends its signal to the command and then to the command's whole process group, so
# gameday gets it twice at once; a repeat of the same signal this soon is the same request
DUPLICATE_WINDOW = 1.0
PR_SET_PDEATHSIG = 1
try:  # looked up before any fork: the child must not load libraries between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def signal_exit_code(signum: int) -> int:
    """What a shell reports for a process stopped by `signum`."""
    return 128 + int(signum)


def verdict_exit_code(verdict: str) -> int:
    """0 passed, 3 interrupted (without a signal: a safeguard, guardrail or the load), else 1."""
    return {"passed": EXIT_PASSED, "interrupted": EXIT_INTERRUPTED}.get(verdict, EXIT_FAILED)


def _name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(KeyboardInterrupt):
    """A signal from outside stopped a command outside the experiment."""

    def __init__(self, signum: int):
        super().__init__(_name(signum))
        self.signum = signum


def child_setup(parent: int) -> Callable[[], None]:
    """`preexec_fn` for chaos (started with `start_new_session`): Ctrl-C semantics restored (a
    shell starting us in the background ignores SIGINT, and children inherit that), and SIGINT
    when `parent` dies (Linux's parent-death signal; elsewhere the load's own parent watch
    remains)."""
    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked around the fork by run_child
        if _prctl is None:
            return
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)
        if os.getppid() != parent:  # died before the line above took effect
            os.kill(os.getpid(), signal.SIGINT)
    return setup


class Interrupts:
    """The signal handlers of one `gameday` process and what they have received."""

    def __init__(self, say: Callable[[str], None] = None):
        self.received: List[Dict[str, object]] = []  # {"signal", "at", "phase"}
        self._say = say or (lambda text: print(f"\ngameday: {text}", file=sys.stderr, flush=True))
        self._child: Optional[subprocess.Popen] = None
        self._forwarded = 0
        self._deferred = None  # signals noted in the current cleanup phase, or None
        self._abort_deadline: Optional[float] = None
        self._previous: Dict[int, object] = {}
        self._last = (None, -DUPLICATE_WINDOW)  # (signum, monotonic time) of the last signal

    # ------------------------------------------------------------ installation
    def install(self) -> "Interrupts":
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def first(self) -> Optional[int]:
        return int(signal.Signals[self.received[0]["signal"]]) if self.received else None

    def exit_code(self, otherwise: int) -> int:
        """128 + the first signal if one came, else `otherwise`."""
        return signal_exit_code(self.first) if self.received else otherwise

    # ------------------------------------------------------------ phases
    def run_child(self, argv: List[str], started: Callable[[], None] = None, **popen) -> int:
        """Start `argv` in a session of its own, wait for it and pass signals on meanwhile;
        `started()` runs once it is running (start threads there, never before the fork).

        Signals are blocked around the fork, so one that arrives before we know the child's pid
        is passed on too, not lost. A signal that came before, and whose `Interrupted` Python
        dropped (it landed in a finalizer: see chaosext.stopsignals), stops us here: chaos never
        starts after a stop."""
        dropped = next((r for r in self.received if r["phase"] == "setup"), None)
        if dropped is not None:
            raise Interrupted(signal.Signals[dropped["signal"]])
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            child = subprocess.Popen(argv, start_new_session=True,
                                     preexec_fn=child_setup(os.getpid()), **popen)
            self._child, self._forwarded, self._abort_deadline = child, 0, None
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        try:
            if started:
                started()
            return self.wait(child)
        finally:
            self._child = None

    @property
    def forwarded(self) -> int:
        return self._forwarded

    @contextlib.contextmanager
    def deferring(self):
        """Let a cleanup finish through one signal; a second one raises `Interrupted`."""
        outer, self._deferred = self._deferred, []
        try:
            yield self
        finally:
            self._deferred = outer

    @contextlib.contextmanager
    def installed(self):
        """Handlers installed for the block (only the main thread can install them)."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            yield self
            return
        self.install()
        try:
            yield self
        finally:
            self.restore()

    def wait(self, child: subprocess.Popen) -> int:
        """Wait for `child`; after the abort deadline, kill its process group."""
        while True:
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if self._abort_deadline is not None and time.monotonic() > self._abort_deadline:
                    self._say(f"chaos did not stop within {ABORT_GRACE:g} s: killing it")
                    _kill_group(child.pid)
                    self._abort_deadline = None

    def record(self, run_dir: Path) -> None:
        """interruption.json: the signals the experiment got, for the report's verdict line."""
        during = [r for r in self.received if r["phase"] == "experiment"]
        if during:
            (run_dir / run_files.INTERRUPTION).write_text(json.dumps(
                {"signals": during, "rollbacks_aborted": self._forwarded >= 2}, indent=2))

    # ------------------------------------------------------------ the handler
    def _handle(self, signum: int, frame) -> None:
        now = time.monotonic()
        duplicate = self._last[0] == signum and now - self._last[1] < DUPLICATE_WINDOW
        self._last = (signum, now)
        if duplicate:
            return
        phase = "experiment" if self._child is not None else (
            "cleanup" if self._deferred is not None else "setup")
        self.received.append({"signal": _name(signum), "at": iso(time.time()), "phase": phase})
        if self._child is not None:
            self._forward(signum)
        elif self._deferred is not None and not self._deferred:
            self._deferred.append(signum)
            self._say(f"{_name(signum)}: finishing the clean-up and the report first "
                      "(signal again to abort it)")
        else:
            raise Interrupted(signum)

    def _forward(self, signum: int) -> None:
        self._forwarded += 1
        name, pid = _name(signum), self._child.pid
        if self._forwarded == 1:
            self._say(f"{name}: interrupted: stopping the method and the load, running rollbacks, "
                      "saving the journal (signal again to abort the rollbacks)")
            _kill(pid, signal.SIGINT)
        elif self._forwarded == 2:
            self._say(f"{name} again: aborting the rollbacks; the report keeps what is known")
            _kill(pid, signal.SIGINT)
            self._abort_deadline = time.monotonic() + ABORT_GRACE
        else:
            self._say(f"{name}: killing chaos")
            _kill_group(pid)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # child_setup made its pid the group id
    except (ProcessLookupError, PermissionError):
        pass
