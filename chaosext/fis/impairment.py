"""An FIS network experiment as an impairment fault: the impairment window is the experiment's run.

Why: a network impairment has no failover and no completion event (chaosext.fault_model, kind
"impairment"). Its window is when FIS injected it: it starts with the experiment and ends when
the experiment ends (completed, or stopped by a rollback). The result and the ledger carry
`impairment` (the shared shape: AZ, direction, effects, which flows, duration, start and end),
and `recovery.run_fault` measures each service's time to recover from that end.

The network activities' bad input (a duration outside PT1M-PT12H, a scope that does not cut an
AZ, a delay, loss or length that is not a number above 0) is refused here in one line, before
any AWS call; `describe` gives the preflight the same checks and the blast radius in words.
"""
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from chaosext.errors import ActivityError
from chaosext.fis.experiment import FisRun
from chaosext.recovery import Fault
from groundfloor.timefmt import duration_seconds, iso

__all__ = ["Plan", "ImpairmentRun", "checked_cut", "positive_numbers", "describe"]


@dataclass
class Plan:
    """What an FIS network template impairs, for the result, the ledger and the preflight."""

    availability_zone: str
    flows: str  # one line: which flows suffer
    duration_seconds: float
    direction: str = "both"  # "to" the AZ's nodes, "from" them, or "both" (docs/lab-network.md)
    delay_ms: float = 0
    jitter_ms: float = 0
    loss_percent: float = 0
    blackhole: bool = False
    partition: Optional[str] = None  # "*": cut from every other AZ

    def record(self) -> Dict[str, Any]:
        return {"availability_zone": self.availability_zone, "direction": self.direction,
                "delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "loss_percent": self.loss_percent,
                "bandwidth_kbps": None, "blackhole": self.blackhole, "partition": self.partition,
                "flows": self.flows, "duration_seconds": self.duration_seconds,
                "started_at": None, "ended_at": None}


class ImpairmentRun(FisRun):
    """A `FisRun` whose fault carries `impairment` and records when the impairment started and ended."""

    def __init__(self, plan: Plan, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.impairment = plan.record()

    def inject(self) -> None:
        started = time.time()
        super().inject()
        self.impairment["started_at"] = iso(started)

    def poll(self):
        done, state = super().poll()
        if done and self.impairment["ended_at"] is None:
            self.impairment["ended_at"] = self.last.get("ended_at") or iso(time.time())
        return done, state

    def fault(self, method: str) -> Fault:
        fault = super().fault(method)
        fault.extra = {"impairment": self.impairment}  # the same dict: poll fills in the end
        return fault


# --------------------------------------------------------------------------- bad input
def checked_cut(duration: str, scope: str = "all") -> float:
    """The seconds of an aws:network:disrupt-connectivity cut of an AZ, or a one-line refusal:
    FIS network actions last PT1M to PT12H, and only the scopes `all` and `availability-zone`
    cut an AZ (the others name AWS endpoints)."""
    seconds = duration_seconds(duration) if isinstance(duration, str) else None
    if seconds is None or not 60 <= seconds <= 43_200:
        raise ActivityError(f"duration {duration!r} must be an ISO-8601 duration between PT1M and PT12H "
                            "(FIS network actions last one minute to 12 hours)")
    if scope not in ("all", "availability-zone"):
        raise ActivityError(f"scope {scope!r}: this action cuts an AZ with scope 'all' or "
                            "'availability-zone' (other scopes name AWS endpoints, not an AZ)")
    return seconds


def positive_numbers(**values: Any) -> Dict[str, Any]:
    """Each value as a number above 0 (a numeric string from an experiment's environment
    configuration counts; whole numbers stay ints for the SSM documents), or a one-line refusal;
    `duration_seconds` at most FIS's 12 h, `loss_percent` at most 100."""
    numbers = {}
    for name, value in values.items():
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0:  # NaN fails too
            raise ActivityError(f"{name} must be a number above 0, not {value!r}")
        numbers[name] = int(number) if number.is_integer() else number
    if numbers.get("duration_seconds", 0) > 43_200:
        raise ActivityError(f"duration_seconds {values['duration_seconds']} is more than FIS's 12 h (43200)")
    if numbers.get("loss_percent", 0) > 100:
        raise ActivityError(f"loss_percent {numbers['loss_percent']} is more than 100")
    return numbers


def describe(func: str, arguments: Dict[str, Any], zone: str) -> str:
    """One line: what the FIS network activity `func` would impair in `zone` with these
    (resolved) arguments, checked as the activity checks them; for the preflight's plan."""
    if func == "disrupt_az_connectivity":
        duration, scope = arguments.get("duration", "PT1M"), arguments.get("scope", "all")
        checked_cut(duration, scope)
        flows = ("every flow between the tagged subnets of {z} and the other AZs" if scope == "availability-zone"
                 else "every flow into and out of the tagged subnets of {z}")
        return flows.format(z=zone) + f" for {duration}"
    seconds = arguments.get("duration_seconds", 1800)
    if func == "az_application_slowdown":
        n = positive_numbers(delay_ms=arguments.get("delay_ms", 200), duration_seconds=seconds)
        return (f"+{n['delay_ms']} ms on what the tagged instances in {zone} send toward {zone} "
                f"for {n['duration_seconds']} s")
    n = positive_numbers(loss_percent=arguments.get("loss_percent", 15), duration_seconds=seconds)
    return (f"{n['loss_percent']} % loss on what the tagged instances in {zone} send to the other AZs "
            f"for {n['duration_seconds']} s")
