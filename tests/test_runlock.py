"""The lab lock: one mutating run per lab, its holder named, a dead holder taken over."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until
from woolab.errors import LabBusy
from woolab.runlock import LOCK_FILE, LabLock, lab_lock, lock_holder

ROOT = Path(__file__).resolve().parent.parent


def hold(state_dir: Path) -> subprocess.Popen:
    """Another process holding the lock as `gameday run gameday` for run-1."""
    script = textwrap.dedent(f"""
        import time
        from woolab.runlock import LabLock
        LabLock({str(state_dir)!r}, "gameday run gameday", "run-1").acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    holder = hold(tmp_path)
    try:
        with pytest.raises(LabBusy) as busy:
            LabLock(tmp_path, "gameday run other").acquire()
        assert f"in use by `gameday run gameday` (run run-1, pid {holder.pid}, since " in str(busy.value)
        assert f"kill -INT {holder.pid}" in str(busy.value) and "\n" not in str(busy.value)
        assert lock_holder(tmp_path)["run_id"] == "run-1"  # reading never blocks
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without releasing: the file still names it
        holder.wait()
    notes = []
    with lab_lock(tmp_path, "gameday run other", note=notes.append):
        assert lock_holder(tmp_path)["command"] == "gameday run other"
    assert len(notes) == 1 and notes[0].startswith("took over the lab lock of `gameday run gameday` (run run-1")
    assert (tmp_path / LOCK_FILE).read_text() == "" and lock_holder(tmp_path) is None
    with lab_lock(tmp_path, note=notes.append):  # released cleanly: nothing to take over
        pass
    assert len(notes) == 1


def test_mutating_lab_commands_refuse_while_a_run_holds_the_lab_and_reading_still_works(tmp_path):
    holder = hold(tmp_path)
    env = dict(os.environ, GAMEDAY_LAB_STATE_DIR=str(tmp_path))
    try:
        down = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "down"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        status = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "status"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert down.returncode == 1 and down.stderr.count("\n") == 1
    assert "in use by `gameday run gameday` (run run-1" in down.stderr and "Traceback" not in down.stderr
    assert "the lab is not up" in status.stderr  # status answers without waiting for the lock
    assert poll_until(lambda: lock_holder(tmp_path) is None, 5)
