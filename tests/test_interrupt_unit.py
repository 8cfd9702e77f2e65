"""Signal handling of `gameday` with real processes and real signals (no lab needed)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from groundfloor.supervisor import pid_alive, poll_until
from gameday.interrupt import Interrupted, Interrupts

# stands in for `chaos run`: a method and rollbacks that Ctrl-C stops one after the other
CHILD = textwrap.dedent("""
    import sys, time
    def note(text):
        with open(sys.argv[1], "a") as fh:
            fh.write(text + "\\n")
    note("started")
    try:
        time.sleep(30)
        note("method done")
    except KeyboardInterrupt:
        note("method interrupted")
    try:
        time.sleep(float(sys.argv[2]))
        note("rollbacks done")
    except KeyboardInterrupt:
        note("rollbacks aborted")
""")


def notes(path):
    return path.read_text().split() if path.exists() else []


def signal_when(path, *plan):
    """From a thread: once the child logged `after`, wait `delay`, send `sig` to this process."""
    def run():
        for after, delay, sig in plan:
            poll_until(lambda: after in path.read_text() if path.exists() else False, 20, interval=0.02)
            time.sleep(delay)
            os.kill(os.getpid(), sig)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_child(tmp_path, rollback_seconds, *plan, said=None):
    log = tmp_path / "child.log"
    signals = Interrupts(say=(said.append if said is not None else lambda text: None))
    with signals.installed():
        thread = signal_when(log, *plan)
        code = signals.run_child([sys.executable, "-c", CHILD, str(log), str(rollback_seconds)])
        thread.join(5)
    return signals, code, log


def test_one_sighup_is_passed_on_as_ctrl_c_and_the_rollbacks_still_run(tmp_path):
    said = []
    signals, code, log = run_child(tmp_path, 0.5, ("started", 0.2, signal.SIGHUP), said=said)
    assert code == 0 and notes(log) == ["started", "method", "interrupted", "rollbacks", "done"]
    assert signals.exit_code(0) == 129 and signals.forwarded == 1
    assert "SIGHUP: interrupted: stopping the method" in said[0]


def test_a_second_signal_aborts_the_rollbacks(tmp_path):
    signals, code, log = run_child(tmp_path, 20, ("started", 0.1, signal.SIGTERM),
                                   ("method interrupted", 1.2, signal.SIGINT))
    assert notes(log)[-2:] == ["rollbacks", "aborted"]
    assert signals.exit_code(0) == 143 and signals.forwarded == 2
    signals.record(tmp_path)
    record = (tmp_path / "interruption.json").read_text()
    assert '"rollbacks_aborted": true' in record and '"SIGINT"' in record


def test_the_same_signal_twice_at_once_counts_once_as_gnu_timeout_sends_it(tmp_path):
    signals, code, log = run_child(tmp_path, 0.5, ("started", 0.1, signal.SIGTERM),
                                   ("started", 0.0, signal.SIGTERM))
    assert notes(log)[-2:] == ["rollbacks", "done"] and signals.forwarded == 1


def test_the_child_runs_in_its_own_session_so_a_group_signal_reaches_it_only_through_us(tmp_path):
    log = tmp_path / "sid.log"
    script = f"import os; open({str(log)!r}, 'w').write(str(os.getsid(0)))"
    with Interrupts().installed() as signals:
        assert signals.run_child([sys.executable, "-c", script]) == 0
    assert int(log.read_text()) != os.getsid(0)


def test_the_child_gets_ctrl_c_when_gameday_is_killed_outright(tmp_path):
    log = tmp_path / "child.log"
    parent = textwrap.dedent(f"""
        import sys
        from gameday.interrupt import Interrupts
        with Interrupts().installed() as signals:
            signals.run_child([sys.executable, "-c", {CHILD!r}, {str(log)!r}, "0.2"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        assert poll_until(lambda: "started" in notes(log), 20)
        proc.kill()
        assert poll_until(lambda: "rollbacks" in notes(log), 10), notes(log)
    finally:
        proc.kill()
        proc.wait()
    assert notes(log) == ["started", "method", "interrupted", "rollbacks", "done"]


def test_outside_a_run_a_signal_raises_and_a_clean_up_survives_the_first(tmp_path):
    with Interrupts(say=lambda text: None).installed() as signals:
        with pytest.raises(Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert caught.value.signum == signal.SIGTERM
        with signals.deferring():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)  # noted, the clean-up goes on
            with pytest.raises(Interrupted):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
    assert signals.exit_code(0) == 143
    assert signal.getsignal(signal.SIGTERM) != signals._handle  # handlers restored
