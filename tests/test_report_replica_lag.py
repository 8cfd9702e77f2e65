"""Replica lag in the report: the max per reader in summary.json, a table and a chart in the
HTML and Markdown, built from a run directory's replica-lag.jsonl (gameday/report/replica_lag.py)."""
import json

from gameday.report import summarize, write_report
from gameday.report.document import build
from groundfloor import run_files
from groundfloor.timefmt import iso

T0 = 1795672800  # the recorded run's first second (tests/fixtures/report/gameday-run)
LAGGING, STEADY = "shop-db-cluster-instance-2", "shop-db-cluster-instance-3"


def lag_of(second: int) -> float:
    """The lagging reader's lag: 0, a ramp to 7 s between seconds 40 and 47, back to 0 at 60."""
    return float(min(7, second - 40)) if 40 <= second < 60 else 0.0


def write_samples(run_dir, seconds=range(0, 100)) -> None:
    lines = []
    for s in seconds:
        lines.append({"at": iso(T0 + s), "t": T0 + s, "writer": "shop-db-cluster-instance-1",
                      "member": LAGGING, "az": "us-east-1b", "lag_seconds": lag_of(s),
                      "transactions_behind": int(lag_of(s) * 4), "delay_seconds": 7, "why": None})
        down = 36 <= s <= 38  # the steady reader does not answer while it restarts
        lines.append({"at": iso(T0 + s), "t": T0 + s, "writer": "shop-db-cluster-instance-1",
                      "member": STEADY, "az": "us-east-1c", "lag_seconds": None if down else 0.0,
                      "transactions_behind": None if down else 0,
                      "why": "does not answer: OperationalError" if down else None})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (run_dir / run_files.REPLICA_LAG).write_text(text + '{"member": "torn')


def test_summary_gives_each_readers_max_lag_when_and_the_samples_without_a_figure(run_dir):
    write_samples(run_dir)
    lag = summarize(str(run_dir))["replica_lag"]
    assert lag["max_lag_seconds"] == 7.0 and "Seconds_Behind_Master" in lag["source"]
    lagging, steady = lag["readers"][LAGGING], lag["readers"][STEADY]
    assert lagging["max_lag_seconds"] == 7.0 and lagging["max_lag_at"] == iso(T0 + 47)
    assert lagging["max_transactions_behind"] == 28 and lagging["samples"] == 100
    assert lagging["unmeasured_samples"] == 0 and lagging["az"] == "us-east-1b"
    assert steady["max_lag_seconds"] == 0.0 and steady["unmeasured_samples"] == 3
    assert steady["unmeasured_why"] == "does not answer: OperationalError"
    assert (lag["first_at"], lag["last_at"]) == (iso(T0), iso(T0 + 99))


def test_report_shows_the_lag_table_and_chart_and_summary_json_carries_it(run_dir):
    write_samples(run_dir)
    written = write_report(str(run_dir))
    assert (run_dir / "charts" / "replica-lag.png").stat().st_size > 1000
    md = (run_dir / run_files.REPORT_MD).read_text()
    section = md.split("## Replica lag", 1)[1].split("\n## ", 1)[0]
    assert f"| {LAGGING} | us-east-1b | 7 | 06:00:47.000Z | 28 | 100 |" in section
    assert f"| {STEADY} | us-east-1c | 0 |" in section and "3 without a figure" in section
    assert "charts/replica-lag.png" in section
    timeline = md.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert "replica-lag.png" not in timeline  # shown once, in its own section
    html = (run_dir / run_files.REPORT_HTML).read_text()
    assert html.count("Replica lag per reader") == 1 and "Replica lag</h2>" in html
    on_disk = json.loads((run_dir / run_files.SUMMARY).read_text())
    assert on_disk["replica_lag"] == written["summary"]["replica_lag"]
    assert on_disk["replica_lag"]["readers"][LAGGING]["max_lag_seconds"] == 7.0


def test_a_run_without_samples_has_no_lag_section_and_null_in_the_summary(run_dir):
    summary = summarize(str(run_dir))
    assert summary["replica_lag"] is None
    assert not [b for b in build(summary) if b[:2] == ("h2", "Replica lag")]
    written = write_report(str(run_dir))
    assert not any(path.endswith("replica-lag.png") for path in written["charts"])
