"""`gameday matrix`: bad input is refused before anything runs; the comparison has one row per
combination and one chart per figure (report built from recorded run directories)."""
import json
import shutil
from pathlib import Path

import pytest

from chaosext.errors import GamedayError
from gameday import cli
from gameday.matrix import combinations, parse_axes, slug
from gameday.report.matrix import FIGURES, error_kind, write_matrix_report

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


def test_axes_and_combinations_in_order():
    axes = parse_axes(["profile=stock,hardened", "retry=true,false"])
    combos = combinations(axes)
    assert combos == [{"profile": "stock", "retry": "true"}, {"profile": "stock", "retry": "false"},
                      {"profile": "hardened", "retry": "true"}, {"profile": "hardened", "retry": "false"}]
    assert slug(combos[0]) == "profile-stock_retry-true"


@pytest.mark.parametrize("pairs,message", [
    (["colour=red,blue"], "unknown shop setting"),
    (["db_password=x"], "unknown shop setting"),  # where the shop is is the lab's, not a knob
    (["retry="], "has no values"),
    (["retry"], "is not KEY=V1,V2"),
    (["retry=true,maybe"], "value 'maybe' refused"),
    (["profile=stock,tuned"], "value 'tuned' refused"),
    (["retry=true", "retry=false"], "given twice"),
    ([], "at least one --setting"),
])
def test_bad_settings_are_one_clear_error(pairs, message):
    with pytest.raises(GamedayError, match=message):
        parse_axes(pairs)


def test_a_matrix_over_the_limit_is_refused():
    axes = parse_axes(["max_retries=0,1,2,3,4", "retry=true,false"])
    with pytest.raises(GamedayError, match="10 runs, more than --max-runs 8"):
        combinations(axes, max_runs=8)
    assert len(combinations(axes, max_runs=10)) == 10


def test_cli_refuses_bad_input_in_one_line_and_runs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    code = cli.main(["matrix", "rds-force-failover", "--setting", "profile=stock,hardened",
                     "--setting", "max_retries=0,1,2,3,4,5,6,7,8", "--state-dir", str(tmp_path / "lab")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "18 runs" in err
    assert list(tmp_path.iterdir()) == []  # no lab state, no run directory


def test_error_kinds_follow_what_clients_saw():
    assert error_kind("500") == "500 page" and error_kind("500 internal_server_error") == "500 page"
    assert error_kind("503 woocommerce_rest_database_unavailable") == "503"
    assert error_kind("ReadTimeout") == "timeout" and error_kind("504") == "timeout"
    assert error_kind("ConnectionRefusedError") == "other"


def test_matrix_report_has_one_row_per_combination_and_a_chart_per_figure(tmp_path):
    runs = []
    for name, settings in (("a", {"retry": "true"}), ("b", {"retry": "false"})):
        shutil.copytree(FIXTURE, tmp_path / name)
        runs.append({"label": f"retry={settings['retry']}", "settings": settings, "exit_code": 0,
                     "run_dir": str(tmp_path / name), "shop_saw": {"readonly": 3}})
    paths = write_matrix_report(str(tmp_path / "m"), runs, experiment="fixture")
    md = Path(paths["matrix.md"]).read_text()
    rows = [line for line in md.splitlines() if line.startswith("| retry=")]
    assert [r.split("|")[1].strip() for r in rows] == ["retry=true", "retry=false"]
    header = next(line for line in md.splitlines() if line.startswith("| settings"))
    assert "RTO rds-force-failover (s)" in header and "READONLY (shop saw)" in header
    charts = sorted(p.name for p in (tmp_path / "m" / "charts").iterdir())
    assert len(charts) == len(FIGURES) + 2  # + the RTO of each of the two faults
    html = Path(paths["matrix.html"]).read_text()
    assert html.count("<img") == len(charts) and "retry=false" in html
    data = json.loads(Path(paths["matrix.json"]).read_text())
    assert [r["readonly"] for r in data["rows"]] == [3, 3]


def test_a_run_that_left_no_directory_is_a_row_without_figures(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "a")
    runs = [{"label": "retry=true", "settings": {"retry": "true"}, "exit_code": 0,
             "run_dir": str(tmp_path / "a")},
            {"label": "retry=false", "settings": {"retry": "false"}, "exit_code": 1,
             "run_dir": str(tmp_path / "missing")}]
    paths = write_matrix_report(str(tmp_path / "m"), runs, experiment="fixture")
    row = next(line for line in Path(paths["matrix.md"]).read_text().splitlines()
               if line.startswith("| retry=false"))
    assert "no report" in row and "—" in row
