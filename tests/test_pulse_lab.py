"""The pulse of a real game day on the lab: phases in order, orders as the ledger had them."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaosext import progress
from groundfloor.timefmt import parse_time
from gameday.pulse import PHASE_LABELS

GAMEDAY = str(Path(sys.executable).parent / "gameday")
PULSE = re.compile(r"^\[pulse (\d\d):(\d\d):(\d\d)Z\] (?P<label>[^|]+?) \| .* \| orders (?P<orders>\d+)$")
ORDER = ["starting", "steady state before", "method", "steady state after", "rollbacks", "ended"]


def phase_of(label: str) -> str:
    return next(p for p in sorted(ORDER, key=len, reverse=True) if label.startswith(p))


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_quiet_run_prints_the_pulse_in_phase_order_with_the_ledgers_orders(lab, tmp_path):
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(tmp_path)}
    result = subprocess.run([GAMEDAY, "run", "rds-force-failover", "--state-dir", str(lab.state_dir),
                             "--users", "8", "--run-id", "pulse", "--pulse-every", "1", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=280, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = tmp_path / "pulse"
    lines = result.stdout.splitlines()
    pulses = [PULSE.match(line) for line in lines if line.startswith("[pulse ")]
    assert pulses and all(pulses), lines
    # quiet: besides the pulse, only the run dir line and the verdict; chaos's log went to a file
    others = [line for line in lines if not line.startswith("[pulse ")]
    assert others[0].startswith("gameday: running rds-force-failover") and "[INFO]" not in result.stdout
    assert others[1] == "verdict: PASSED" and others[-1].startswith("report: ")
    assert "Steady state hypothesis" in (run_dir / "chaos-console.log").read_text()
    assert "Traceback" not in result.stderr

    # every phase the run recorded is on a pulse line, in the order the run went through them
    labels = [phase_of(m.group("label")) for m in pulses]
    seen = [label for i, label in enumerate(labels) if i == 0 or labels[i - 1] != label]
    recorded = [PHASE_LABELS[r["phase"]] for r in progress.phases(str(run_dir)) if r["phase"] != "experiment"]
    assert [s for s in seen if s != "starting"] == recorded
    assert recorded == ["steady state before", "method", "steady state after", "rollbacks", "ended"]
    method = [m.group("label") for m in pulses if m.group("label").startswith("method: ")]
    assert any("rds-force-failover" in text and "injected" in text for text in method)
    assert any("recovered" in text for text in method)

    # orders acknowledged: never down, never above the ledger, as many as it had at that second
    ledger = [json.loads(x) for x in (run_dir / "orders.jsonl").read_text().splitlines() if x.strip()]
    counts = [int(m.group("orders")) for m in pulses]
    assert counts == sorted(counts) and counts[-1] <= len(ledger) and counts[-1] > 0
    day = parse_time(json.loads((run_dir / "journal.json").read_text())["start"]).strftime("%Y-%m-%d")
    for m, count in zip(pulses, counts):
        at = parse_time(f"{day}T{m.group(1)}:{m.group(2)}:{m.group(3)}Z").timestamp()
        assert sum(o["t"] <= at - 2 for o in ledger) <= count <= sum(o["t"] <= at + 2 for o in ledger)
