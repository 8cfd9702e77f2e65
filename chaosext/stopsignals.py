"""A stop signal stops the experiment's method even when Python drops the exception it raised.

Chaos Toolkit learns it must stop from an exception a signal handler raises in the main thread:
KeyboardInterrupt for Ctrl-C (and for the SIGINT `gameday run` passes on), chaoslib's
InterruptExecution for SIGTERM, SystemExit(20/30) for the SIGUSR1/SIGUSR2 of chaoslib's
``exit_gracefully``/``exit_ungracefully`` (which the safeguards use). CPython runs that handler
at the main thread's next instruction, whatever code it is, and some code cannot pass an
exception on: a finalizer the garbage collector runs (urllib3 puts a ``weakref.finalize`` on
every connection pool, and Python drops its exception as "Exception ignored in …"), or the
warning an unclosed socket emits as it is freed (the exception vanishes without a word). Then
the run goes on as if no signal had come: measured on the lab, a SIGINT sent 0–40 ms into a
cache primary deletion (1 ms steps, in a Chaos Toolkit run) was dropped at 10 of 41 offsets,
and the deletion went ahead after the operator's Ctrl-C (0 of 41 with the checks below).

So every stop signal is also *noted* (:func:`install` wraps the handlers: note, then the
handler as before), and :func:`check` raises again, in ordinary code, a stop that was noted
during a run's method but never reached Chaos Toolkit. The pack calls it where going on would do
harm: before a fault is injected, in every wait for a fault to recover, and before each
activity. Only the method is guarded: during the rollbacks a dropped signal leaves them
running, which is the safe side (`gameday run` kills chaos if a second signal goes unheeded).

Chaos Toolkit turns an exception raised inside a Python activity into a failed activity, and
goes on with the next; so chaoslib's own SIGTERM, landing inside an activity, only failed that
activity. A noted SIGTERM is raised again before the next activity, where it ends the method as
its handler says it should ("interrupting experiment now").

A stop belongs to the run it arrived in (chaoslib's ``Runner._run`` frame on the main
thread's stack when it came, and that run's start time), so a later run in the same process
never sees it.
"""
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["STOP_SIGNALS", "install", "check", "unwrapped"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
RUN_FRAME = ("chaoslib.run", "_run")  # the frame of one Chaos Toolkit run
ROLLBACK_FRAME = ("chaoslib.run", "run_rollback")

# stops noted during a method: {"signum", "run" (see _method_of), "handler"}
_noted: List[Dict[str, Any]] = []


def _frames(frame: Optional[FrameType]):
    while frame is not None:
        yield frame
        frame = frame.f_back


def _is(frame: FrameType, where) -> bool:
    return frame.f_code.co_name == where[1] and frame.f_globals.get("__name__") == where[0]


def _method_of(frame: Optional[FrameType]) -> Optional[Tuple[int, Any]]:
    """The run whose method (or steady-state check before it) `frame` is in: its Runner._run
    frame and the time that run started (a frame's id alone is reused by the next run); None
    outside a run and during its rollbacks."""
    if any(_is(f, ROLLBACK_FRAME) for f in _frames(frame)):
        return None
    run = next((f for f in _frames(frame) if _is(f, RUN_FRAME)), None)
    return None if run is None else (id(run), run.f_locals.get("started_at"))


class _Noting:
    """A signal handler that notes the stop, then runs the handler it wraps."""

    def __init__(self, handler: Callable[[int, Optional[FrameType]], Any]) -> None:
        self.handler = handler

    def __call__(self, signum: int, frame: Optional[FrameType]) -> Any:
        run = _method_of(frame)
        if run is not None:
            _noted.append({"signum": signum, "run": run, "handler": self.handler})
        return self.handler(signum, frame)


def unwrapped(handler: Any) -> Any:
    """The handler itself, whether or not :func:`install` wrapped it (for code that checks
    whether its own handler is in force)."""
    return handler.handler if isinstance(handler, _Noting) else handler


def install() -> None:
    """Wrap the Python handler of each stop signal (once; chaoslib installs its SIGTERM and
    SIGUSR handlers when a run starts, so this runs again at every check). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler) and not isinstance(handler, _Noting):
            signal.signal(signum, _Noting(handler))


def check() -> None:
    """Raise again a stop noted during this run's method that never reached Chaos Toolkit;
    otherwise do nothing. Only in the main thread, and only in the method (not in rollbacks)."""
    if threading.current_thread() is not threading.main_thread():
        return
    install()
    if not _noted:
        return
    here = sys._getframe(1)
    run = _method_of(here)
    if run is None:
        return
    stop = next((stop for stop in _noted if stop["run"] == run), None)
    if stop is not None:  # kept: should it be dropped again, the next check raises it again
        stop["handler"](stop["signum"], here)  # raises what the handler raises
