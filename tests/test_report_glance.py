"""The report's first screen answers at a glance, and reports carry no machine paths."""
import json
import shutil
from pathlib import Path

import pytest

from gameday.report import summarize, write_report
from gameday.report.charts import PALETTE
from gameday.report.document import build
from test_report_render import chromium, screenshot

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


def test_each_fault_is_charged_with_the_shopper_errors_until_the_next_fault(run_dir):
    summary = summarize(str(run_dir))
    db, cache = (f["impact"] for f in summary["faults"])
    lines = [json.loads(x) for x in (run_dir / "timeline.jsonl").read_text().splitlines()]
    cache_at = 1795672800 + 120 * 0.65 + 0.5  # synthetic_run_dir's second injection
    db_failed = sum(x["failures"] for x in lines if x["t"] < int(cache_at))
    assert db["failed_requests"] == db_failed and db["failed_requests"] > 0
    assert db["failed_checkouts"] == sum(
        x["failures"] for x in lines if x["t"] < int(cache_at) and x["step"] == "checkout")
    assert db["error_seconds"] == len({x["t"] for x in lines
                                       if x["failures"] and x["t"] < int(cache_at)})
    assert db["shoppers_affected"] is None  # the timeline has no shopper ids: an upper bound
    assert db["shoppers_affected_at_most"] == min(20, db["failed_requests"])
    assert cache["affected_steps"] and "view_cart" in cache["affected_steps"]


def test_first_blocks_are_the_verdict_the_fault_answers_and_the_fault_charts(run_dir):
    blocks = build(summarize(str(run_dir)))
    kinds = [b[0] for b in blocks]
    first_h2 = kinds.index("h2")
    assert kinds[:first_h2] == ["h1", "verdict", "p", "table", "p", "charts"]
    table = blocks[3]
    assert table[1][:5] == ["fault", "RTO against target", "shoppers affected", "for how long",
                            "failed checkouts"]
    db_row = table[2][0]
    assert db_row[0] == "rds-force-failover on shop-db"
    assert db_row[1] == "2.35 s ≤ 3 s target: met"
    assert db_row[2].startswith("at most ") and db_row[2].endswith(" of 20")
    assert blocks[4][1].startswith("Orders lost: 0 of 94 acknowledged. Carts lost:")
    assert blocks[5] == ("charts", "fault")


def test_no_absolute_machine_paths_in_any_report_file(run_dir):
    journal = json.loads((run_dir / "journal.json").read_text())
    probe = journal["steady_states"]["after"]["probes"][-1]
    probe["output"]["ledger"] = str(run_dir / "orders.jsonl")
    journal["run"][1]["output"]["method_reason"] += \
        " (see /home/runner/work/shop/shop/reports/run-1/locust.log)"
    (run_dir / "journal.json").write_text(json.dumps(journal))
    paths = write_report(str(run_dir))
    for name in ("report.html", "report.md", "junit.xml", "summary.json"):
        text = Path(paths[name]).read_text()
        assert str(run_dir) not in text and "/home/runner" not in text, name
        assert "orders.jsonl" in text or name == "junit.xml"




def near(rgb, target, tolerance=40):
    return sum(abs(a - b) for a, b in zip(rgb, target)) < tolerance


def hex_rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.skipif(not chromium(), reason="Debian package chromium is not installed")
def test_first_screen_in_chromium_shows_verdict_baseline_and_one_chart_per_fault(tmp_path):
    base, run = tmp_path / "reports" / "base", tmp_path / "reports" / "now"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, run)
    write_report(str(base))
    paths = write_report(str(run), baseline=str(base))
    image = screenshot(paths["report.html"], tmp_path, 1280, 900, "--hide-scrollbars")
    assert image.size == (1280, 900)
    top = {rgb for _, rgb in image.crop((0, 0, 1280, 200)).getcolors(1_000_000)}
    assert any(near(rgb, hex_rgb("#1a7f37")) for rgb in top)  # the green verdict badge
    # both fault charts are on the first screen: count bands of rows holding the injection
    # marker's red (palette-quantised, so "strongly red" rather than exactly #d62728)
    def red(rgb):
        return rgb[0] > 180 and rgb[1] < 110 and rgb[2] < 110
    red_rows = [y for y in range(image.size[1])
                if any(red(image.getpixel((x, y))) for x in range(40, 1240, 2))]
    bands = sum(1 for a, b in zip([-2] + red_rows, red_rows) if b - a > 1)
    assert bands >= 2, red_rows[:5]
    colours = {rgb for _, rgb in image.getcolors(1_000_000)}
    # a hurt journey step drawn in its colour (the quiet ones are grey)
    assert any(near(rgb, hex_rgb(c)) for c in PALETTE[:5] for rgb in colours)
