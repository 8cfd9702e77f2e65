"""A fault action that failed: its row shows the target the run resolved, the error and what was
(not) changed, once per fault; no `${...}` template reaches any output; a guardrail's refusal
during the run exits 3 (docs/exit-codes.md)."""
import json
from pathlib import Path

from gameday import run

REFUSAL = ("RebootDBInstance on DB instance stage-db refused: it carries production marks ('prod' in "
           "its id); nothing was changed")


def fail_first_fault(run_dir: Path, exception: str) -> None:
    """The recorded run, with its DB failover failed and the run's configuration in target.json."""
    journal = json.loads((run_dir / "journal.json").read_text())
    entry = journal["run"][0]
    assert entry["activity"]["provider"]["arguments"] == {"db_instance_identifier": "${db_instance_identifier}"}
    entry.update(status="failed", output=None, exception=[
        "Traceback (most recent call last):\n", "  File \"x.py\", line 1, in <module>\n", exception + "\n"])
    journal.update(status="failed", deviated=False)
    (run_dir / "journal.json").write_text(json.dumps(journal))
    (run_dir / "target.json").write_text(json.dumps({
        "kind": "aws", "region": "eu-west-1", "ids": {"db_instance": "stage-db"},
        "configuration": {"db_instance_identifier": "stage-db"}}))


def outputs(run_dir: Path, printed: str) -> str:
    names = ("report.md", "report.html", "summary.json", "junit.xml")
    return printed + "".join((run_dir / n).read_text() for n in names)


def test_a_refused_fault_shows_its_resolved_target_and_exits_3(run_dir, capsys):
    fail_first_fault(run_dir, f"chaosext.errors.GuardrailRefused: {REFUSAL}")
    code = run.finish(run_dir)
    printed = capsys.readouterr().out
    assert code == 3 and f"REFUSED by a guardrail during the run: {REFUSAL}" in printed
    assert "${" not in outputs(run_dir, printed)
    summary = json.loads((run_dir / "summary.json").read_text())
    [failed] = [f for f in summary["faults"] if f["status"] == "failed"]
    assert failed["target"] == "stage-db" and failed["error"] == REFUSAL
    assert failed["changed"] == "not injected: nothing was changed"
    assert f"force_failover on stage-db: {REFUSAL} (not injected: nothing was changed)" in printed


def test_a_fault_that_failed_after_its_injection_is_one_row(run_dir, capsys):
    fail_first_fault(run_dir, "chaosext.errors.ActivityError: DescribeEvents on stage-db failed: the "
                     "endpoint https://rds.eu-west-1.amazonaws.com did not answer in time")
    journal = json.loads((run_dir / "journal.json").read_text())
    injected = journal["run"][0]["start"][:19] + ".500Z"
    (run_dir / "faults.jsonl").write_text(json.dumps({
        "record": "injected", "fault": "rds-force-failover", "target": "stage-db",
        "method": "RebootDBInstance(ForceFailover=True)", "injected_at": injected}) + "\n")
    code = run.finish(run_dir)
    printed = capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [f for f in summary["faults"] if f["target"] == "stage-db"]
    assert code == 1 and len(rows) == 1 and "${" not in outputs(run_dir, printed)
    assert rows[0]["fault"] == "rds-force-failover" and rows[0]["status"] == "failed"
    assert rows[0]["injected_at"] == injected and "may have failed over" in rows[0]["changed"]


def test_a_template_the_run_did_not_record_is_named_not_printed():
    from gameday.report.journal import render
    assert render("${nowhere}", {"experiment": {"configuration": {}}}) == "<nowhere unknown>"
    assert render("db-${x}", None, {"x": "7"}) == "db-7"
