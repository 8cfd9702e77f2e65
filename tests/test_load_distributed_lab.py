"""Distributed load against the lab's shop: a Locust master plus two worker processes. The merged
ledger holds real orders from both workers and the RPO check counts all of them; a worker killed
mid-run shows in the load summary, the report and the verdict; no worker outlives the run."""
import json
import os
import signal

import pytest
from chaoslib.experiment import run_experiment
from chaoslib.extension import get_extension

from chaosext.load import control
from groundfloor.supervisor import poll_until
from chaosext.load.timeline import read_lines, read_orders
from gameday.report import write_report
from load_helpers import db_order_keys, locust_processes
from test_load_lab import action, experiment

pytestmark = pytest.mark.lab


@pytest.fixture
def lab_shop(lab, monkeypatch):
    import test_load_lab
    test_load_lab.LAB = lab
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    control.configure_control()
    yield lab
    control.cleanup_control()
    test_load_lab.LAB = None


def kill_worker(name: str = "w2"):
    """SIGKILL one local worker of the running load (a crashed load generator)."""
    os.kill(control.current_load().workers[name].pid, signal.SIGKILL)


def distributed(lab, run_dir, method, **arguments):
    exp = experiment(lab, run_dir, method, users=8)
    exp["controls"][0]["provider"]["arguments"].update(workers=2, **arguments)
    return exp


def test_two_workers_ledger_has_orders_from_both_and_the_rpo_check_counts_them(lab_shop, tmp_path):
    journal = run_experiment(distributed(lab_shop, tmp_path, [action("pause", seconds=5)]))
    assert journal["status"] == "completed"
    ledger = read_orders(str(tmp_path / "orders.jsonl"))
    by_worker = {w: [o for o in ledger if o["worker"] == w] for w in ("w1", "w2")}
    assert all(by_worker.values()) and len(ledger) == sum(map(len, by_worker.values()))
    keys = {o["order_id"]: o["order_key"] for o in ledger}
    assert db_order_keys(lab_shop, keys) == keys  # every acknowledged order is a real row
    rpo = journal["rollbacks"][0]["output"]
    assert rpo["missing_count"] == 0
    assert set(rpo["by_worker"]) == {"w1", "w2"}
    assert all(f["checked"] > 0 for f in rpo["by_worker"].values())
    assert sum(f["checked"] for f in rpo["by_worker"].values()) == rpo["checked"]
    assert {ln["worker"] for ln in read_lines(str(tmp_path / "timeline.jsonl"))} == {"w1", "w2"}
    load = get_extension(journal, "gameday-load")
    assert [w["name"] for w in load["workers"]] == ["w1", "w2"] and load["problems"] == []
    assert sum(w["requests"] for w in load["workers"]) == load["requests"]
    assert not locust_processes(tmp_path)


def test_a_worker_killed_mid_run_shows_in_the_summary_report_and_verdict(lab_shop, tmp_path):
    journal = run_experiment(distributed(lab_shop, tmp_path, [
        action("pause", seconds=3), {"type": "action", "name": "kill-w2", "provider": {
            "type": "python", "module": "test_load_distributed_lab", "func": "kill_worker"}},
        action("pause", seconds=6)]))
    load = get_extension(journal, "gameday-load")
    lost = {w["name"]: w for w in load["workers"]}["w2"]
    assert lost["exited_before_stop"] and lost["exit_code"] == -signal.SIGKILL
    assert lost["lost_at"] is not None  # the master saw it go missing, too
    assert any(p.startswith("load generation: worker w2") for p in load["problems"])
    (tmp_path / "journal.json").write_text(json.dumps(journal, default=str))
    write_report(str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] == "failed"
    assert any(r.startswith("load generation: worker w2") for r in summary["verdict_reasons"])
    report = (tmp_path / "report.md").read_text()
    assert "| w2 |" in report and "LOST" in report
    assert not locust_processes(tmp_path)


def stop_both():
    """SIGTERM both workers; return once the load control has seen both exit."""
    load = control.current_load()
    for worker in load.workers.values():
        os.kill(worker.pid, signal.SIGTERM)
    assert poll_until(lambda: set(load.workers) <= set(load.exited_at), 10)


def test_a_sigterm_of_every_worker_leaves_no_process_and_names_each(lab_shop, tmp_path):
    journal = run_experiment(distributed(lab_shop, tmp_path, [
        action("pause", seconds=2), {"type": "action", "name": "stop-both", "provider": {
            "type": "python", "module": "test_load_distributed_lab", "func": "stop_both"}}]))
    problems = get_extension(journal, "gameday-load")["problems"]
    assert sorted(p.split()[3] for p in problems if p.startswith("load generation: worker")) \
        == ["w1", "w2"]
    assert not locust_processes(tmp_path)
