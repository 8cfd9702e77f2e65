"""A stop signal ends the method even when Python drops the exception its handler raised
(chaosext.stopsignals).

Each case runs Chaos Toolkit's own runner in a fresh interpreter, as `chaos run` does. A step
drops a signal the way the garbage collector can: a finalizer (a ``weakref.finalize`` callback,
like the one urllib3 puts on every connection pool) sends the signal to its own process and
keeps running, so the handler runs inside the finalizer and Python drops its exception.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from chaosext import faultlog

STEPS = '''
import os, signal, time, weakref
from pathlib import Path

from chaosext import recovery
from chaosext.fault_model import FaultSpec

SPEC = FaultSpec("rds-force-failover", ("rds",), "failover")


def drop_a_signal(signal_name: str = "SIGINT") -> str:
    """Send the signal from inside a finalizer: its exception is dropped, the step returns."""
    class Pool:
        pass
    def close_connections():
        os.kill(os.getpid(), getattr(signal, signal_name))
        for _ in range(10000):  # the handler runs here, inside the finalizer
            pass
    pool = Pool()
    weakref.finalize(pool, close_connections)
    del pool
    return "went on"


def mark(path: str) -> str:
    Path(path).write_text("ran")
    return "ran"


def _fault(marker, poll):
    return recovery.Fault(spec=SPEC, target="shop-db", method="test", before={},
                          inject=lambda: mark(marker), poll=poll, events=lambda since: [])


def inject_a_fault(marker: str) -> dict:
    """A fault whose injection leaves a mark; it recovers at its first poll."""
    return recovery.run_fault(_fault(marker, lambda: (True, {})), timeout=30, poll_interval=0.05,
                              measure_data_plane=False)


def a_fault_whose_wait_drops_a_signal(marker: str) -> dict:
    """A fault that recovers after 10 s; the signal is dropped during its first poll."""
    began = time.monotonic()
    def poll():
        if not Path(marker + ".polled").exists():
            Path(marker + ".polled").write_text("")
            drop_a_signal()
        return time.monotonic() - began > 10, {}
    return recovery.run_fault(_fault(marker, poll), timeout=30, poll_interval=0.05,
                              measure_data_plane=False)
'''

RUNNER = '''
import json, sys, time
from chaoslib.run import Runner
from chaoslib.types import Strategy

def step(name, func, **arguments):
    return {"type": "action", "name": name,
            "provider": {"type": "python", "module": "steps", "func": func, "arguments": arguments}}

def run(method, rollbacks=(), controls=()):
    experiment = {"title": "stop signals", "description": "-", "method": list(method),
                  "rollbacks": list(rollbacks), "controls": list(controls)}
    began = time.monotonic()
    with Runner(Strategy.DEFAULT) as runner:
        journal = runner.run(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
    return {"status": journal["status"], "seconds": round(time.monotonic() - began, 1),
            "run": [(r["activity"]["name"], r.get("status")) for r in journal["run"]],
            "rollbacks": [(r["activity"]["name"], r.get("status")) for r in journal["rollbacks"]]}

PROGRESS = {"name": "progress", "provider": {"type": "python", "module": "chaosext.progress"}}
'''


def run_chaos(tmp_path, body: str, disable_checks: bool = False):
    (tmp_path / "steps.py").write_text(STEPS)
    script = RUNNER + textwrap.dedent(body)
    if disable_checks:  # what the run did before the checks existed
        script = "import chaosext.stopsignals as s\ns.check = lambda: None\n" + script
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


DROP_THEN_INJECT = f"""
    print(json.dumps(run([step("drop", "drop_a_signal"),
                          step("inject", "inject_a_fault", marker="{{marker}}")],
                         rollbacks=[step("rollback", "mark", path="{{marker}}.rollback")])))
