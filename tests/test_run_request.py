"""One typed run request: the CLI builds and validates it once, `game_day`, `matrix` and the lab
take it as it is, nothing passes through `os.environ`, and the verdict uses the report's summary
from memory."""
import json
import os
from pathlib import Path

import pytest

from chaosext.errors import GamedayError
from gameday import cli, request, verdict


def parsed(*argv):
    return cli.build_parser().parse_args(["run", *argv])


def test_the_cli_builds_one_request_with_every_setting_and_leaves_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path / "reports"))
    before = dict(os.environ)
    args = parsed("rds-force-failover", "--timing", "aws", "--tls", "--users", "3", "--spawn-rate", "1.5",
                  "--shop-setting", "retry=false", "--keep-lab", "--run-id", "r1", "--state-dir",
                  str(tmp_path / "lab"), "--baseline", "last:2", "--tolerance", "10%", "--quiet")
    req = cli.run_request(args)
    assert dict(os.environ) == before
    assert (req.target, req.run_id, req.run_dir) == ("lab", "r1", tmp_path / "reports" / "r1")
    assert req.lab == request.LabRequest(state_dir=(tmp_path / "lab").resolve(), timing="aws", tls=True,
                                         keep=True, shop_settings={"retry": "false"})
    assert (req.load.users, req.load.spawn_rate) == (3, 1.5) and req.gate == request.Gate("last:2", "10%")
    load = next(c for c in req.spec["controls"] if c["provider"]["module"] == "chaosext.load.control")
    assert load["provider"]["arguments"]["users"] == 3  # the overrides are in the validated spec


@pytest.mark.parametrize("argv,message", [
    (["--target", "aws", "--tls"], "--tls starts an encrypted lab"),
    (["--target", "aws", "--shop-setting", "retry=false"], "--shop-setting configures the lab"),
    (["--allow-remote-load"], "--allow-remote-load is for --target aws"),
    (["--tolerance", "10%"], "--tolerance needs --baseline"),
    (["--users", "0"], "--users must be at least 1")])
def test_bad_settings_are_refused_when_the_request_is_built(tmp_path, argv, message):
    with pytest.raises(GamedayError, match=message):
        cli.run_request(parsed("rds-force-failover", "--state-dir", str(tmp_path), *argv))


def test_a_matrix_variant_shares_the_validated_experiment_but_not_its_copy(tmp_path):
    base = request.build("rds-force-failover", "lab", lab=request.LabRequest(state_dir=tmp_path),
                         load=request.LoadRequest(users=2))
    variant = base.variant("m/retry-false", {"retry": "false"})
    assert variant.spec is base.spec and variant.lab.shop_settings == {"retry": "false"}
    assert base.lab.shop_settings == {} and variant.run_id == "m/retry-false"
    copy = variant.fresh_spec()
    copy["controls"].append({"name": "x"})
    assert {"name": "x"} not in base.spec["controls"]


def test_the_verdict_uses_the_reports_summary_from_memory(tmp_path, monkeypatch, capsys):
    summary = {"verdict": "passed", "verdict_reasons": [], "faults": [],
               "rpo": {"orders_lost": 0, "carts_lost": 0}}
    written = {"summary": summary, "report.html": str(tmp_path / "report.html"),
               "summary.json": str(tmp_path / "nowhere" / "summary.json")}  # never read
    monkeypatch.setattr("gameday.report.write_report", lambda *a, **k: written)
    (tmp_path / "journal.json").write_text(json.dumps({"status": "completed", "deviated": False, "run": []}))
    assert verdict.finish(Path(tmp_path)) == 0
    assert "gameday: PASSED" in capsys.readouterr().out
