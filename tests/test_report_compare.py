"""compare(A, B): the figures of two runs side by side, with B − A."""
import json
import shutil
from pathlib import Path

import pytest

from gameday.report import ReportError, compare, report_command, write_report

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "retry", tmp_path / "no-retry"
    shutil.copytree(FIXTURE, a)
    shutil.copytree(FIXTURE, b)
    path = b / "journal.json"
    journal = json.loads(path.read_text())
    journal["run"][1]["output"]["rto_seconds"] = 9.5  # the no-retry cache failover is slower
    journal["deviated"] = True
    path.write_text(json.dumps(journal))
    return a, b


def row(table, label):
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in\n{table}")


def test_compare_puts_figures_side_by_side_with_differences(two_runs):
    a, b = two_runs
    table = compare(str(a), str(b))
    assert table.splitlines()[0] == "| figure | retry | no-retry | B − A |"
    assert row(table, "verdict") == ["passed", "deviated", ""]
    assert row(table, "fault 2 (elasticache-primary-deletion): RTO s") == ["2.6", "9.5", "+6.9"]
    assert row(table, "fault 1 (rds-force-failover): RTO s") == ["2.35", "2.35", "+0"]
    assert row(table, "acknowledged orders lost") == ["0", "0", "+0"]
    ratio = row(table, "load fault: error ratio")
    assert ratio[0].endswith("%") and ratio[2].endswith("pp")


def test_compare_reads_written_summaries_too(two_runs):
    a, b = two_runs
    write_report(str(a))
    table = compare(str(a / "summary.json"), str(b))
    assert row(table, "verdict") == ["passed", "deviated", ""]


def test_report_command_compare_prints_the_table(two_runs, capsys):
    a, b = two_runs
    assert report_command(str(a), compare_with=str(b)) == 0
    assert "| verdict | passed | deviated |" in capsys.readouterr().out


def test_compare_with_a_missing_run_is_one_clear_error(two_runs, tmp_path):
    with pytest.raises(ReportError, match="no such run directory"):
        compare(str(two_runs[0]), str(tmp_path / "missing"))


def test_compare_takes_any_number_of_runs_with_a_difference_per_run(two_runs, tmp_path):
    a, b = two_runs
    c = tmp_path / "third"
    shutil.copytree(FIXTURE, c)
    table = compare(str(a), str(b), str(c))
    assert table.splitlines()[0] == "| figure | retry | no-retry | third | B − A | C − A |"
    assert row(table, "fault 2 (elasticache-primary-deletion): RTO s") == ["2.6", "9.5", "2.6", "+6.9", "+0"]


def test_compare_of_one_run_is_refused(two_runs):
    with pytest.raises(ReportError, match="at least two runs"):
        compare(str(two_runs[0]))