"""


def test_without_the_checks_a_dropped_ctrl_c_lets_the_fault_go_ahead(tmp_path):
    """The hazard itself: what a Ctrl-C 22 ms into a cache primary deletion did on the lab."""
    marker = tmp_path / "injected"
    result = run_chaos(tmp_path, DROP_THEN_INJECT.format(marker=marker), disable_checks=True)
    assert result["status"] == "completed" and marker.exists()


def test_a_dropped_ctrl_c_stops_the_method_before_the_fault_is_injected(tmp_path):
    marker = tmp_path / "injected"
    result = run_chaos(tmp_path, DROP_THEN_INJECT.format(marker=marker))
    assert result["status"] == "interrupted", result
    assert not marker.exists()  # the check before injecting raised the stop again
    assert result["rollbacks"] == [["rollback", "succeeded"]]  # rollbacks play as after Ctrl-C


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_chaoslibs_sigterm_and_safeguard_exit_are_raised_again_too(tmp_path, name):
    """SIGUSR1 (a safeguard's exit) stops at the fault; SIGTERM raised inside an activity only
    fails it (Chaos Toolkit's rule), so it ends the method before the next activity."""
    marker, after = tmp_path / "injected", tmp_path / "next-step"
    result = run_chaos(tmp_path, f"""
        print(json.dumps(run([step("drop", "drop_a_signal", signal_name="{name}"),
                              step("inject", "inject_a_fault", marker="{marker}"),
                              step("next", "mark", path="{after}")], controls=[PROGRESS])))
    """)
    assert result["status"] == "interrupted", result
    assert not marker.exists() and not after.exists()


def test_a_dropped_ctrl_c_stops_the_method_before_its_next_activity(tmp_path):
    """The progress control checks before every activity, not only before faults."""
    marker = tmp_path / "next-step"
    result = run_chaos(tmp_path, f"""
        print(json.dumps(run([step("drop", "drop_a_signal"), step("next", "mark", path="{marker}")],
                             controls=[PROGRESS])))
    """)
    assert result["status"] == "interrupted" and not marker.exists(), result


def test_a_ctrl_c_dropped_while_waiting_for_recovery_ends_the_wait(tmp_path):
    marker = tmp_path / "injected"
    result = run_chaos(tmp_path, f"""
        print(json.dumps(run([step("fault", "a_fault_whose_wait_drops_a_signal", marker="{marker}")])))
    """)
    assert result["status"] == "interrupted", result
    assert result["seconds"] < 8  # the fault recovers after 10 s: the wait ended at the next poll


def test_rollbacks_go_on_after_a_dropped_signal_and_a_later_run_is_not_stopped_by_it(tmp_path):
    """During rollbacks a dropped signal is the safe kind of loss; and a stop belongs to its run."""
    first, second = tmp_path / "first", tmp_path / "second"
    result = run_chaos(tmp_path, f"""
        one = run([step("drop", "drop_a_signal"), step("inject", "inject_a_fault", marker="{first}")],
                  rollbacks=[step("drop", "drop_a_signal"), step("after", "mark", path="{first}.rollback")])
        two = run([step("inject", "inject_a_fault", marker="{second}")])
        print(json.dumps({{"one": one, "two": two}}))
    """)
    assert result["one"]["status"] == "interrupted" and not first.exists()
    assert [name for name, _ in result["one"]["rollbacks"]] == ["drop", "after"]
    assert (tmp_path / "first.rollback").exists()
    assert result["two"]["status"] == "completed" and second.exists(), result


def test_gameday_does_not_start_chaos_after_a_signal_whose_interruption_was_dropped(tmp_path):
    from gameday.interrupt import Interrupted, Interrupts
    interrupts = Interrupts(say=lambda text: None)
    interrupts.received.append({"signal": "SIGTERM", "at": "-", "phase": "setup"})  # dropped
    with pytest.raises(Interrupted) as stopped:
        interrupts.run_child([sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"])
    assert stopped.value.signum == 15 and not (tmp_path / "ran").exists()


def test_restoring_the_held_handlers_puts_every_one_back_even_if_a_pending_signal_raises(monkeypatch):
    """`signal.signal` first runs pending handlers: one raising mid-restore must not leave the
    other stop signals held for ever."""
    import signal
    original = {sig: signal.getsignal(sig) for sig in faultlog.HELD_SIGNALS}
    real_signal = signal.signal
    raised_once = []

    def pending_ctrl_c_on_the_second_swap(sig, handler):
        if not raised_once and sig != sorted(faultlog.HELD_SIGNALS)[0]:
            raised_once.append(sig)
            raise KeyboardInterrupt  # as a restored SIGINT handler would, from the pending check
        return real_signal(sig, handler)

    swapped = {sig: real_signal(sig, lambda signum, frame: None) for sig in faultlog.HELD_SIGNALS}
    monkeypatch.setattr(signal, "signal", pending_ctrl_c_on_the_second_swap)
    try:
        with pytest.raises(KeyboardInterrupt):
            faultlog._restore(dict(sorted(swapped.items())))
    finally:
        monkeypatch.undo()
        restored = {sig: signal.getsignal(sig) for sig in faultlog.HELD_SIGNALS}
        for sig, handler in original.items():
            signal.signal(sig, handler)
    assert raised_once and restored == original


def test_the_loads_sigterm_handler_wrapped_for_noting_is_still_its_own(tmp_path):
    """A second load in a process whose SIGTERM handler was wrapped must not chain the load's
    handler to itself (SIGTERM would then recurse until RecursionError)."""
    script = textwrap.dedent("""
        import os, signal
        from chaosext import stopsignals
        from chaosext.load import process
        calls = []
        class Load:
            proc = None
            def stop(self, reason, grace):
                calls.append(reason)
        signal.signal(signal.SIGTERM, lambda signum, frame: calls.append("previous"))
        process._register(Load())
        stopsignals.install()  # what the first check in a run does
        process._register(Load())
        os.kill(os.getpid(), signal.SIGTERM)
        print(calls)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['SIGTERM', 'SIGTERM', 'previous']"  # both loads, then the rest
