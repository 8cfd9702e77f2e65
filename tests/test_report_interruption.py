"""An interrupted run's report: the real cause in the verdict, and every injected fault listed."""
import json
import os
import signal
import time

import pytest

from chaosext import faultlog
from gameday.report import summarize, write_report
from gameday.report.cause import interruption_cause


def interrupt_journal(run_dir, drop_last_fault=False):
    path = run_dir / "journal.json"
    journal = json.loads(path.read_text())
    journal["status"] = "interrupted"
    journal["steady_states"]["after"] = None
    if drop_last_fault:  # the action was still waiting for recovery: chaoslib kept no result
        fault = journal["run"].pop()
        path.write_text(json.dumps(journal))
        return fault["output"]
    path.write_text(json.dumps(journal))
    return None


def write_log(run_dir, *lines):
    (run_dir / "chaostoolkit.log").write_text("".join(f"{line}\n" for line in lines))


def test_a_signal_is_named_in_the_verdict_and_no_safeguard_is_blamed(run_dir):
    interrupt_journal(run_dir)
    (run_dir / "interruption.json").write_text(json.dumps({"signals": [
        {"signal": "SIGTERM", "at": "2026-11-26T06:00:30.000Z", "phase": "experiment"},
        {"signal": "SIGINT", "at": "2026-11-26T06:00:40.000Z", "phase": "experiment"}],
        "rollbacks_aborted": True}))
    write_log(run_dir, "[2026-11-26 06:00:30 CRITICAL] [run:520] SIGTERM signal received")
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "interrupted"
    assert summary["verdict_reasons"] == [
        "the run was interrupted: SIGTERM sent to gameday at 2026-11-26T06:00:30.000Z; "
        "a second signal (SIGINT) aborted the rollbacks"]
    assert summary["interruption"]["kind"] == "signal"
    assert summary["safeguards"]["tripped"] is False
    junit = open(write_report(str(run_dir))["junit.xml"]).read()
    assert 'name="no safeguard tripped" time="0" />' in junit


def test_a_guardrail_or_load_refusal_logged_as_critical_is_the_cause(run_dir):
    interrupt_journal(run_dir)
    write_log(run_dir,
              "\x1b[32m[2026-11-26 06:00:01 INFO] [run:440] Running experiment: gameday\x1b[0m",
              "\x1b[31m[2026-11-26 06:00:02 CRITICAL] [run:520] load: shop host 'shop.example.invalid' "
              "does not resolve (Name or service not known)\x1b[0m",
              "[2026-11-26 06:00:03 CRITICAL] [run:530] something later")
    summary = summarize(str(run_dir))
    assert summary["verdict_reasons"] == ["the run was interrupted: load: shop host "
                                          "'shop.example.invalid' does not resolve (Name or service not known)"]
    assert summary["safeguards"]["tripped"] is False


def test_a_tripped_safeguard_is_named(run_dir):
    interrupt_journal(run_dir)
    write_log(run_dir, "[2026-11-26 06:00:20 CRITICAL] [safeguards:252] Safeguard "
                       "'checkout-error-ratio-over-20s-below-half' triggered the end of the experiment",
              "[2026-11-26 06:00:20 WARNING] [run:560] Received the exit signal: 20")
    summary = summarize(str(run_dir))
    assert summary["verdict_reasons"] == [
        "the run was interrupted: safeguard checkout-error-ratio-over-20s-below-half tripped"]
    assert summary["safeguards"]["tripped"] is True
    assert summary["safeguards"]["tripped_by"] == "checkout-error-ratio-over-20s-below-half"


def test_a_fault_the_journal_lacks_is_listed_from_the_ledger_as_not_recovered(run_dir, monkeypatch):
    output = interrupt_journal(run_dir, drop_last_fault=True)
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(run_dir))
    faultlog.injected(output)
    with open(run_dir / faultlog.LEDGER, "a") as fh:
        fh.write('{"record": "ended", "fault": "torn li')  # a run killed mid-write
    summary = summarize(str(run_dir))
    faults = summary["faults"]
    assert [f["fault"] for f in faults] == ["rds-force-failover", "elasticache-primary-deletion"]
    missing = faults[1]
    assert missing["status"] == "interrupted" and missing["injected_at"] == output["injected_at"]
    assert missing["target"] == output["target"] and missing["rto_seconds"] is None
    assert "before its recovery was measured" in missing["error"]
    assert missing["load"]["requests"] > 0  # the window runs to the end of the measured load
    paths = write_report(str(run_dir))
    junit = open(paths["junit.xml"]).read()
    assert f"injected at {output['injected_at']}; the run stopped before its recovery" in junit
    assert "elasticache-primary-deletion" in open(paths["report.html"]).read()


def test_without_a_journal_the_ledger_and_the_experiment_still_make_a_report(run_dir, monkeypatch):
    journal = json.loads((run_dir / "journal.json").read_text())
    (run_dir / "journal.json").unlink()
    (run_dir / "experiment.json").write_text(json.dumps(journal["experiment"]))
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(run_dir))
    recovered = journal["run"][0]["output"]
    faultlog.injected(recovered)
    faultlog.ended(recovered)
    faultlog.injected(journal["run"][1]["output"])
    summary = summarize(str(run_dir))
    assert summary["experiment"]["title"] == journal["experiment"]["title"]
    assert summary["verdict"] == "interrupted"
    assert [(f["fault"], f["status"], f["rto_seconds"]) for f in summary["faults"]] == [
        ("rds-force-failover", "succeeded", recovered["rto_seconds"]),
        ("elasticache-primary-deletion", "interrupted", None)]


def test_the_ledger_is_silent_without_a_run_dir_and_the_cause_unknown_without_files(tmp_path, monkeypatch):
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    faultlog.injected({"fault": "rds-force-failover", "target": "shop-db"})
    assert faultlog.read(str(tmp_path)) == []
    assert interruption_cause(str(tmp_path)) is None


def test_a_signal_during_injection_takes_effect_only_once_the_fault_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with faultlog.signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the fault API call is in flight
            time.sleep(0.2)
            faultlog.injected({"fault": "rds-force-failover", "target": "shop-db",
                               "injected_at": "2026-11-26T06:00:00.000Z"})
        time.sleep(1)  # not reached: the held Ctrl-C is raised as the block ends
    assert [r["fault"] for r in faultlog.read(str(tmp_path))] == ["rds-force-failover"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler in force before the block
