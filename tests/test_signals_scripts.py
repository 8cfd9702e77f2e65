"""The scheduled runner passes a stop on to the running `gameday` once and runs nothing after it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "infra" / "scheduling" / "aws-gameday.sh"

# a stand-in `gameday run` that records its calls and the signals it gets and exits as gameday
# does; like gameday it installs its handlers (bash starts background commands with SIGINT ignored)
FAKE = """#!{python}
import os, signal, sys, time
def note(text):
    with open(os.environ["CALLS"], "a") as fh:
        fh.write(text + "\\n")
def stop(signum, frame):
    note(signal.Signals(signum).name)
    sys.exit(128 + signum)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, stop)
note("run " + " ".join(sys.argv[1:]))
time.sleep(30)
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_is_passed_on_once_and_the_real_run_never_starts_after_it(tmp_path, sig, code):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "gameday"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "GAMEDAY_BIN": str(fake), "CALLS": str(calls),
           "AWS_REGION": "eu-west-1", "GAMEDAY_DB_INSTANCE_ID": "shop-db",
           "GAMEDAY_REPLICATION_GROUP_ID": "shop-cache", "GAMEDAY_SHOP_URL": "https://staging.example.com"}
    proc = subprocess.Popen([str(SCRIPT)], env=env, start_new_session=True)
    try:
        assert poll_until(lambda: calls.exists() and "--dry-run" in calls.read_text(), 20)
        os.kill(proc.pid, sig)  # what systemd's KillMode=mixed does: the main process only
        assert proc.wait(timeout=20) == code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = calls.read_text().splitlines()
    assert lines[1:] == [signal.Signals(sig).name]  # once, and no second run
