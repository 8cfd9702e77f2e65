"""The labs and programs a bench run starts, and the promise that it stops them: on a normal end,
on a failed or timed-out section, and when the bench is stopped with SIGTERM or Ctrl-C (SIGKILL
cannot be caught).

SIGTERM is turned into SystemExit so `finally` blocks run as they do for Ctrl-C; while a lab is
being stopped, further SIGINT/SIGTERM are held off so the teardown itself is not cut short.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from woolab import manage

__all__ = ["install_signal_handlers", "lab_running", "control", "run_command", "BASE_PORT"]

BASE_PORT = int(os.environ.get("GAMEDAY_LAB_BASE_PORT") or 27300)  # the bench's labs' first port


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM ends the bench like Ctrl-C does (cleanups run), and Ctrl-C works even when the
    bench was started with SIGINT ignored (as `nohup` or a shell's background job does)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM received in the block (the teardown of a lab) take effect after it."""
    held = []
    previous = {s: signal.signal(s, lambda signum, _f: held.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        raise SystemExit(128 + held[0])


def _stop(state_dir: Path) -> float:
    """Stop the lab of `state_dir` with signals held off; seconds it took."""
    began = time.monotonic()
    with _signals_held():
        manage.down(state_dir)
    return time.monotonic() - began


@contextlib.contextmanager
def lab_running(config, figures, section: str = "lab", label: str = "lab") -> Iterator[Optional[object]]:
    """Start the lab of `config` and yield it (None when it failed to start: the error is a
    figure of `section`); always stop it, and record how long up and down took."""
    print(f"{label} (state dir {config.state_dir}, base port {config.base_port}, "
          f"timing {config.timing})", flush=True)
    try:
        began = time.monotonic()
        try:
            manage.up(config)
        except Exception as error:
            figures.error(section, f"{label} failed to start: {type(error).__name__}: {error}")
            yield None
            return
        figures.add(section, f"{label} up seconds", time.monotonic() - began, "target <= 8 s")
        yield config
    finally:
        print(f"{label} teardown", flush=True)
        seconds = _stop(config.state_dir)
        figures.add(section, f"{label} down seconds", seconds, "target <= 5 s")
        sys.stdout.flush()


def control(config, path: str, timeout: float = 120.0) -> dict:
    """POST one `/_lab/*` control request (a failover, wait-idle, a crash)."""
    return manage.call(config, path, method="POST", timeout=timeout)


def run_command(cmd, timeout: float, **popen) -> int:
    """Run a program (a `gameday run`) to its end and return its exit code. If it outlives
    `timeout` or the bench is stopped meanwhile, it gets Ctrl-C (SIGINT: `gameday run` then stops
    its load and restores what it changed), and SIGKILL only if it is still there 60 s later."""
    proc = subprocess.Popen(cmd, **popen)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
