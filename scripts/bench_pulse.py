"""Benchmark section `pulse`: the facilitator's pulse on a long synthetic run.

The pulse runs beside `chaos run` for the whole game day: every second it reads the phases and
the fault ledger (two small files), every `--pulse-every` seconds it reads the timeline's last
minute (backwards, chaosext.load.timeline.read_recent) and the orders appended since the last
line. This measures both on an hour of 200 shoppers (benchkit.synthetic) and the CPU share
of one core at the defaults (a check every second, a line every 10 s).
"""
import json
import os
import tempfile
import time
from typing import Any, Dict, Optional

from benchkit.core import Context, Section
from benchkit.synthetic import START, synthetic_run_dir
from chaosext import progress
from gameday.pulse import DEFAULT_EVERY, Pulse, state_of

__all__ = ["bench_pulse"]


def _mean_ms(fn, rounds: int) -> float:
    began = time.process_time()
    for _ in range(rounds):
        fn()
    return (time.process_time() - began) * 1000 / rounds


def bench_pulse(seconds: int = 3600, users: int = 200, run_dir: Optional[str] = None
                ) -> Dict[str, Any]:
    work = run_dir or tempfile.mkdtemp(prefix="gameday-pulse-bench-")
    synthetic_run_dir(work, seconds=seconds, users=users)
    with open(os.path.join(work, progress.PROGRESS), "w") as fh:
        for event, at, extra in (("experiment-started", 0, {}),
                                 ("hypothesis-started", 1, {"stage": "before"}),
                                 ("method-started", 60, {})):
            fh.write(progress.event_line(event, START + at, **extra) + "\n")
    now = START + seconds
    pulse = Pulse(work, every=DEFAULT_EVERY)
    began = time.process_time()
    pulse.line(now=now)
    first = (time.process_time() - began) * 1000
    line_ms = _mean_ms(lambda: pulse.line(now=now), 50)
    poll_ms = _mean_ms(lambda: state_of(work), 200)
    cpu = (poll_ms + line_ms / DEFAULT_EVERY) / 1000 * 100
    return {"run_dir": work, "first_line_ms": round(first, 2), "line_ms": round(line_ms, 3),
            "poll_ms": round(poll_ms, 3), "cpu_percent": round(cpu, 3)}


def run(ctx: Context) -> None:
    seconds = 300 if ctx.smoke else 3600
    result = bench_pulse(seconds=seconds, users=200, run_dir=str(ctx.work / "run"))
    ctx.figure(f"pulse line ms ({seconds // 60} min run, 200 users)", float(result["line_ms"]))
    ctx.figure("first line ms (reads the whole order ledger)", float(result["first_line_ms"]))
    ctx.figure("phase/fault check ms (every second)", float(result["poll_ms"]))
    ctx.figure("CPU share of one core at the defaults (%)", float(result["cpu_percent"]), "target < 1 %")


SECTION = Section("pulse", run, lambda _args: 300.0, about="what the facilitator's pulse costs a game day")

if __name__ == "__main__":
    print(json.dumps(bench_pulse(), indent=1))
