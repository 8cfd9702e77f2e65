"""Benchmark section `liveview`: `gameday run --web` against its targets (docs/live-view.md).

1. A real `gameday run gameday --web`: how soon the live view answers after the command starts
   (target <= 2 s), and how long after the lab's ground-truth event (its events.jsonl) each
   fault's "control plane done" and "data plane writable" show in ``/phases.json``, polled every
   50 ms (target <= 1 s; the page itself polls every 500 ms, which may add up to 0.5 s).
2. Shopper journeys (no think time, so Locust is busy and the UI's own cost would show) with
   Locust's web UI against the same load headless: same users, same length, alternating, at
   least two rounds each; the web runs have a client reading
   ``/stats/requests`` every 2 s as an open browser tab does (target: web >= 0.9 x headless).
Called by scripts/bench.py.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from woolab import manage
from woolab.events import read_events

from chaosext.load.process import LoadProcess
from chaosext.load.settings import LoadSettings
from gameday.live.options import parse_web


def _get(url: str, timeout: float = 1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read()) if url.endswith(".json") or "/stats/" in url else True
    except (OSError, ValueError):
        return None


def _watch_run(port: int, began: float, proc) -> dict:
    """Poll the live view every 50 ms: first answer, and when each fault milestone appeared."""
    first, seen = None, {}
    while proc.poll() is None:
        data = _get(f"http://127.0.0.1:{port + 1}/phases.json")
        now = time.time()
        if data is not None:
            first = first or now - began
            for p in data["phases"]:
                for key in ("injected_at", "control_plane_done_at", "writable_at"):
                    if p.get("kind") == "fault" and p.get(key):
                        seen.setdefault((p.get("target"), key), now)
        time.sleep(0.05)
    return {"first_answer": first, "seen": seen}


def _lab_times(state_dir: Path, run_dir: Path) -> dict:
    """(target, milestone) -> when the lab recorded it, for each fault of the run's ledger."""
    from groundfloor.aws_events import classify
    from groundfloor.timefmt import parse_time
    times = {}
    events = read_events(state_dir / "events.jsonl")
    for line in (run_dir / "faults.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["record"] != "injected":
            continue
        target, t0 = record["target"], parse_time(record["injected_at"]).timestamp()
        mine = [e for e in events if e["source_id"] == target and e["time"] >= t0 - 1]
        done = [e["time"] for e in mine if e["source_type"] != "lab"
                and (classify(e["message"]) or None) and classify(e["message"]).kind == "failover-completed"]
        writable = [e["time"] for e in mine if e["source_type"] == "lab"
                    and "writable" in e.get("categories", [])]
        times[(target, "injected_at")] = t0
        if done:
            times[(target, "control_plane_done_at")] = min(done)
        if writable:
            times[(target, "writable_at")] = min(writable)
    return times


def bench_live_run(config, args, figure) -> None:
    host, port = parse_web("")
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(args.work / "liveview"),
           "GAMEDAY_LAB_STATE_DIR": str(config.state_dir)}
    began = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "run", "gameday", "--users", "10",
                             "--run-id", "live", "--web", f"{host}:{port}"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = {}
    threading.Thread(target=lambda: out.update(text=proc.stdout.read()), daemon=True).start()
    watched = _watch_run(port, began, proc)
    figure("liveview", "live view first answer after `gameday run` starts, s",
           float(watched["first_answer"] or -1), "target <= 2 s")
    lab = _lab_times(Path(config.state_dir), args.work / "liveview" / "live")
    for (target, key), at in sorted(lab.items()):
        shown = watched["seen"].get((target, key))
        lag = None if shown is None else shown - at
        source = "the ledger's injection stamp" if key == "injected_at" else "the lab's event"
        figure("liveview", f"{target} {key.removesuffix('_at')} shown after {source}, s",
               float(lag) if lag is not None else "never", "target <= 1 s (page poll adds <= 0.5 s)")
    figure("liveview", "the web run's exit code", proc.returncode)


def _rps(settings: LoadSettings, seconds: float, poll_ui: bool) -> float:
    load = LoadProcess(settings).start()
    began, requests_seen = time.monotonic(), []
    while time.monotonic() - began < seconds:
        if poll_ui:  # an open Locust tab refreshes its charts from this every 2 s
            requests_seen.append(_get(f"http://127.0.0.1:{settings.web_port}/stats/requests") is not None)
        time.sleep(2.0)
    summary = load.stop("bench")
    if poll_ui and not all(requests_seen):
        raise RuntimeError("Locust's web UI did not answer /stats/requests during the run")
    return summary["requests"] / summary["duration_seconds"]


NO_THINK = {"think_min": 0, "think_max": 0}  # saturating: where the UI's own cost would show


def bench_throughput(config, args, figure) -> None:
    shop = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    seconds, users, rounds = max(20.0, args.seconds), 20, max(2, args.liveview_rounds)
    ratios, runs = [], {"headless": [], "web": []}
    for n in range(rounds):
        for mode in ("headless", "web") if n % 2 == 0 else ("web", "headless"):
            run_dir = args.work / "liveview" / f"{mode}-{n}"
            web = parse_web("")[1] if mode == "web" else None
            settings = LoadSettings(host=shop, run_dir=str(run_dir), users=users, max_duration=seconds + 60,
                                    web_port=web, shopper=NO_THINK)
            runs[mode].append(_rps(settings, seconds, mode == "web"))
        ratios.append(runs["web"][-1] / runs["headless"][-1])
    for mode in ("headless", "web"):
        figure("liveview", f"journeys req/s {mode} ({users} users, no think time, {seconds:g} s)",
               " / ".join(f"{r:.1f}" for r in runs[mode]))
    figure("liveview", "web / headless req/s, mean of rounds", statistics.mean(ratios), "target >= 0.9")
    figure("liveview", "web / headless req/s, spread (min-max)",
           f"{min(ratios):.3f}-{max(ratios):.3f}", f"load average {os.getloadavg()[0]:.1f}")


def bench_liveview(config, args, figure) -> None:
    bench_live_run(config, args, figure)
    bench_throughput(config, args, figure)
