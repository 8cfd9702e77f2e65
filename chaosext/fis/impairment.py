"""An FIS network experiment as an impairment fault: the impairment window is the experiment's run.

Why: a network impairment has no failover and no completion event (chaosext.fault_model, kind
"impairment"). Its window is when FIS injected it: it starts with the experiment and ends when
the experiment ends (completed, or stopped by a rollback). The result and the ledger carry
`impairment` (the shared shape: AZ, direction, effects, which flows, duration, start and end),
and `recovery.run_fault` measures each service's time to recover from that end.
"""
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from chaosext.fis.experiment import FisRun
from chaosext.recovery import Fault
from groundfloor.timefmt import iso

__all__ = ["Plan", "ImpairmentRun"]


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
