"""Every exit code of docs/exit-codes.md, produced by the command itself (no lab, no AWS: a fake
endpoint on loopback behind the guard's test switch stands in for a broken AWS endpoint)."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gameday import cli
from gameday.interrupt import Interrupted
from gameday.preflight import mixing

from aws_helpers import FakeAws

ROOT = Path(__file__).resolve().parents[1]
AWS_RUN = ["run", "rds-force-failover", "--target", "aws", "--region", "eu-west-1"]


def documented_codes():
    table = (ROOT / "docs" / "exit-codes.md").read_text().split("## Standard output")[0]
    return sorted({int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)})


def test_the_table_lists_each_code_once():
    assert documented_codes() == [0, 1, 2, 3, 124, 129, 130, 143]


@pytest.fixture
def garbage_aws(aws_clean_env, monkeypatch):
    fake = FakeAws("garbage")
    monkeypatch.setattr(mixing, "TEST_LOOPBACK_HOSTS", frozenset({"127.0.0.1"}))
    aws_clean_env.setenv("AWS_ENDPOINT_URL", fake.url)
    yield fake
    fake.close()


def test_0_done_1_expected_error_2_usage(aws_clean_env, capsys):
    assert cli.main(["list"]) == 0
    assert cli.main(["run", "no-such-experiment"]) == 1
    assert cli.main(["run"]) == 2
    assert "no-such-experiment" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--dry-run"], ["--yes"]])
def test_2_not_ready_with_or_without_dry_run(garbage_aws, capsys, extra):
    assert cli.main(AWS_RUN + extra) == 2
    out, err = capsys.readouterr()
    assert "NOT READY" in out and "Traceback" not in out + err
    assert extra == ["--dry-run"] or "not ready" in err and "nothing was done" in err


def test_3_refused_by_a_guardrail_before_the_run(aws_clean_env, capsys):
    aws_clean_env.setenv("GAMEDAY_TARGET", "lab")
    assert cli.main(AWS_RUN + ["--dry-run"]) == 3
    assert "--target aws refused" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
def test_128_plus_the_signal_that_stopped_a_command(monkeypatch, capsys, signum):
    def stopped(args):
        raise Interrupted(signum)
    monkeypatch.setattr(cli, "cmd_list", stopped)
    assert cli.main(["list"]) == 128 + signum
    assert f"interrupted ({signal.Signals(signum).name})" in capsys.readouterr().err


CHILD = """
import sys
from chaosext import aws
from gameday import cli
from gameday.preflight import mixing
mixing.TEST_LOOPBACK_HOSTS = frozenset({"127.0.0.1"})
aws.TIMEOUTS = (60.0, 60.0)
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("preserve,code", [([], 124), (["--preserve-status"], 143)])
def test_124_when_timeout_had_to_stop_gameday(aws_clean_env, tmp_path, preserve, code):
    fake = FakeAws("hang")  # the preflight waits for it until `timeout` sends SIGTERM
    env = dict(os.environ, PYTHONPATH=str(ROOT), AWS_ENDPOINT_URL=fake.url, AWS_MAX_ATTEMPTS="1")
    try:
        done = subprocess.run(["timeout", *preserve, "3", sys.executable, "-c", CHILD, *AWS_RUN, "--dry-run"],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        fake.close()
    assert done.returncode == code, done.stderr
    assert "interrupted (SIGTERM)" in done.stderr and "Traceback" not in done.stderr
