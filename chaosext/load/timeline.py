"""Per-second, per-step aggregation of shopper requests, and reading it back.

Pure Python (no Locust, no gevent) so the probes, the control and the tests can import it without
Locust's monkey-patching. Memory is bounded: a second is a handful of counters and a sparse
histogram over fixed log-spaced buckets (5 % wide, so a percentile is within ~2.5 %), and a second
is dropped as soon as it is written. Nothing grows with the number of requests.

Line format of ``timeline.jsonl`` (one per second per step per worker, latencies in ms)::

    {"t": 1700000000, "step": "checkout", "worker": "w1", "requests": 12, "failures": 1,
     "errors": {"503": 1}, "carts_lost": 0, "p50": 8.1, "p95": 20.0, "p99": 31.5, "max": 33.0,
     "hist": [[7.9, 5], [8.3, 4], ...]}

``hist`` pairs are ``[bucket value in ms, count]``; they let readers compute exact-bucket
percentiles over any window. ``t`` is the second in which the requests *completed*. ``worker``
names the load generator that measured the line (``local`` for a single Locust process, ``w1``
… for distributed workers). A worker batch that arrives after its second was written produces
another line for the same (t, step, worker), so readers aggregate by (t, step) — summing counts
and histograms — rather than assume one line per second and step.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

__all__ = [
    "bucket_of", "bucket_value", "percentile", "StepSecond", "TimelineAggregator",
    "read_lines", "read_recent", "window_stats", "totals", "read_orders",
]

_BASE_MS = 0.01
_GROWTH = 1.05
_LOG_GROWTH = math.log(_GROWTH)
MAX_BUCKET = 512  # 0.01 ms * 1.05**512 ~ 7 hours: every real latency fits
PERCENTILES = (50, 95, 99)


def bucket_of(ms: float) -> int:
    """The histogram bucket of a latency: bucket i holds (0.01*1.05**(i-1), 0.01*1.05**i] ms."""
    if ms <= _BASE_MS:
        return 0
    return min(MAX_BUCKET, int(math.ceil(math.log(ms / _BASE_MS) / _LOG_GROWTH)))


def bucket_value(index: int) -> float:
    """The value reported for a bucket: its geometric middle, rounded to 3 significant digits."""
    if index <= 0:
        return _BASE_MS
    value = _BASE_MS * _GROWTH ** (index - 0.5)
    return float(f"{value:.3g}")


def percentile(hist: Iterable[Tuple[float, int]], pct: float) -> float:
    """Nearest-rank percentile of ``(value, count)`` pairs (any order); 0.0 when empty."""
    pairs = sorted((v, c) for v, c in hist if c > 0)
    total = sum(c for _, c in pairs)
    if not total:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * total))
    seen = 0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value
    return pairs[-1][0]


class StepSecond:
    """What one journey step did in one second."""

    __slots__ = ("requests", "failures", "errors", "carts_lost", "hist", "max_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.errors: Dict[str, int] = {}
        self.carts_lost = 0
        self.hist: Dict[int, int] = {}
        self.max_ms = 0.0

    def add(self, ms: float, error: Optional[str] = None, cart_lost: bool = False) -> None:
        self.requests += 1
        b = bucket_of(ms)
        self.hist[b] = self.hist.get(b, 0) + 1
        if ms > self.max_ms:
            self.max_ms = ms
        if error is not None:
            self.failures += 1
            self.errors[error] = self.errors.get(error, 0) + 1
        if cart_lost:
            self.carts_lost += 1

    def merge(self, other: "StepSecond") -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.carts_lost += other.carts_lost
        self.max_ms = max(self.max_ms, other.max_ms)
        for k, n in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + n
        for b, n in other.hist.items():
            self.hist[b] = self.hist.get(b, 0) + n

    # -- transport between Locust workers and the master (msgpack: no int map keys) --
    def to_wire(self) -> dict:
        return {"requests": self.requests, "failures": self.failures, "errors": self.errors,
                "carts_lost": self.carts_lost, "max": self.max_ms,
                "hist": [[b, n] for b, n in self.hist.items()]}

    @classmethod
    def from_wire(cls, data: dict) -> "StepSecond":
        s = cls()
        s.requests = int(data["requests"])
        s.failures = int(data["failures"])
        s.errors = {str(k): int(v) for k, v in data.get("errors", {}).items()}
        s.carts_lost = int(data.get("carts_lost", 0))
        s.max_ms = float(data.get("max", 0.0))
        s.hist = {int(b): int(n) for b, n in data.get("hist", [])}
        return s

    def to_line(self, t: int, step: str, worker: Optional[str] = None) -> dict:
        hist = sorted((bucket_value(b), n) for b, n in self.hist.items())
        line = {"t": t, "step": step, **({"worker": worker} if worker else {}),
                "requests": self.requests, "failures": self.failures,
                "errors": dict(sorted(self.errors.items())), "carts_lost": self.carts_lost}
        for p in PERCENTILES:  # a bucket's middle may exceed the slowest request: clamp
            line[f"p{p}"] = min(percentile(hist, p), round(self.max_ms, 3))
        line["max"] = round(self.max_ms, 3)
        line["hist"] = [[v, n] for v, n in hist]
        return line


class TimelineAggregator:
    """Seconds not yet written, keyed by (second, step, worker); drained in time order."""

    def __init__(self) -> None:
        self._pending: Dict[int, Dict[Tuple[str, str], StepSecond]] = {}

    def __len__(self) -> int:
        return sum(len(steps) for steps in self._pending.values())

    def add(self, t: float, step: str, ms: float, error: Optional[str] = None,
            cart_lost: bool = False, worker: str = "") -> None:
        steps = self._pending.setdefault(int(t), {})
        cell = steps.get((step, worker))
        if cell is None:
            cell = steps[(step, worker)] = StepSecond()
        cell.add(ms, error, cart_lost)

    def merge(self, t: int, step: str, cell: StepSecond, worker: str = "") -> None:
        steps = self._pending.setdefault(int(t), {})
        if (step, worker) in steps:
            steps[(step, worker)].merge(cell)
        else:
            steps[(step, worker)] = cell

    def drain(self, before: Optional[float] = None) -> List[Tuple[int, str, str, StepSecond]]:
        """Remove and return every second < ``before`` (all when None) as ``(t, step, worker,
        cell)``, oldest first."""
        ready = sorted(t for t in self._pending if before is None or t < before)
        out = []
        for t in ready:
            for (step, worker), cell in sorted(self._pending.pop(t).items()):
                out.append((t, step, worker, cell))
        return out


# ---------------------------------------------------------------- reading

def read_lines(path: str) -> Iterator[dict]:
    """Every well-formed JSON line of a file (a torn last line while it is written is skipped)."""
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                continue


def read_recent(path: str, since: float, block: int = 65536) -> List[dict]:
    """Lines with ``t >= since``, reading the file backwards so long runs stay cheap.

    Lines are appended roughly in time order (late worker lines may be a few seconds out of
    order), so reading stops a margin of 30 s before ``since``.
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        return []
    margin = since - 30
    complete: List[bytes] = []
    with open(path, "rb") as fh:
        pos = size
        while pos > 0:
            pos = max(0, pos - block)
            block *= 2  # doubling keeps the total read linear in what is finally needed
            fh.seek(pos)
            data = fh.read(size - pos)
            complete = data.split(b"\n")[1:] if pos > 0 else data.split(b"\n")
            oldest = next(_parse(complete), None)
            if oldest is not None and oldest.get("t", 0) < margin:
                break
    return [ln for ln in _parse(complete) if ln.get("t", 0) >= since]


