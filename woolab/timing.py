"""Timing profiles: how long the lab's failures and recoveries take.

`fast` compresses AWS's timescales so CI can run many failovers; `aws` takes AWS's documented
figures (sources in docs/timing.md); a JSON file can set every duration. A duration is either one
number or a `[low, high]` range; a range is sampled per event from a random generator seeded by
the profile's `seed`, so a run can be repeated exactly.
"""
import json
import random
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Tuple, Union

from .errors import LabStartError

Duration = Union[float, Tuple[float, float]]


@dataclass
class TimingProfile:
    name: str = "fast"
    seed: int = 20261130
    # RDS Multi-AZ DB instance: how long the instance endpoint stays unusable in a failover
    # (AWS: "typically 60-120 seconds", RDS User Guide, Concepts.MultiAZ.Failover).
    db_failover_seconds: Duration = 1.5
    # Multi-AZ DB cluster: how long the cluster endpoint stays unusable in a FailoverDBCluster
    # (AWS: "Failover times are typically under 35 seconds", RDS User Guide,
    # multi-az-db-clusters-concepts-failover; docs/db-cluster.md)
    db_cluster_failover_seconds: Duration = 1.0
    # how long RDS's monitoring takes to act on a crashed, hung or unreachable primary
    db_detection_seconds: Duration = 2.0
    # ElastiCache TestFailover: how long the group has no writable primary before promotion
    cache_failover_seconds: Duration = 1.0
    # Sentinel's down-after: how long a silent cache primary goes unnoticed (automatic failover)
    cache_detection_seconds: Duration = 1.5
    # how long after a node failure the replacement of a failed cache node or DB standby starts
    replacement_delay_seconds: Duration = 1.0
    # TTL of the endpoints' DNS records (RDS instance endpoints: 5 s; see docs/timing.md)
    db_dns_ttl_seconds: float = 1.0
    cache_dns_ttl_seconds: float = 1.0

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def sample(self, name: str) -> float:
        """One value of duration `name` (ranges drawn from the seeded generator)."""
        value = getattr(self, name)
        if isinstance(value, (list, tuple)):
            with self._lock:
                return self._rng.uniform(float(value[0]), float(value[1]))
        return float(value)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PROFILES = {
    "fast": TimingProfile(),
    "aws": TimingProfile(
        name="aws", db_failover_seconds=(60.0, 120.0), db_detection_seconds=(10.0, 30.0),
        db_cluster_failover_seconds=(15.0, 35.0),
        cache_failover_seconds=(15.0, 45.0), cache_detection_seconds=(5.0, 15.0),
        replacement_delay_seconds=(5.0, 15.0), db_dns_ttl_seconds=5.0, cache_dns_ttl_seconds=5.0),
}


def profile_for(config) -> TimingProfile:
    """The lab's profile with the explicit per-duration options of `gameday lab up` applied."""
    profile = load_profile(config.timing)
    overrides = {"db_failover_seconds": config.db_failover_outage_seconds,
                 "cache_failover_seconds": config.cache_failover_outage_seconds,
                 "cache_detection_seconds": config.sentinel_down_after_ms / 1000.0
                 if config.sentinel_down_after_ms else None}
    for name, value in overrides.items():
        if value is not None:
            setattr(profile, name, float(value))
    return profile


def load_profile(name_or_file: str) -> TimingProfile:
    """`fast`, `aws`, or a JSON file that overrides any of the `fast` durations."""
    if name_or_file in PROFILES:
        return TimingProfile(**{k: v for k, v in asdict(PROFILES[name_or_file]).items()})
    path = Path(name_or_file)
    if not path.is_file():
        raise LabStartError(f"unknown timing {name_or_file!r} (use fast, aws or a JSON file)")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise LabStartError(f"timing file {path} is not valid JSON: {exc}") from None
    known = {f.name for f in fields(TimingProfile)}
    unknown = sorted(set(data) - known) if isinstance(data, dict) else ["(not an object)"]
    if unknown:
        raise LabStartError(f"timing file {path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    base = asdict(PROFILES["fast"])
    base.update(data)
    if "name" not in data:
        base["name"] = path.stem
    profile = TimingProfile(**base)
    for f in fields(profile):
        value = getattr(profile, f.name)
        if f.name in ("name", "seed"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, (int, float)) and v >= 0 for v in values) or len(values) not in (1, 2):
            raise LabStartError(f"timing file {path}: {f.name} must be seconds ≥ 0 or [low, high]")
    return profile
