"""A fault run through AWS FIS shows its experiment in the report: template, state, targets,
actions, in the fault details and in the event list."""
import json

from gameday.report import summarize
from gameday.report.document import build

FIS = {"experiment_id": "EXP1", "template_id": "EXT1", "state": "completed", "reason": "Experiment completed.",
       "error": None, "targets": {"DBInstances": {"resource_type": "aws:rds:db", "selection_mode": "ALL",
                                                 "resource_tags": {"chaos:allowed": "true"}}},
       "actions": {"RebootDBInstances": {"action_id": "aws:rds:reboot-db-instances", "state": "completed",
                                         "reason": None, "started_at": None, "ended_at": None}}}


def _with_fis(run_dir):
    path = run_dir / "journal.json"
    journal = json.loads(path.read_text())
    output = journal["run"][0]["output"]
    FIS["actions"]["RebootDBInstances"].update(started_at=output["injected_at"],
                                               ended_at=output["data_plane_writable_at"])
    output["fis"] = FIS
    path.write_text(json.dumps(journal))


def test_report_lists_the_fis_experiment_of_a_fault(run_dir):
    _with_fis(run_dir)
    summary = summarize(str(run_dir))
    fault = summary["faults"][0]
    assert fault["fis"]["experiment_id"] == "EXP1" and fault["fis"]["template_id"] == "EXT1"
    assert fault["fis"]["targets"]["DBInstances"]["resource_tags"] == {"chaos:allowed": "true"}
    text = json.dumps(build(summary))
    assert "FIS experiment EXP1 (template EXT1): completed" in text
    assert "FIS target DBInstances: resource_type=aws:rds:db" in text
    assert "FIS action RebootDBInstances (aws:rds:reboot-db-instances): completed" in text
    kinds = [e["kind"] for e in summary["events"] if e["source"] == "fis"]
    assert kinds == ["fis-action-started", "fis-action-ended"]


def test_report_of_a_fault_without_fis_has_no_fis_lines(run_dir):
    summary = summarize(str(run_dir))
    assert all(f["fis"] is None for f in summary["faults"])
    assert "FIS experiment" not in json.dumps(build(summary))