def _parse(raws: Iterable[bytes]) -> Iterator[dict]:
    for raw in raws:
        raw = raw.strip()
        if raw:
            try:
                yield json.loads(raw)
            except ValueError:
                continue


def window_stats(lines: Iterable[dict], step: Optional[str] = None) -> dict:
    """Sum of requests/failures/errors and merged histogram over lines (one step or all)."""
    out = {"requests": 0, "failures": 0, "carts_lost": 0, "errors": {}, "hist": {}}
    for ln in lines:
        if step is not None and ln.get("step") != step:
            continue
        out["requests"] += ln.get("requests", 0)
        out["failures"] += ln.get("failures", 0)
        out["carts_lost"] += ln.get("carts_lost", 0)
        for k, n in ln.get("errors", {}).items():
            out["errors"][k] = out["errors"].get(k, 0) + n
        for v, n in ln.get("hist", []):
            out["hist"][v] = out["hist"].get(v, 0) + n
    return out


def totals(path: str) -> dict:
    """Whole-run totals of a timeline file, per step and overall (for the load summary)."""
    steps: Dict[str, dict] = {}
    first = last = None
    for ln in read_lines(path):
        t = ln.get("t")
        if t is not None:
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
        s = steps.setdefault(ln.get("step", "?"), {"requests": 0, "failures": 0,
                                                     "carts_lost": 0, "errors": {}, "hist": {}})
        agg = window_stats([ln])
        s["requests"] += agg["requests"]
        s["failures"] += agg["failures"]
        s["carts_lost"] += agg["carts_lost"]
        for k, n in agg["errors"].items():
            s["errors"][k] = s["errors"].get(k, 0) + n
        for v, n in agg["hist"].items():
            s["hist"][v] = s["hist"].get(v, 0) + n
    out_steps = {}
    for name, s in sorted(steps.items()):
        hist = list(s.pop("hist").items())
        s.update({f"p{p}": percentile(hist, p) for p in PERCENTILES})
        out_steps[name] = s
    return {
        "first_second": first, "last_second": last,
        "requests": sum(s["requests"] for s in out_steps.values()),
        "failures": sum(s["failures"] for s in out_steps.values()),
        "carts_lost": sum(s["carts_lost"] for s in out_steps.values()),
        "steps": out_steps,
    }


def read_orders(path: str) -> List[dict]:
    """The acknowledged orders of a ledger file, in the order they were acknowledged."""
    return [o for o in read_lines(path) if "order_id" in o]
