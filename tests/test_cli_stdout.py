"""Every `gameday` command on a pipe its reader closes, on a closed stdout, without a terminal.

The commands come from the parser itself (`commands()`), so a new one is covered without editing
this file: it runs with `--help` and with the arguments in SAMPLE (none when it is not listed:
then argparse's usage error is what is checked). Each runs as the real console script with
stdin not a terminal and TERM unset. Commands that need a lab get a state dir where none runs
and must print their one-line "lab is not up" error; `test_lab_commands_…` runs them against the
session's real lab.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gameday.cli import build_parser

GAMEDAY = str(Path(sys.executable).parent / "gameday")
FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


def commands(parser=None, prefix=()):
    """Every leaf command of the parser as a tuple of words: ("lab", "status"), ("list",) …"""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from commands(sub, prefix + (name,))
                else:
                    yield prefix + (name,)


NOLAB = ["--state-dir", "{tmp}/no-lab"]
SAMPLE = {  # arguments that run the command for real without harming anything
    ("list",): ["-v"],
    ("run",): ["rds-force-failover", "--dry-run", *NOLAB],
    ("cleanup",): ["{tmp}/reports/run1", *NOLAB],
    ("matrix",): ["rds-force-failover", "--setting", "retry=true,false", "--max-runs", "1", *NOLAB],
    ("report",): ["{tmp}/reports/run1"],
    ("history",): ["--reports", "{tmp}/history"],
    ("suite",): ["release", "--dry-run", *NOLAB],
    ("note",): ["{tmp}/reports/run1", "pager fired"],
    ("lab", "up"): ["--base-port", "70000", *NOLAB],
    ("lab", "down"): NOLAB,
    ("lab", "status"): NOLAB,
    ("lab", "env"): NOLAB,
    ("lab", "failover"): ["db", *NOLAB],
    ("lab", "shop-settings"): ["retry=false", *NOLAB],
    ("lab", "crash"): ["shop-db-a", *NOLAB],
    ("lab", "freeze"): ["shop-db-a", *NOLAB],
    ("lab", "thaw"): ["shop-db-a", *NOLAB],
    ("lab", "interrupt-az"): ["us-east-1a", "--seconds", "1", *NOLAB],
    ("lab", "repair"): ["--timeout", "1", *NOLAB],
    ("lab", "network"): ["us-east-1a", "--delay-ms", "10", *NOLAB],
    ("lab", "resolve"): ["master.example", *NOLAB],
    ("lab", "lag"): ["shop-db-cluster-instance-2", "--seconds", "3", *NOLAB],
}
# the one-line error each sample ends in (no lab runs in its state dir; nothing is harmed)
NOT_UP = "the lab is not up"
EXPECTED_ERROR = {
    ("run",): NOT_UP, ("lab", "status"): NOT_UP, ("lab", "env"): NOT_UP,
    ("lab", "failover"): NOT_UP, ("lab", "shop-settings"): NOT_UP, ("lab", "crash"): NOT_UP,
    ("lab", "freeze"): NOT_UP, ("lab", "thaw"): NOT_UP, ("lab", "interrupt-az"): NOT_UP,
    ("lab", "repair"): NOT_UP,
    ("lab", "up"): "outside 1-65535", ("cleanup",): "has no readable target.json",
    ("matrix",): "more than --max-runs 1", ("suite",): NOT_UP,
    ("lab", "network"): NOT_UP, ("lab", "resolve"): NOT_UP, ("lab", "lag"): NOT_UP,
}
CASES = [((), ["--help"])] + [(c, ["--help"]) for c in commands()] + \
        [(c, SAMPLE.get(c, [])) for c in commands()]


def env_without_terminal(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    env["GAMEDAY_REPORTS_DIR"] = str(tmp_path / "reports")
    return env


def run(argv, tmp_path, stdout):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env_without_terminal(tmp_path), cwd=str(tmp_path), timeout=60)


def reader_closes_after_first_line(argv, tmp_path):
    """stdout is a pipe; we read one line (or EOF) and close our end, like `| head -1`."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_without_terminal(tmp_path),
                            cwd=str(tmp_path))
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=60), first, stderr


