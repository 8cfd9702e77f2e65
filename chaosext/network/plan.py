"""An AZ network impairment as the pack asks for it, checked before anything changes.

`ask()` turns an activity's arguments into an `Ask` or refuses them in one line: an AZ that is
not an AZ name, a value out of range, contradicting effects, nothing to impair. An `Ask` knows
which fault it is (chaosext.fault_model: kind "impairment"), the query of the lab's
`/_lab/network` route, the one-line description of the flows it impairs (what the preflight's
plan and the fault's result show) and the `impairment` record of the fault's result.
"""
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from chaosext.errors import ActivityError
from groundfloor.timefmt import iso

__all__ = ["Ask", "ask", "FAULTS", "PRIMARIES", "FIS_VARIANTS"]

PRIMARIES = "primaries"  # the AZ that holds the DB instance's and the replication group's primaries
FAULTS = ("az-network-slowdown", "az-network-isolation", "cross-az-packet-loss", "cache-latency")
DIRECTIONS = ("both", "to", "from")
SERVICES = ("db", "cache")
LIMITS = {"delay_ms": 60_000.0, "jitter_ms": 60_000.0, "loss_percent": 100.0,
          "bandwidth_kbps": 10_000_000.0, "duration_seconds": 43_200.0}  # the lab's (FIS: 12 h)
AZ_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+[a-z]$")
FIS_VARIANTS = {
    "az-network-isolation": "FIS aws:network:disrupt-connectivity on the AZ's subnets",
    "az-network-slowdown": "FIS scenario AZ Application Slowdown (latency on the AZ's compute)",
    "cross-az-packet-loss": "FIS scenario Cross-AZ Traffic Slowdown (packet loss on the AZ's compute)",
    "cache-latency": "FIS scenario AZ Application Slowdown on the clients of the cache",
}


def _refuse(why: str) -> ActivityError:
    return ActivityError(f"impair_az_network: {why}; nothing was changed")


