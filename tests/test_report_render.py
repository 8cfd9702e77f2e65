"""write_report: HTML (self-contained, opens in Chromium), Markdown, JUnit, summary.json."""
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gameday.report import report_command, write_report
from bench_report import bench



def deviate(run_dir):
    path = run_dir / "journal.json"
    journal = json.loads(path.read_text())
    journal["deviated"] = True
    journal["steady_states"]["after"]["steady_state_met"] = False
    journal["steady_states"]["after"]["probes"][1].update(tolerance_met=False, output=0.4)
    path.write_text(json.dumps(journal))


def junit_cases(run_dir):
    root = ET.parse(run_dir / "junit.xml").getroot()
    suite = root.find("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    return suite, cases


def test_write_report_writes_every_file_and_the_charts(run_dir):
    paths = write_report(str(run_dir))
    for name in ("report.html", "report.md", "junit.xml", "summary.json"):
        assert os.path.getsize(paths[name]) > 0
    assert [os.path.basename(p) for p in paths["charts"]] == [
        "requests.png", "error-ratio.png", "p95.png", "fault-1.png", "fault-2.png"]
    for chart in paths["charts"]:
        assert Path(chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(chart) < 100_000
    assert json.loads(Path(paths["summary.json"]).read_text())["verdict"] == "passed"


def test_html_is_self_contained_and_markdown_links_existing_charts(run_dir):
    paths = write_report(str(run_dir))
    page = Path(paths["report.html"]).read_text()
    assert page.count('src="data:image/png;base64,') == 5
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: opens offline
    assert "Verdict: PASSED" in page and "rds-force-failover" in page
    markdown = Path(paths["report.md"]).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    # the fault close-ups are on the first screen, the whole-run charts under "Timeline"
    assert links == ["charts/fault-1.png", "charts/fault-2.png", "charts/requests.png",
                     "charts/error-ratio.png", "charts/p95.png"]
    assert all((run_dir / link).is_file() for link in links)
    # the same figures in both formats
    for figure in ("RebootDBInstance(ForceFailover=True)", "DeleteCacheCluster → TestFailover",
                   "2.35", "-1.75", "acknowledged orders lost"):
        assert figure in page and figure in markdown


def test_junit_has_a_case_per_probe_and_fault_verdict_and_passes_a_passed_run(run_dir):
    write_report(str(run_dir))
    suite, cases = junit_cases(run_dir)
    assert suite.get("failures") == "0"
    assert len([k for k in cases if k[0] == "hypothesis.before"]) == 3
    assert len([k for k in cases if k[0] == "hypothesis.after"]) == 4
    assert ("fault.rds-force-failover.shop-db", "recovered") in cases
    assert ("fault.rds-force-failover.shop-db", "rto <= 3 s") in cases
    assert ("fault.elasticache-primary-deletion.shop-cache", "rto <= 3 s") in cases
    assert ("rpo", "acknowledged orders lost == 0") in cases
    assert cases[("run", "verdict")].find("failure") is None
    assert int(suite.get("tests")) == len(cases)


def test_junit_fails_when_the_run_deviated(run_dir):
    deviate(run_dir)
    write_report(str(run_dir))
    suite, cases = junit_cases(run_dir)
    assert suite.get("failures") == "2"
    probe = cases[("hypothesis.after", "checkout-error-ratio")].find("failure")
    assert "got 0.4" in probe.get("message")
    assert "deviated" in cases[("run", "verdict")].find("failure").get("message")


def test_report_command_prints_the_verdict_and_gates_on_request(run_dir, capsys):
    assert report_command(str(run_dir)) == 0
    out = capsys.readouterr().out
    assert out.startswith("verdict: passed")
    assert "rds-force-failover on shop-db: RTO 2.35 s" in out
    deviate(run_dir)
    assert report_command(str(run_dir), gate=True) == 1
    assert report_command(str(run_dir)) == 0


def test_report_of_a_ten_minute_200_user_run_is_small(tmp_path):
    """Its speed (<= 5 s) is a target of `scripts/bench.py --only report`, not of this test."""
    figures = bench(seconds=600, users=200, run_dir=str(tmp_path / "bench"))
    assert figures["timeline_lines"] == 3000 and figures["orders"] > 1000
    assert figures["write_report_seconds"] > 0
    assert figures["html_bytes"] < 2_000_000


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html_path, tmp_path, width, height, *flags):
    """The page as headless Chromium draws it at width x height, as an RGB image."""
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", *flags,
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         f"--window-size={width},{height}", "file://" + os.path.abspath(html_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PIL import Image
    return Image.open(shot).convert("RGB")


@pytest.mark.skipif(not chromium(), reason="Debian package chromium is not installed")
def test_html_renders_in_headless_chromium_with_its_charts(run_dir, tmp_path):
    paths = write_report(str(run_dir))
    image = screenshot(paths["report.html"], tmp_path, 1280, 4000)
    assert image.size == (1280, 4000)
    colours = image.getcolors(maxcolors=1_000_000)
    assert len(colours) > 50  # text, tables and charts, not a blank page
    # chart pixels: the first step's blue line and the fault-injection red marker
    present = {rgb for _, rgb in colours}
    assert (0x1f, 0x77, 0xb4) in present or any(
        abs(r - 0x1f) + abs(g - 0x77) + abs(b - 0xb4) < 30 for r, g, b in present)
    assert any(abs(r - 0xd6) + abs(g - 0x27) + abs(b - 0x28) < 30 for r, g, b in present)
