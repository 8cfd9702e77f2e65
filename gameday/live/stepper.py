"""The `gameday run` side of the pause between faults: say that the run waits, and turn Enter
(on a terminal) or SIGUSR1 (to the gameday process) into ``RUN_DIR/continue``, the one thing
the pause control in `chaos run` (chaosext.pause) waits for. `touch RUN_DIR/continue` works too.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Optional

from chaosext.pause import CONTINUE, CURRENT

__all__ = ["Stepper"]


class Stepper:
    """Announces pauses and lets the operator end them; installed for the run only."""

    def __init__(self, run_dir: Path, say: Callable[[str], None] = None,
                 stdin=None, every: float = 0.2):
        self.run_dir, self.every = run_dir, every
        self._say = say or (lambda text: print(f"gameday: {text}", flush=True))
        self._stdin = sys.stdin if stdin is None else stdin
        self._halt = threading.Event()
        self._seen: Optional[str] = None  # started_at of the pause last announced
        self._previous = None

    @property
    def waiting(self) -> bool:
        return _current(self.run_dir).get("state") == "waiting"

    def go_on(self, how: str) -> bool:
        """End the current pause (if one is on), saying how; False when none was on."""
        if not self.waiting:
            return False
        (self.run_dir / CONTINUE).write_text(how)
        return True

    def start(self) -> "Stepper":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGUSR1, self._on_sigusr1)
        threading.Thread(target=self._watch, daemon=True, name="pause-watch").start()
        if _is_tty(self._stdin):
            threading.Thread(target=self._read_enter, daemon=True, name="pause-enter").start()
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None

    def _on_sigusr1(self, signum, frame) -> None:
        self.go_on("SIGUSR1")

    def _read_enter(self) -> None:
        while not self._halt.is_set():
            line = self._stdin.readline()
            if not line:  # end of input: only SIGUSR1, the file or the timeout remain
                return
            self.go_on("enter")

    def _watch(self) -> None:
        while not self._halt.wait(self.every):
            current = _current(self.run_dir)
            stamp = current.get("started_at")
            if current.get("state") == "waiting" and stamp != self._seen:
                self._seen = stamp
                how = "press Enter, " if _is_tty(self._stdin) else ""
                self._say(f"paused before {current.get('before')}: {how}`kill -USR1 {os.getpid()}` "
                          f"or `touch {self.run_dir / CONTINUE}` to go on (going on by itself in "
                          f"{current.get('timeout_seconds', 0):g} s); load and measurements "
                          "keep running")
            elif current.get("state") == "ended" and stamp == self._seen and stamp:
                self._seen = None
                self._say(f"going on with {current.get('before')} ({current.get('how')})")


def _current(run_dir: Path) -> dict:
    try:
        data = json.loads((run_dir / CURRENT).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
