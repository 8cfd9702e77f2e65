"""Network impairments per Availability Zone and direction: what is asked, what is in force.

An impairment names an AZ, a direction (`to` the AZ's nodes, `from` them, or `both`), its
effects and its end. Effects combine (a delay and a bandwidth cap at once); a second impairment
that sets an effect already in force to another value, or a black hole beside a partition, is a
contradiction and is refused without changing anything (docs/lab-network.md).
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..errors import LabInvalidState

DIRECTIONS = ("both", "to", "from")
SERVICES = {"db": "DB nodes", "cache": "cache nodes"}  # `service`: only flows to that kind of node
LIMITS = {"delay_ms": 60_000.0, "jitter_ms": 60_000.0, "loss_percent": 100.0,
          "bandwidth_kbps": 10_000_000.0, "seconds": 43_200.0}
DEFAULT_SECONDS = 1800.0  # FIS's AZ Application Slowdown lasts 30 min by default
EFFECTS = ("delay_ms", "jitter_ms", "loss_percent", "bandwidth_kbps", "blackhole", "partition")


@dataclass
class Impairment:
    """One impairment as asked: `partition` is "" (no cut), "*" (every other AZ) or one AZ."""
    az: str
    direction: str = "both"
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_percent: float = 0.0
    bandwidth_kbps: float = 0.0
    blackhole: bool = False
    partition: str = ""
    sentinels: bool = False  # Sentinel's links suffer it too (Sentinel may then fail over by itself)
    service: str = ""  # "" every node of the AZ, "db" or "cache": only flows to that kind of node
    seconds: float = DEFAULT_SECONDS
    started_at: float = field(default_factory=time.time)

    @property
    def ends_at(self) -> float:
        return self.started_at + self.seconds

    def effects(self) -> Dict[str, object]:
        """The effects it sets (the ones not at their neutral value)."""
        return {k: getattr(self, k) for k in EFFECTS if getattr(self, k)}

    def describe(self) -> str:
        """One short phrase, e.g. `delay 200±20 ms, loss 15 % (both, 30 s left)`."""
        words = []
        if self.delay_ms or self.jitter_ms:
            words.append(f"delay {self.delay_ms:g}" + (f"±{self.jitter_ms:g}" if self.jitter_ms else "") + " ms")
        if self.loss_percent:
            words.append(f"loss {self.loss_percent:g} %")
        if self.bandwidth_kbps:
            words.append(f"bandwidth {self.bandwidth_kbps:g} kbit/s")
        if self.blackhole:
            words.append("black hole")
        if self.partition:
            words.append("cut from " + ("the other AZs" if self.partition == "*" else self.partition))
        if self.service:
            words.append(f"{SERVICES[self.service]} only")
        if self.sentinels:
            words.append("Sentinels too")
        left = max(0.0, self.ends_at - time.time())
        return ", ".join(words) + f" ({self.direction}, {left:.0f} s left)"

    def to_dict(self) -> dict:
        return {**asdict(self), "ends_at": self.ends_at, "summary": self.describe()}


def _number(values: dict, key: str) -> float:
    raw = values.get(key)
    if raw in (None, ""):
        return 0.0
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise LabInvalidState(f"--{key.replace('_', '-')} must be a number, not {raw!r}") from None
    if number != number or number < 0:
        raise LabInvalidState(f"--{key.replace('_', '-')} must be 0 or more, not {raw}")
    if number > LIMITS[key]:
        raise LabInvalidState(f"--{key.replace('_', '-')} {number:g} is more than the lab allows ({LIMITS[key]:g})")
    return number


def _flag(values: dict, key: str) -> bool:
    return str(values.get(key, "")).strip().lower() in ("1", "true", "yes", "on")


def parse(values: dict, azs: List[str]) -> Impairment:
    """An impairment from the control route's query (strings), checked against the lab's AZs."""
    az = values.get("az") or ""
    if az not in azs:
        raise LabInvalidState(f"unknown AZ {az!r}: the lab's AZs are {', '.join(azs)}")
    direction = values.get("direction") or "both"
    if direction not in DIRECTIONS:
        raise LabInvalidState(f"--direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    service = values.get("service") or ""
    if service and service not in SERVICES:
        raise LabInvalidState(f"--service must be one of {', '.join(SERVICES)}, not {service!r}")
    partition = values.get("partition") or ""
    if partition == az:
        raise LabInvalidState(f"an AZ cannot be cut from itself ({az})")
    if partition not in ("", "*") and partition not in azs:
        raise LabInvalidState(f"unknown AZ {partition!r} to cut {az} from: the lab's AZs are {', '.join(azs)}")
    found = Impairment(az=az, direction=direction, partition=partition, blackhole=_flag(values, "blackhole"),
                       sentinels=_flag(values, "sentinels"), service=service,
                       **{k: _number(values, k) for k in ("delay_ms", "jitter_ms", "loss_percent", "bandwidth_kbps")})
    if found.blackhole and found.partition:
        raise LabInvalidState("--blackhole and --partition contradict each other: a black hole already "
                              "cuts every flow of the AZ")
    if found.jitter_ms > found.delay_ms:
        raise LabInvalidState(f"--jitter-ms {found.jitter_ms:g} is more than --delay-ms {found.delay_ms:g}: "
                              "a delay cannot go below zero")
    if values.get("seconds") not in (None, ""):
        found.seconds = _number(values, "seconds")
        if found.seconds <= 0:
            raise LabInvalidState("--seconds must be more than 0")
    if not found.effects():
        raise LabInvalidState("nothing to impair: give --delay-ms, --loss-percent, --bandwidth-kbps, "
                              "--blackhole or --partition")
    return found


def _overlap(a: Impairment, b: Impairment) -> bool:
    return (a.az == b.az and (a.direction == b.direction or "both" in (a.direction, b.direction))
            and (a.service == b.service or "" in (a.service, b.service)))


def contradiction(new: Impairment, in_force: List[Impairment]) -> Optional[str]:
    """Why `new` cannot join the impairments in force, or None when it combines with them."""
    for old in in_force:
        if old.az != new.az:
            continue
        if (new.blackhole and old.partition) or (new.partition and old.blackhole):
            return f"{new.az} already has {old.describe()}: a black hole and a partition contradict each other"
        if new.partition and old.partition and new.partition != old.partition:
            return f"{new.az} is already cut from {old.partition.replace('*', 'the other AZs')}; clear it first"
        if not _overlap(new, old):
            continue
        for key, value in new.effects().items():
            if key in ("blackhole", "partition"):
                continue
            if getattr(old, key) and getattr(old, key) != value:
                return (f"{new.az} already has --{key.replace('_', '-')} {getattr(old, key):g} "
                        f"({old.direction}); clear it first (gameday lab network --clear)")
    return None


@dataclass
class Effect:
    """What one direction of one connection suffers right now (the sum of the impairments)."""
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    bytes_per_s: float = 0.0
    hold: bool = False

    def add(self, imp: Impairment) -> None:
        """Add one impairment's effects; a delay asked for `both` directions is split between
        them, so a round trip gains the delay asked, as with netem on the hosts' egress."""
        share = 0.5 if imp.direction == "both" else 1.0
        self.delay_s += imp.delay_ms / 1000.0 * share
        self.jitter_s += imp.jitter_ms / 1000.0 * share
        self.loss = 1 - (1 - self.loss) * (1 - imp.loss_percent / 100.0)
        if imp.bandwidth_kbps:
            rate = imp.bandwidth_kbps * 1000 / 8
            self.bytes_per_s = min(self.bytes_per_s, rate) if self.bytes_per_s else rate
        self.hold = self.hold or imp.blackhole
