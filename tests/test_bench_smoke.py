"""scripts/bench.py runs: every section produces figures in smoke mode (one round, the shortest
durations; targets are the bench's business, not this test's), and the bench stops the lab it
started when it is stopped with SIGTERM or Ctrl-C, even when started with SIGINT ignored."""
import json
import os
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from bench import SECTIONS
from groundfloor.supervisor import poll_until
from conftest import CHECKOUT, second_lab_port
from woolab import manage

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BENCH = str(CHECKOUT / "scripts" / "bench.py")


def _env() -> dict:
    return {**os.environ, "GAMEDAY_LAB_BASE_PORT": str(second_lab_port()),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))}


@pytest.mark.timeout(900)
def test_every_section_prints_figures_in_smoke_mode(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, BENCH, "--smoke", "--out", str(out)], env=_env(),
                          capture_output=True, text=True, timeout=840)
    figures = json.loads(out.read_text())["figures"] if out.exists() else {}
    failed = {section: figures.get(section, {}).get("error", "printed no figure") for section in SECTIONS
              if not figures.get(section) or "error" in figures[section]}
    assert not failed, failed
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


class BenchProcess:
    """`scripts/bench.py --only lab --smoke` in the background, its output collected line by line."""

    def __init__(self, tmp_path, ignore_sigint: bool = False):
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.proc = subprocess.Popen([sys.executable, BENCH, "--only", "lab", "--smoke", "--out",
                                      str(tmp_path / "bench.json")], env=_env(), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec)
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def state_dir_once_up(self):
        """The state dir of the bench's lab once it reports the lab up."""
        assert poll_until(lambda: any("lab up seconds" in line for line in self.lines), 120, 0.1), self.lines
        header = next(line for line in self.lines if line.startswith("lab (state dir "))
        return header[len("lab (state dir "):].split(",")[0]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum,ignore_sigint", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["sigterm", "ctrl-c-with-sigint-ignored-at-start"])
def test_a_stopped_bench_stops_the_lab_it_started(tmp_path, signum, ignore_sigint):
    bench = BenchProcess(tmp_path, ignore_sigint)
    try:
        state_dir = bench.state_dir_once_up()
        pids = [pid for pid in manage.recorded_pids(state_dir).values() if pid]
        assert pids and all(psutil.pid_exists(pid) for pid in pids)
        bench.proc.send_signal(signum)
        code = bench.proc.wait(120)
    finally:
        if bench.proc.poll() is None:
            bench.proc.kill()
    assert code == (130 if signum == signal.SIGINT else 128 + signum), bench.lines
    assert poll_until(lambda: not any(_alive(pid) for pid in pids), 10, 0.1), \
        [pid for pid in pids if _alive(pid)]
    assert not any("Traceback" in line for line in bench.lines), "".join(bench.lines)
    assert not os.path.exists(state_dir)  # the bench's scratch directory is gone too


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
