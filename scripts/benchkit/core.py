"""What every benchmark section shares: its declaration, the figures it prints, and the time bounds
that keep any round from hanging the bench.

A section is a module `scripts/bench_<name>.py` that defines `SECTION = Section(...)`; the runner
(`scripts/bench.py`) runs it under its overall bound, and round-based sections run each round
under `Context.rounds`, so a failed or stuck round ends within its own bound and the next starts.
Bounds are enforced with SIGALRM in the main thread: the bench must run there (it does).
"""
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

__all__ = ["Section", "Context", "Figures", "BoundExceeded", "bounded", "load_average"]


class BoundExceeded(BaseException):
    """A bounded piece of work ran past its time. A BaseException, so that library code that
    catches Exception cannot swallow it; `bound` says which bound ran out."""

    def __init__(self, bound: "_Bound"):
        super().__init__(f"{bound.label} did not finish within {bound.seconds:.0f} s")
        self.bound = bound


@dataclass
class _Bound:
    label: str
    seconds: float
    deadline: float = 0.0


_ACTIVE: List[_Bound] = []


def _on_alarm(_signum, _frame) -> None:
    """Raise for the outermost bound that has run out (an outer bound ends its inner rounds too)."""
    now = time.monotonic()
    for bound in _ACTIVE:
        if bound.deadline <= now + 0.001:
            raise BoundExceeded(bound)
    _arm()  # woken early (clock granularity): wait for the rest


def _arm() -> None:
    if not _ACTIVE:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    remaining = min(b.deadline for b in _ACTIVE) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))


class bounded:
    """`with bounded("label", seconds):` raises BoundExceeded in the block once `seconds` pass.
    Bounds nest: the innermost deadline is armed, and an outer bound's expiry is reported as the
    outer one even when it fires inside an inner block."""

    def __init__(self, label: str, seconds: float):
        self.bound = _Bound(label, float(seconds))

    def __enter__(self) -> _Bound:
        if not _ACTIVE:
            signal.signal(signal.SIGALRM, _on_alarm)
        self.bound.deadline = time.monotonic() + self.bound.seconds
        _ACTIVE.append(self.bound)
        _arm()
        return self.bound

    def __exit__(self, *exc) -> bool:
        _ACTIVE.remove(self.bound)
        _arm()
        return False


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the context of every timing figure on a shared machine."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class Figures:
    """Every figure of a bench run, by section, printed as it is measured."""

    def __init__(self):
        self.by_section: Dict[str, Dict[str, Any]] = {}

    def add(self, section: str, name: str, value: Any, target: str = "") -> None:
        self.by_section.setdefault(section, {})[name] = value
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {name:<52} {shown:>12}   {target}", flush=True)

    def note(self, section: str, name: str, value: Any) -> None:
        """Record without printing (details that would crowd the table)."""
        self.by_section.setdefault(section, {})[name] = value

    def error(self, section: str, message: str) -> None:
        print(f"  {section} failed: {message[:200]}", flush=True)
        self.by_section.setdefault(section, {})["error"] = message


@dataclass
class Context:
    """What a section gets: the lab (None for sections without one), the options, a scratch
    directory, and `figure` for its own figures."""
    section: str
    config: Any
    args: Any
    work: Path
    figures: Figures

    @property
    def smoke(self) -> bool:
        return bool(getattr(self.args, "smoke", False))

    def figure(self, name: str, value: Any, target: str = "") -> None:
        self.figures.add(self.section, name, value, target)

    def note(self, name: str, value: Any) -> None:
        self.figures.note(self.section, name, value)

    def rounds(self, count: int, bound_seconds: float, round_fn: Callable[[int], Any],
               after_round: Optional[Callable[[], Any]] = None) -> "RoundOutcome":
        """Run `round_fn(i)` `count` times, each under its own bound. A round that fails or runs
        out of time is recorded and the next one starts; `after_round` (bounded too) puts the lab
        back in order between rounds. An outer bound running out ends all of them."""
        outcome = RoundOutcome(count)
        for i in range(count):
            for label, fn in ((f"{self.section} round {i + 1}", lambda: outcome.results.append(round_fn(i))),
                              (f"{self.section} settle after round {i + 1}", after_round)):
                if fn is None:
                    continue
                try:
                    with bounded(label, bound_seconds) as bound:
                        fn()
                except BoundExceeded as error:
                    if error.bound is not bound:
                        raise
                    outcome.failures.append(str(error))
                except Exception as error:  # one bad round must not hide the others
                    outcome.failures.append(f"{label}: {type(error).__name__}: {error}")
        return outcome


@dataclass
class RoundOutcome:
    """The results of the rounds that ended well, and one line per failure."""
    count: int
    results: List[Any] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)

    def report(self, ctx: Context, label: str) -> None:
        ctx.figure(f"{label} rounds measured", f"{len(self.results)}/{self.count}")
        if self.failures:
            print(f"    first failure: {self.failures[0].splitlines()[0][:200]}", flush=True)
            ctx.note(f"{label} failures", self.failures)


@dataclass(frozen=True)
class Section:
    """One benchmark section. `run(ctx)` measures and prints its figures; `bound(args)` is the
    most its whole run may take; `needs_lab` sections share the bench's lab."""
    name: str
    run: Callable[[Context], None]
    bound: Callable[[Any], float]
    needs_lab: bool = False
    about: str = ""