def _number(name: str, value: Any) -> float:
    """A value in [0, LIMITS[name]], or a one-line refusal."""
    if value in (None, ""):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _refuse(f"{name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or math.isnan(number) or not 0 <= number <= LIMITS[name]:
        raise _refuse(f"{name} must be between 0 and {LIMITS[name]:g}, not {value!r}")
    return number


@dataclass
class Ask:
    """One checked impairment request; `availability_zone` None means the primaries' AZ."""

    availability_zone: Optional[str]
    direction: str
    delay_ms: float
    jitter_ms: float
    loss_percent: float
    bandwidth_kbps: float
    blackhole: bool
    partition: Optional[str]
    sentinels: bool
    service: Optional[str]
    duration_seconds: float
    fault: str

    def query(self, az: str) -> Dict[str, Any]:
        """The lab route's query for this impairment on `az` (neutral values left out)."""
        values = {"az": az, "direction": self.direction, "delay_ms": self.delay_ms,
                  "jitter_ms": self.jitter_ms, "loss_percent": self.loss_percent,
                  "bandwidth_kbps": self.bandwidth_kbps, "blackhole": "1" if self.blackhole else "",
                  "partition": self.partition or "", "sentinels": "1" if self.sentinels else "",
                  "service": self.service or "", "seconds": self.duration_seconds}
        return {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in values.items()
                if v not in ("", 0.0)}

    def effects(self) -> str:
        """`delay 200±20 ms, loss 15 %`: what the flows suffer."""
        words = []
        if self.delay_ms:
            words.append(f"delay {self.delay_ms:g}" + (f"±{self.jitter_ms:g}" if self.jitter_ms else "")
                         + " ms per round trip")
        if self.loss_percent:
            words.append(f"loss {self.loss_percent:g} %")
        if self.bandwidth_kbps:
            words.append(f"bandwidth {self.bandwidth_kbps:g} kbit/s")
        if self.blackhole:
            words.append("black hole (nothing passes, nothing is reset)")
        if self.partition:
            words.append("cut")
        return ", ".join(words)

    def flows(self, az: str, nodes: List[str]) -> str:
        """One line: which flows suffer what, on which nodes, for how long."""
        where = f"{az}'s " + ("cache nodes" if self.service == "cache" else
                              "DB nodes" if self.service == "db" else "nodes")
        where += f" ({', '.join(nodes)})" if nodes else " (no node of the shop is there now)"
        if self.partition:
            other = "the other AZs" if self.partition == "*" else self.partition
            line = f"node-to-node traffic (replication) between {where} and {other}'s nodes is cut; " \
                   "clients still reach both sides"
        else:
            way = {"both": "to and from", "to": "toward", "from": "leaving"}[self.direction]
            line = f"every connection {way} {where}: {self.effects()}"
        spared = "Sentinel's health checks suffer it too" if self.sentinels else \
            "Sentinel's health checks (ElastiCache's own) are spared"
        return f"{line}; {spared}; for {self.duration_seconds:g} s"

    def record(self, az: str, flows: str, started: Optional[float] = None,
               ended: Optional[float] = None) -> Dict[str, Any]:
        """The `impairment` entry of the fault's result and ledger record."""
        return {"availability_zone": az, "direction": self.direction, "delay_ms": self.delay_ms,
                "jitter_ms": self.jitter_ms, "loss_percent": self.loss_percent,
                "bandwidth_kbps": self.bandwidth_kbps or None, "blackhole": self.blackhole,
                "partition": self.partition, "service": self.service, "flows": flows,
                "duration_seconds": self.duration_seconds,
                "started_at": iso(started) if started else None,
                "ended_at": iso(ended) if ended else None}


def _fault_of(service: Optional[str], blackhole: bool, partition: Optional[str],
              delay_ms: float, loss_percent: float, fault: Optional[str]) -> str:
    if fault is not None:
        if fault not in FAULTS:
            raise _refuse(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        if fault == "cache-latency" and service != "cache":
            raise _refuse("fault cache-latency impairs the cache nodes only: give service=\"cache\"")
        return fault
    if service == "cache":
        return "cache-latency"
    if blackhole:
        return "az-network-isolation"
    if partition or (loss_percent and not delay_ms):
        return "cross-az-packet-loss"
    return "az-network-slowdown"


def _zone(value: Optional[str], name: str) -> Optional[str]:
    if value in (None, "", PRIMARIES):
        return None
    if not isinstance(value, str) or not AZ_NAME.match(value):
        raise _refuse(f"{name} must be an Availability Zone name such as us-east-1a "
                      f"(or \"{PRIMARIES}\"), not {value!r}")
    return value


def ask(availability_zone: Optional[str] = None, delay_ms: Any = 0, jitter_ms: Any = 0,
        loss_percent: Any = 0, bandwidth_kbps: Any = None, blackhole: bool = False,
        partition: Optional[str] = None, direction: str = "both", duration_seconds: Any = None,
        sentinels: bool = False, service: Optional[str] = None, fault: Optional[str] = None) -> Ask:
    """Check the arguments of an AZ impairment; refuses in one line, before any call."""
    az = _zone(availability_zone, "availability_zone")
    if direction not in DIRECTIONS:
        raise _refuse(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if service not in (None, "", *SERVICES):
        raise _refuse(f"service must be one of {', '.join(SERVICES)} (or omitted), not {service!r}")
    if duration_seconds in (None, ""):
        raise _refuse("duration_seconds is required (how long the impairment lasts)")
    values = {k: _number(k, v) for k, v in (("delay_ms", delay_ms), ("jitter_ms", jitter_ms),
                                            ("loss_percent", loss_percent),
                                            ("bandwidth_kbps", bandwidth_kbps),
                                            ("duration_seconds", duration_seconds))}
    if values["duration_seconds"] <= 0:
        raise _refuse(f"duration_seconds must be more than 0, not {duration_seconds!r}")
    if values["jitter_ms"] > values["delay_ms"]:
        raise _refuse(f"jitter_ms {values['jitter_ms']:g} is more than delay_ms {values['delay_ms']:g}")
    if partition == PRIMARIES:
        raise _refuse("partition names the other side of the cut: an AZ, or \"*\" for every other AZ")
    partition = None if partition in (None, "", False) else ("*" if partition in (True, "*") else
                                                             _zone(partition, "partition"))
    if blackhole and partition:
        raise _refuse("blackhole and partition contradict each other (a black hole cuts every flow)")
    if not (blackhole or partition or values["delay_ms"] or values["loss_percent"]
            or values["bandwidth_kbps"]):
        raise _refuse("nothing to impair: give delay_ms, loss_percent, bandwidth_kbps, "
                      "blackhole or partition")
    return Ask(az, direction, blackhole=bool(blackhole), partition=partition,
               sentinels=bool(sentinels), service=service or None,
               fault=_fault_of(service or None, bool(blackhole), partition, values["delay_ms"],
                               values["loss_percent"], fault), **values)
