"""The load generators of a run, worker by worker: who ran, how much each did, who was lost.

Pure Python (no Locust) so the control, the probes, the report and the terminal pulse can read
it. Three sources, all in the run directory:

- ``load-workers.json``, written every second by the master's recorder: Locust's own view of its
  workers (state, users, when each connected, when it went missing or left mid-run);
- the ``worker`` field of every timeline line, ledger line and error sample;
- the local worker processes the control started (pid, exit code, whether each exited before the
  load was stopped), passed in by :class:`chaosext.load.process.LoadProcess`.

A worker lost mid-run means the shop got less load than configured while the fault was judged:
it is a load-generation problem, reported as one sentence per worker and never ignored.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional

from chaosext.load.timeline import read_lines, read_orders
from groundfloor.timefmt import iso

__all__ = ["WORKERS_FILE", "WorkerWatch", "read_registry", "worker_totals", "fleet",
           "worker_problems", "users_problems", "pulse", "LOCAL"]

WORKERS_FILE = "load-workers.json"
LOCAL = "local"  # the worker name of a single (not distributed) Locust process


def read_registry(run_dir: str) -> Dict[str, Any]:
    """The master's last view of its workers (empty when the run was not distributed)."""
    try:
        with open(os.path.join(run_dir, WORKERS_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def worker_totals(lines: Iterable[dict], orders: Iterable[dict]) -> Dict[str, Dict[str, int]]:
    """Requests, failures, lost carts and acknowledged orders per worker name."""
    out: Dict[str, Dict[str, int]] = {}

    def row(name: Any) -> Dict[str, int]:
        return out.setdefault(str(name or LOCAL), {"requests": 0, "failures": 0,
                                                   "carts_lost": 0, "orders": 0})
    for ln in lines:
        r = row(ln.get("worker"))
        for key in ("requests", "failures", "carts_lost"):
            r[key] += int(ln.get(key, 0) or 0)
    for order in orders:
        row(order.get("worker"))["orders"] += 1
    return out


def fleet(run_dir: str, local: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    """One entry per worker: the master's view, the local process facts, and its totals."""
    registry = read_registry(run_dir).get("workers") or {}
    totals = worker_totals(read_lines(os.path.join(run_dir, "timeline.jsonl")),
                           read_orders(os.path.join(run_dir, "orders.jsonl")))
    names = list(dict.fromkeys([*(p["name"] for p in local or []), *registry, *totals]))
    processes = {p["name"]: p for p in local or []}
    entries = []
    for name in names:
        if name == LOCAL and not registry and not local:
            continue  # a single Locust process: nothing distributed to describe
        seen = registry.get(name) or {}
        entry = {"name": name, "client_id": seen.get("client_id"), "host": seen.get("host"),
                 "pid": seen.get("pid"), "state": seen.get("state"), "users": seen.get("users"),
                 "connected_at": iso(seen.get("connected_at")), "lost_at": iso(seen.get("lost_at")),
                 "lost_how": seen.get("lost_how"), "peak_users": seen.get("peak_users"),
                 **totals.get(name, {"requests": 0, "failures": 0, "carts_lost": 0, "orders": 0})}
        if name in processes:
            proc = processes[name]
            entry.update(pid=proc["pid"], exit_code=proc.get("exit_code"),
                         exited_before_stop=proc.get("exited_before_stop", False))
        entries.append(entry)
    return entries


def worker_problems(workers: List[Dict[str, Any]]) -> List[str]:
    """One 'load generation: …' sentence per worker that died or was lost mid-run."""
    problems = []
    for w in workers:
        exited = w.get("exited_before_stop")
        if not (w.get("lost_at") or exited):
            continue
        pid = f" (pid {w['pid']})" if w.get("pid") else ""
        how = w.get("lost_how") or "stopped sending heartbeats"
        when = f" at {_clock(w['lost_at'])}" if w.get("lost_at") else ""
        code = w.get("exit_code")
        ended = f"; its process exited with code {code}" if exited and code is not None else ""
        problems.append(f"load generation: worker {w['name']}{pid} was lost mid-run{when} ({how}"
                        f"{ended}): from then on the shop did not get the load the experiment "
                        f"asked for ({w['requests']} requests, {w['orders']} orders from it)")
    return problems


def users_problems(run_dir: str) -> List[str]:
    """A 'load generation: …' sentence when the workers never ran every configured user."""
    registry = read_registry(run_dir)
    target, peak = registry.get("target_users"), registry.get("peak_users") or 0
    if not target or peak >= target:
        return []
    return [f"load generation: at most {peak} of the {target} users ran at once: the workers "
            "could not start more before the load stopped (users ÷ spawn_rate longer than the "
            "run, or workers short of CPU: see locust-w*.log)"]


def pulse(rows: List[dict], run_dir: str, window: float) -> Optional[str]:
    """``w1 30 users 41.0 req/s | w2 LOST`` over the last ``window`` seconds of ``rows``."""
    registry = read_registry(run_dir).get("workers") or {}
    if not registry:
        return None
    latest = max((r["t"] for r in rows), default=0)
    rates: Dict[str, int] = {}
    for r in rows:
        if r.get("t", 0) > latest - window:
            name = str(r.get("worker") or LOCAL)
            rates[name] = rates.get(name, 0) + int(r.get("requests", 0))
    parts = []
    for name in sorted(registry, key=_natural):
        w = registry[name]
        state = "LOST" if w.get("lost_at") else f"{w.get('users') or 0} users"
        parts.append(f"{name} {state} {rates.get(name, 0) / window:.1f} req/s")
    return "[workers] " + " | ".join(parts)


def _natural(name: str):
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else 0, name)


def _clock(stamp: str) -> str:
    """``22:43:30Z`` of an ISO stamp (the run's date is in the report)."""
    return stamp.split("T", 1)[-1][:8] + "Z"


class WorkerWatch:
    """The master's running view of its workers, for ``load-workers.json``.

    Fed by the master's recorder every second with Locust's worker table (client id, state,
    users) and with the names the workers announce in their messages. A worker that goes
    ``missing`` (no heartbeat for ~3 s) or leaves while the test is still spawning or running is
    marked lost with the time it happened; leaving while the master stops is the normal end (a
    worker told to quit leaves; it never goes missing, so missing is a loss at any time).
    """

    def __init__(self, run_dir: str, expected: Optional[int] = None,
                 target_users: Optional[int] = None) -> None:
        self.path = os.path.join(run_dir, WORKERS_FILE)
        self.expected = expected
        self.target_users = target_users
        self.peak_users = 0  # most users running at once, over all workers
        self.all_users_at: Optional[float] = None  # when every configured user first ran
        self.entries: Dict[str, Dict[str, Any]] = {}  # by Locust client id
        self.names: Dict[str, Dict[str, Any]] = {}  # client id -> {"name", "pid", "host"}

    def identify(self, client_id: str, name: str, pid: Any = None, host: Any = None) -> None:
        if client_id and name and client_id not in self.names:
            self.names[client_id] = {"name": str(name), "pid": pid, "host": host}

    def observe(self, clients: Iterable[tuple], running: bool, now: float) -> None:
        """``clients``: (client id, state, users) per worker Locust knows right now."""
        present = set()
        for client_id, state, users in clients:
            present.add(client_id)
            entry = self.entries.setdefault(client_id, {"connected_at": round(now, 3),
                                                        "lost_at": None, "lost_how": None})
            entry["state"] = state
            if state != "missing":
                entry["users"] = users
                entry["peak_users"] = max(entry.get("peak_users") or 0, users or 0)
            elif not entry["lost_at"]:  # a worker quitting on request leaves, never goes missing
                entry.update(lost_at=round(now, 3), lost_how="stopped sending heartbeats")
        running_now = sum(self.entries[c].get("users") or 0 for c in present
                          if self.entries[c]["state"] != "missing")
        self.peak_users = max(self.peak_users, running_now)
        if self.target_users and running_now >= self.target_users and not self.all_users_at:
            self.all_users_at = round(now, 3)
        for client_id, entry in self.entries.items():
            if client_id not in present and entry.get("state") != "gone":
                if running and not entry["lost_at"]:
                    entry.update(lost_at=round(now, 3), lost_how="left the master")
                entry["state"] = "gone"

    def snapshot(self, master_state: str, now: float) -> Dict[str, Any]:
        workers = {}
        for client_id, entry in self.entries.items():
            ident = self.names.get(client_id) or {"name": client_id}
            workers[ident["name"]] = {**entry, "client_id": client_id, "pid": ident.get("pid"),
                                      "host": ident.get("host")}
        return {"t": round(now, 3), "master_state": master_state, "expected": self.expected,
                "target_users": self.target_users, "peak_users": self.peak_users,
                "all_users_at": self.all_users_at, "workers": workers}

    def write(self, master_state: str, now: float) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.snapshot(master_state, now), fh, indent=1)
        os.replace(tmp, self.path)
