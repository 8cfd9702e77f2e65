"""The facilitator's pulse: one compact line about a game day in flight, read from its run dir.

A game day is watched by a room of people between Chaos Toolkit's log lines, so the pulse says
in one line what they ask most: which phase is running, where the fault in flight stands, how
each journey step is doing, and how many orders were acknowledged::

    [pulse 01:24:56Z] method: rds-force-failover +2s injected, writable 1.5s | req/s p95 err:
    browse 18 6ms 0% · product 13 7ms 0% · add_to_cart 8.8 6ms 0% · view_cart 5.8 6ms 0% ·
    checkout 2.2 9ms 55% | orders 11

(one line; wrapped here). Every figure comes from the run's own files, written by the
experiment's controls and actions as they happen:

- ``progress.jsonl`` (chaosext.progress): the phase that began last;
- ``faults.jsonl`` (chaosext.faultlog): the fault injected last in the method and its
  milestones (control plane done, data plane writable again) or its end;
- ``timeline.jsonl`` (chaosext.load.timeline): requests/s, p95 latency and error ratio per
  journey step (Locust request names) over the last ``window`` seconds of load, steps with
  traffic only;
- ``orders.jsonl``: the orders acknowledged so far (read incrementally: a long run costs the
  same per line as a short one).

`Pulse` prints a line every ``every`` seconds and at once when the phase or the fault's
milestone changes; pure functions (`state_of`, `steps_of`, `render`) make the line, so a test
can feed a known run dir and check the text.
"""
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from chaosext import faultlog, progress
from chaosext.fault_model import SERVICES
from chaosext.load.timeline import percentile, read_recent
from chaosext.load.workers import pulse as worker_pulse
from groundfloor.timefmt import parse_time
from groundfloor import run_files

__all__ = ["PHASE_LABELS", "RunState", "state_of", "steps_of", "render", "OrderCount", "Pulse",
           "DEFAULT_EVERY"]

DEFAULT_EVERY = 10.0
# the journey's order (the Locust request names of chaosext/loadtests/shopper.py, STEPS); other
# steps (another locustfile's) follow by name
JOURNEY = ("browse", "product", "add_to_cart", "view_cart", "checkout")
PHASE_LABELS = {None: "starting", "experiment": "starting", "hypothesis-before": "steady state before",
                "method": "method", "hypothesis-after": "steady state after",
                "rollbacks": "rollbacks", "ended": "ended"}
MILESTONES = {"control-plane-done": "control plane done", "writable": "writable"}  # ledger records


def _epoch(stamp: Any) -> Optional[float]:
    try:
        return parse_time(stamp).timestamp() if stamp else None
    except ValueError:
        return None


class RunState:
    """Phase and fault in flight at one moment; `key` changes exactly when a line is due at once."""

    def __init__(self, phase: Optional[str], status: Optional[str] = None,
                 fault: Optional[Dict[str, Any]] = None, count: int = 0):
        self.phase, self.status, self.fault, self.count = phase, status, fault, count

    @property
    def key(self) -> Tuple:
        fault = self.fault or {}
        return (self.count, fault.get("fault"), fault.get("injected"),
                tuple(sorted(fault.get("milestones", {}))), fault.get("ended"))

    def label(self, now: float) -> str:
        text = PHASE_LABELS.get(self.phase, self.phase)
        if self.phase == "ended" and self.status:
            text += f": {self.status}"
        if self.phase == "method" and self.fault:
            text += ": " + _fault_text(self.fault, now)
        return text


def _fault_text(fault: Dict[str, Any], now: float) -> str:
    """``rds-force-failover +4s injected, writable 1.6s`` (milestones in seconds after injection)."""
    injected = fault["injected"]
    parts = ["injected"] + [f"{name} {at - injected:.1f}s" for name, at in
                            sorted(fault["milestones"].items(), key=lambda kv: kv[1])]
    if fault["ended"]:
        return f"{fault['fault']} {', '.join(parts)}; recovered"
    return f"{fault['fault']} +{max(0.0, now - injected):.0f}s {', '.join(parts)}"


def state_of(run_dir: str, records: Optional[List[Dict[str, Any]]] = None) -> RunState:
    """The phase that began last (of ``records``, else of the run's phases) and, during the
    method, the fault injected last."""
    records = progress.phases(run_dir) if records is None else records
    last = records[-1] if records else {}
    phase = last.get("phase")
    fault = _last_fault(faultlog.read(run_dir)) if phase == "method" else None
    method_began = _epoch(last.get("at")) if phase == "method" else None
    if fault and method_began is not None and fault["injected"] < method_began - 1:
        fault = None  # a fault of an earlier run sharing the directory
    return RunState(phase, last.get("status"), fault, len(records))