def reader_gone(argv, tmp_path):
    """stdout is a pipe whose reader has already exited: the first write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return run(argv, tmp_path, write_end)
    finally:
        os.close(write_end)


def stdout_closed(argv, tmp_path):
    """`gameday … >&-`."""
    return run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], tmp_path, None)


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "reports" / "run1")
    shutil.copytree(FIXTURE.parent.parent / "history", tmp_path / "history")
    return tmp_path


def argv_of(command, args, tmp_path):
    return [GAMEDAY, *command, *[a.format(tmp=tmp_path) for a in args]]


def assert_well_behaved(argv, tmp_path):
    reference = run(argv, tmp_path, subprocess.PIPE)  # stdout a pipe read to the end
    assert "Traceback" not in reference.stderr, reference.stderr
    if reference.returncode not in (0, 2):  # 2: argparse's usage error
        assert reference.stderr.startswith("gameday: error: ") and \
            reference.stderr.count("\n") == 1, reference.stderr

    code, first, stderr = reader_closes_after_first_line(argv, tmp_path)
    assert "Traceback" not in stderr and code == reference.returncode, stderr
    assert bool(first) == bool(reference.stdout)  # the reader got the first line, if any

    gone = reader_gone(argv, tmp_path)
    assert "Traceback" not in gone.stderr and gone.returncode == reference.returncode, gone.stderr
    assert "error" not in gone.stderr.replace(reference.stderr, "")  # EPIPE is not an error

    closed = stdout_closed(argv, tmp_path)
    assert "Traceback" not in closed.stderr, closed.stderr
    if reference.stdout:
        assert closed.returncode != 0
        assert closed.stderr.splitlines()[-1] == (
            "gameday: error: standard output is closed: the output was not written "
            "(redirect it to a file or /dev/null)")
    else:
        assert closed.returncode == reference.returncode
    return reference


@pytest.mark.parametrize("command,args", CASES, ids=[" ".join(c) + " " + " ".join(a[:1])
                                                      for c, a in CASES])
def test_command_behaves_on_pipes_closed_stdout_and_without_terminal(command, args, workdir):
    reference = assert_well_behaved(argv_of(command, args, workdir), workdir)
    if args == ["--help"]:
        assert reference.returncode == 0 and reference.stdout.startswith("usage: gameday")
    elif command in EXPECTED_ERROR:
        assert reference.returncode == 1 and EXPECTED_ERROR[command] in reference.stderr
    elif command in SAMPLE:
        assert reference.returncode == 0 and reference.stdout
        assert all(line.startswith("gameday: ") for line in reference.stderr.splitlines())
    else:  # a command added since: argparse's usage error until it gets a sample here
        assert reference.returncode in (0, 2)


def test_the_iam_policy_printer_behaves_like_the_commands(workdir):
    """`python -m gameday.iam > docs/iam.md` prints the policy's documentation."""
    reference = assert_well_behaved([sys.executable, "-m", "gameday.iam"], workdir)
    assert reference.returncode == 0 and reference.stdout.startswith("# IAM permissions")


def test_every_sample_names_a_command_the_parser_has():
    assert set(SAMPLE) <= set(commands()) and set(EXPECTED_ERROR) <= set(SAMPLE)


def test_a_pipe_closed_early_does_not_stop_the_command(workdir):
    """The rest of the output is dropped, the work is done: the note is written."""
    gone = reader_gone([GAMEDAY, "note", str(workdir / "reports" / "run1"), "seen", "it"], workdir)
    assert gone.returncode == 0 and gone.stderr == ""
    assert (workdir / "reports" / "run1" / "notes.md").read_text().rstrip().endswith(" seen it")


@pytest.mark.lab
@pytest.mark.parametrize("command", [("lab", "status"), ("lab", "env"), ("lab", "up")])
def test_lab_commands_behave_against_a_real_lab(lab, workdir, command):
    reference = assert_well_behaved([GAMEDAY, *command, "--state-dir", str(lab.state_dir)], workdir)
    assert reference.returncode == 0 and reference.stdout.count("\n") >= 1


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_a_game_day_whose_reader_left_still_runs_to_its_verdict(lab, workdir):
    """`gameday run … | head -1` after head exited: the run, its rollbacks and report go on."""
    argv = [GAMEDAY, "run", "rds-force-failover", "--state-dir", str(lab.state_dir), "--users", "5",
            "--run-id", "piped", "--pulse-every", "1"]
    result = reader_gone(argv, workdir)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    summary = json.loads((workdir / "reports" / "piped" / "summary.json").read_text())
    assert summary["verdict"] == "passed" and summary["faults"][0]["rto_seconds"] > 0
