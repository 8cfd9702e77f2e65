"""The facilitator's notes: `gameday note`, RUN_DIR/notes.md, and their place in the report."""
import json
import shutil
from pathlib import Path

import pytest

from chaosext.errors import GamedayError
from groundfloor.timefmt import iso, parse_time
from gameday.notes import add_note, read_notes, resolve_run_dir
from gameday.report import write_report
from gameday.report.notes import relation

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


@pytest.fixture
def fixture_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    target = tmp_path / "run1"
    shutil.copytree(FIXTURE, target)
    return target


def test_a_note_is_one_timestamped_line_appended_to_the_run(fixture_run):
    now = parse_time("2026-11-26T06:00:05.400Z").timestamp()
    out = add_note(str(fixture_run), "  pager\nfired  ", now=now)
    add_note("run1", "second", now=now + 1)  # a run id under the reports directory
    assert out == f"{fixture_run / 'notes.md'}: - 2026-11-26T06:00:05.400Z pager fired"
    assert (fixture_run / "notes.md").read_text() == ("- 2026-11-26T06:00:05.400Z pager fired\n"
                                                      "- 2026-11-26T06:00:06.400Z second\n")


def test_notes_refuse_what_is_not_a_run_dir_an_empty_text_and_a_bad_time(fixture_run, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(GamedayError, match="is not a run directory"):
        add_note(str(tmp_path / "elsewhere"), "x")
    with pytest.raises(GamedayError, match="the note is empty"):
        add_note(str(fixture_run), "   ")
    with pytest.raises(GamedayError, match="not a UTC time of day"):
        add_note(str(fixture_run), "x", at="6pm")
    assert not (fixture_run / "notes.md").exists() and not (tmp_path / "elsewhere" / "notes.md").exists()


def test_latest_is_the_newest_run(fixture_run, tmp_path):
    newer = tmp_path / "run2"
    newer.mkdir()
    (newer / "experiment.json").write_text("{}")
    assert resolve_run_dir("latest") == newer


def test_hand_written_notes_keep_times_of_day_untimed_lines_and_continuations(fixture_run):
    (fixture_run / "notes.md").write_text(
        "# Notes\n\n- 06:00:04Z support chat: checkout slow\n  second line of it\n"
        "remember to check the alarms\n* 2026-11-26T06:00:09Z back to normal\n")
    assert read_notes(str(fixture_run), day="2026-11-26") == [
        {"at": "2026-11-26T06:00:04.000Z", "text": "support chat: checkout slow second line of it"},
        {"at": None, "text": "remember to check the alarms"},
        {"at": "2026-11-26T06:00:09.000Z", "text": "back to normal"}]


def test_a_moment_is_placed_before_during_or_after_the_faults():
    faults = [{"fault": "db", "injected_at": iso(100), "data_plane_writable_at": iso(102.5)},
              {"fault": "cache", "injected_at": iso(110), "data_plane_writable_at": None,
               "control_plane_completed_at": iso(111)}]
    assert relation(99, faults) == "before the first fault"
    assert relation(101.2, faults) == "during db (+1.2 s after injection)"
    assert relation(105, faults) == "after db (2.5 s after it recovered)"
    assert relation(110.5, faults) == "during cache (+0.5 s after injection)"
    assert relation(None, faults) == "no time given"
    assert relation(5, []) == "no fault was injected"


def test_the_report_lists_the_notes_relative_to_the_faults_and_on_the_timeline(fixture_run):
    summary = json.loads((FIXTURE / "journal.json").read_text())
    start = parse_time(summary["start"]).timestamp()
    write_report(str(fixture_run))
    first = json.loads((fixture_run / "summary.json").read_text())["faults"][0]
    injected = parse_time(first["injected_at"]).timestamp()
    add_note(str(fixture_run), "before anything", now=start + 0.5)
    add_note(str(fixture_run), "checkout spinner", now=injected + 0.3)
    add_note(str(fixture_run), "briefing done", now=start - 60)
    paths = write_report(str(fixture_run))
    report = json.loads(Path(paths["summary.json"]).read_text())
    notes = report["notes"]
    assert [n["text"] for n in notes] == ["before anything", "checkout spinner", "briefing done"]
    assert notes[2]["relative_to_faults"] == "before the run started"
    assert notes[2]["since_start_seconds"] == -60.0
    assert notes[0]["relative_to_faults"] == "before the first fault"
    assert notes[0]["since_start_seconds"] == 0.5
    assert notes[1]["relative_to_faults"] == f"during {first['fault']} (+0.3 s after injection)"
    timeline = [e for e in report["events"] if e["source"] == "note"]
    assert [e["message"] for e in timeline] == ["briefing done", "before anything", "checkout spinner"]
    markdown = Path(paths["report.md"]).read_text()
    html = Path(paths["report.html"]).read_text()
    assert "## Facilitator's notes" in markdown and "checkout spinner" in markdown
    assert "Facilitator&#x27;s notes" in html or "Facilitator's notes" in html