def _last_fault(ledger: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    faults: Dict[Tuple, Dict[str, Any]] = {}
    for record in ledger:
        injected = _epoch(record.get("injected_at"))
        if injected is None:
            continue
        entry = faults.setdefault((record.get("fault"), record.get("injected_at")), {
            "fault": record.get("fault"), "injected": injected, "milestones": {}, "ended": False})
        kind = record.get("record")
        if kind in MILESTONES and _epoch(record.get("at")) is not None:
            entry["milestones"].setdefault(_milestone_name(record), _epoch(record["at"]))
        elif kind == "ended":
            entry["ended"] = True
            for name, key in (("writable", "data_plane_writable_at"),
                              ("control plane done", "control_plane_completed_at")):
                if _epoch(record.get(key)) is not None:
                    entry["milestones"][name] = _epoch(record[key])
    return max(faults.values(), key=lambda f: f["injected"], default=None)


def _milestone_name(record: Dict[str, Any]) -> str:
    """"writable", or "cache writable" for one service of a fault that touches several
    ("database readers serving" for a DB cluster's reader endpoint)."""
    name = MILESTONES[record["record"]]
    service = SERVICES.get(record.get("service") or "")
    if service and len(record.get("services") or ()) > 1:
        return f"{service.label} {service.recovered if name == 'writable' else name}"
    return name


def steps_of(rows: List[dict], window: float) -> List[Dict[str, Any]]:
    """Per journey step with traffic in the last ``window`` seconds of ``rows``: requests/s,
    p95 (ms, from the merged histograms) and error ratio; in order of first appearance."""
    latest = max((r["t"] for r in rows if "t" in r), default=None)
    if latest is None:
        return []
    first = min(r["t"] for r in rows if "t" in r)
    span = max(1.0, min(float(window), latest - first + 1))
    steps: Dict[str, Dict[str, Any]] = {}
    for r in rows:
        if r.get("t", -1) <= latest - span or not r.get("requests"):
            continue
        s = steps.setdefault(r.get("step", "?"), {"requests": 0, "failures": 0, "hist": []})
        s["requests"] += int(r["requests"])
        s["failures"] += int(r.get("failures", 0))
        s["hist"] += [tuple(p) for p in r.get("hist") or []] or [(r.get("p95", 0.0), r["requests"])]
    order = {name: i for i, name in enumerate(JOURNEY)}
    return [{"step": name, "rate": s["requests"] / span, "p95": percentile(s["hist"], 95),
             "error_ratio": s["failures"] / s["requests"]}
            for name, s in sorted(steps.items(), key=lambda kv: (order.get(kv[0], len(order)),
                                                                 kv[0]))]


def render(now: float, state: RunState, steps: List[Dict[str, Any]], orders: int) -> str:
    """The pulse line (see the module docstring)."""
    clock = time.strftime("%H:%M:%SZ", time.gmtime(now))
    load = " · ".join(f"{s['step']} {_rate(s['rate'])} {s['p95']:.0f}ms {_ratio(s['error_ratio'])}"
                      for s in steps)
    return " | ".join([f"[pulse {clock}] {state.label(now)}",
                       f"req/s p95 err: {load}" if load else "no load yet", f"orders {orders}"])


def _ratio(ratio: float) -> str:
    """An error ratio that never rounds a few errors away: 0%, 0.4%, 23%."""
    return "0%" if ratio == 0 else f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def _rate(rate: float) -> str:
    """Requests/s in 2-3 significant figures: 0.4, 8.8, 21."""
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


class OrderCount:
    """Acknowledged orders in ``orders.jsonl`` so far, reading only what was appended since."""

    def __init__(self, path: str):
        self.path, self.offset, self.count, self.partial = path, 0, 0, b""

    def __call__(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return self.count
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an order still being written
        self.count += sum(1 for line in lines if b'"order_id"' in line)
        return self.count


class Pulse(threading.Thread):
    """Prints the pulse every ``every`` seconds, and at once when the phase or fault changes.

    Checks for a change every ``poll`` seconds (two small files); reads the timeline only when
    it prints. ``write`` receives each line (print, by default)."""

    def __init__(self, run_dir: str, every: float = DEFAULT_EVERY, poll: float = 1.0,
                 write: Callable[[str], None] = None):
        super().__init__(daemon=True, name="pulse")
        self.run_dir, self.every, self.poll = str(run_dir), float(every), min(float(poll), every)
        self.write = write or (lambda line: print(line, flush=True))
        self.halt, self.orders = threading.Event(), OrderCount(os.path.join(self.run_dir,
                                                                            run_files.ORDERS))
        self.last_key: Optional[Tuple] = None
        self.shown = 0  # phase records already shown

    def line(self, now: Optional[float] = None, state: Optional[RunState] = None) -> str:
        now = time.time() if now is None else now
        state = state or state_of(self.run_dir)
        rows = read_recent(os.path.join(self.run_dir, run_files.TIMELINE), now - self.every - 60)
        text = render(now, state, steps_of(rows, self.every), self.orders())
        workers = worker_pulse(rows, self.run_dir, self.every) if rows else None
        return text + ("\n" + workers if workers else "")

    def run(self) -> None:
        due = time.monotonic() + self.every
        while not self.halt.wait(self.poll):
            if self.tick(force=time.monotonic() >= due):
                due = time.monotonic() + self.every
        self.tick(force=False)  # the last phase (ended) if it was not shown yet

    def tick(self, force: bool) -> bool:
        """Write a line when forced (the interval is up) or the phase/fault changed; a phase
        that began and ended since the last look still gets its line, in order."""
        records = progress.phases(self.run_dir)
        for count in range(self.shown + 1, len(records)):
            if records[count - 1].get("phase") != "experiment":  # "starting": nothing to see
                self.write(self.line(state=state_of(self.run_dir, records[:count])))
        self.shown = max(self.shown, len(records))
        state = state_of(self.run_dir, records)
        if not force and state.key == self.last_key:
            return False
        self.last_key = state.key
        self.write(self.line(state=state))
        return True

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout=5)
