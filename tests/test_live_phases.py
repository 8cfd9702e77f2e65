"""gameday.live.phases: the run's phases derived from its files alone, as they are written."""
import json
import time

import pytest

from groundfloor.timefmt import iso
from gameday import run
from gameday.live.options import LiveOptions, apply
from gameday.live.phases import RunState, phases, read_state

T0 = 1_800_000_000.0


def flagship(pause: bool = True) -> dict:
    spec = run.load_and_validate(run.resolve("gameday"))
    return apply(spec, LiveOptions(web=("127.0.0.1", 8089), pause=pause, pause_timeout=30))


def progress(*events):
    return [{"event": e, "at": T0 + i, **fields} for i, (e, fields) in enumerate(events)]


def injected(fault, target, at):
    return {"record": "injected", "fault": fault, "target": target, "method": "M",
            "injected_at": iso(at)}


def lab_event(target, at, message, source_type="db-instance", categories=()):
    return {"time": at, "source_type": source_type, "source_id": target, "message": message,
            "event_id": None, "categories": list(categories)}


def by_key(result):
    return {p["key"]: p for p in result["phases"]}


def test_the_plan_lists_every_phase_pending_from_the_start():
    result = phases(RunState(experiment=flagship()), T0)
    assert [p["key"] for p in result["phases"]] == [
        "hypothesis-before", "fault-rds-force-failover", "pause-elasticache-test-failover",
        "fault-elasticache-test-failover", "hypothesis-after", "rollbacks"]
    assert {p["status"] for p in result["phases"]} == {"pending"}
    assert result["status"] == "running"


def test_without_pause_mode_no_pause_is_planned():
    keys = [p["key"] for p in phases(RunState(experiment=flagship(pause=False)), T0)["phases"]]
    assert "pause-elasticache-test-failover" not in keys and len(keys) == 5


def test_a_fault_goes_injected_then_control_plane_then_writable_from_the_lab_events():
    state = RunState(experiment=flagship(), progress=progress(
        ("hypothesis-started", {"stage": "before"}), ("hypothesis-ended", {"stage": "before", "met": True}),
        ("method-started", {}), ("activity-started", {"stage": "method", "name": "rds-force-failover"})),
        ledger=[injected("rds-force-failover", "shop-db", T0 + 10)])
    fault = by_key(phases(state, T0 + 12.5))["fault-rds-force-failover"]
    assert fault["status"] == "injected" and fault["title"] == "rds-force-failover on shop-db"
    assert fault["elapsed_seconds"] == 2.5 and fault["control_plane_elapsed_seconds"] == 2.5
    state.lab_events = [lab_event("shop-db", T0 + 5, "Multi-AZ instance failover completed"),  # an earlier one
                        lab_event("shop-cache", T0 + 11, "endpoint writable on x", "lab", ["writable"]),
                        lab_event("shop-db", T0 + 12, "Multi-AZ instance failover completed")]
    fault = by_key(phases(state, T0 + 13))["fault-rds-force-failover"]
    assert fault["status"] == "control plane done" and fault["control_plane_seconds"] == 2.0
    assert fault["writable_at"] is None and fault["elapsed_seconds"] == 3.0
    state.lab_events.append(lab_event("shop-db", T0 + 11.5, "endpoint writable on b", "lab", ["writable"]))
    fault = by_key(phases(state, T0 + 14))["fault-rds-force-failover"]
    assert fault["status"] == "writable" and fault["rto_seconds"] == 1.5
    assert fault["source"] == "lab events" and "elapsed_seconds" not in fault


def test_the_measured_result_replaces_the_lab_events_once_the_fault_ended():
    ended = {**injected("rds-force-failover", "shop-db", T0 + 10), "record": "ended",
             "control_plane_completed_at": iso(T0 + 13), "data_plane_writable_at": iso(T0 + 11.2)}
    state = RunState(experiment=flagship(), ledger=[injected("rds-force-failover", "shop-db", T0 + 10), ended],
                     lab_events=[lab_event("shop-db", T0 + 11.5, "endpoint writable", "lab", ["writable"])])
    fault = by_key(phases(state, T0 + 20))["fault-rds-force-failover"]
    assert fault["status"] == "recovered" and fault["source"] == "measured"
    assert fault["rto_seconds"] == 1.2 and fault["control_plane_seconds"] == 3.0


def test_a_pause_is_waiting_then_done_with_how_it_ended():
    waiting = {"state": "waiting", "before": "elasticache-test-failover", "started_at": iso(T0),
               "timeout_seconds": 30}
    state = RunState(experiment=flagship(), pause_now=waiting)
    assert by_key(phases(state, T0 + 1))["pause-elasticache-test-failover"]["status"] == "waiting"
    done = {**waiting, "ended_at": iso(T0 + 4), "how": "SIGUSR1"}
    state = RunState(experiment=flagship(), pauses=[done], pause_now={**done, "state": "ended"})
    pause = by_key(phases(state, T0 + 5))["pause-elasticache-test-failover"]
    assert pause["status"] == "done" and pause["how"] == "SIGUSR1"


def test_an_ended_run_marks_what_never_ran_as_skipped_and_what_ran_as_stopped():
    state = RunState(experiment=flagship(), ledger=[injected("rds-force-failover", "shop-db", T0)],
                     progress=progress(("hypothesis-started", {"stage": "before"}),
                                       ("hypothesis-ended", {"stage": "before", "met": True}),
                                       ("experiment-ended", {"status": "interrupted"})))
    result = phases(state, T0 + 30)
    status = {p["key"]: p["status"] for p in result["phases"]}
    assert status["hypothesis-before"] == "done" and status["fault-rds-force-failover"] == "stopped"
    assert status["fault-elasticache-test-failover"] == "skipped" and status["rollbacks"] == "skipped"
    assert result["status"] == "interrupted" and result["current"] is None


def test_a_hypothesis_not_met_is_failed():
    state = RunState(experiment=flagship(), progress=progress(
        ("hypothesis-started", {"stage": "before"}), ("hypothesis-ended", {"stage": "before", "met": False})))
    assert by_key(phases(state, T0 + 2))["hypothesis-before"]["status"] == "failed"


def test_read_state_tolerates_a_torn_last_line_and_missing_files(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps(flagship()))
    (tmp_path / "progress.jsonl").write_text(
        json.dumps({"event": "hypothesis-started", "stage": "before", "at": T0}) + "\n{\"event\": \"hyp")
    (tmp_path / "faults.jsonl").write_text(json.dumps(injected("rds-force-failover", "shop-db", T0 + 1)) + "\n")
    state = read_state(str(tmp_path))
    assert len(state.progress) == 1 and state.journal is None and state.pauses == []
    result = phases(state, T0 + 2)
    assert by_key(result)["hypothesis-before"]["status"] == "running"
    assert by_key(result)["fault-rds-force-failover"]["status"] == "injected"


def test_phases_of_an_empty_dir_are_empty_not_an_error(tmp_path):
    assert phases(read_state(str(tmp_path)), time.time())["phases"] == []
