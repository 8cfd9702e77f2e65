"""--web and --pause-between-faults without a lab: options, Locust's command line, the pause
control and its stepper, the live view server (real sockets, real signals, real files)."""
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from chaosext import pause
from chaosext.errors import GamedayError
from chaosext.load.settings import LoadError, LoadSettings
from chaosext.load.web import web_bind
from groundfloor.supervisor import poll_until
from gameday import run
from gameday.live.options import LiveOptions, apply, parse_web
from gameday.live.server import LabEvents, LiveView
from gameday.live.stepper import Stepper

GAMEDAY = [sys.executable, "-m", "gameday.cli"]


def listening(port: int):
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def free_pair() -> int:
    for port in range(28370, 28398, 2):
        try:
            parse_web(f"127.0.0.1:{port}")
            return port
        except GamedayError:
            continue
    pytest.skip("no two free ports in 28370-28398")


@pytest.mark.parametrize("address", ["10.0.0.5:8089", "0.0.0.0:8089", "example.invalid:8089"])
def test_web_refuses_a_non_loopback_address_in_one_line(address):
    result = subprocess.run([*GAMEDAY, "run", "gameday", "--web", address], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "not loopback" in result.stderr, result.stderr


def test_web_refuses_a_busy_port_for_locust_or_for_the_live_view():
    port = free_pair()
    with listening(port + 1):
        with pytest.raises(GamedayError, match=rf"live view cannot listen on 127.0.0.1:{port + 1}"):
            parse_web(f"127.0.0.1:{port}")
    with listening(port):
        with pytest.raises(GamedayError, match="in use"):
            parse_web(f"127.0.0.1:{port}")


def test_web_without_an_address_picks_two_free_loopback_ports():
    host, port = parse_web("")
    assert host == "127.0.0.1" and port >= 8089
    parse_web(f"127.0.0.1:{port}")  # both still free


def test_web_bind_accepts_ipv6_and_localhost_loopback():
    assert web_bind("[::1]:9000") == ("::1", 9000)
    assert web_bind("localhost:9000") == ("localhost", 9000)
    with pytest.raises(LoadError, match="HOST:PORT"):
        web_bind("127.0.0.1")


def test_locust_runs_with_its_web_ui_self_starting_and_still_bounded(tmp_path):
    settings = LoadSettings(host="http://127.0.0.1:1", run_dir=str(tmp_path), max_duration=90,
                            web_port=28391)
    cmd = settings.command()
    assert "--headless" not in cmd
    assert cmd[cmd.index("--web-host") + 1] == "127.0.0.1" and cmd[cmd.index("--web-port") + 1] == "28391"
    assert "--autostart" in cmd and cmd[cmd.index("--autoquit") + 1] == "0"
    assert cmd[cmd.index("--run-time") + 1] == "90s"
    assert "--headless" in LoadSettings(host="http://127.0.0.1:1", run_dir=str(tmp_path)).command()


def test_the_load_control_reads_web_from_its_argument_or_the_configuration(tmp_path):
    from chaosext.load import control
    args = {"run_dir": str(tmp_path)}
    cfg = {"shop_url": "http://127.0.0.1:1"}
    assert control._settings({**args, "web": "127.0.0.1:28392"}, cfg).web_port == 28392
    assert control._settings(args, {**cfg, "load_web_bind": "127.0.0.1:28393"}).web_port == 28393
    with pytest.raises(LoadError, match="not loopback"):
        control._settings({**args, "web": "192.0.2.1:80"}, cfg)


def test_apply_sets_the_web_argument_and_puts_pause_then_progress_first():
    spec = apply(run.load_and_validate(run.resolve("gameday")),
                 LiveOptions(web=("127.0.0.1", 8089), pause=True, pause_timeout=42))
    modules = [c["provider"]["module"] for c in spec["controls"]]
    assert modules[:2] == ["chaosext.pause", "chaosext.progress"]
    assert modules[-1] == "chaosext.rundir" and modules.count("chaosext.progress") == 1
    assert run.with_phases(spec)["controls"] == spec["controls"]  # progress is not added twice
    assert spec["controls"][modules.index("chaosext.pause")]["provider"]["arguments"] == {"timeout": 42}
    load = spec["controls"][modules.index("chaosext.load.control")]["provider"]["arguments"]
    assert load["web"] == "127.0.0.1:8089"
    from chaoslib.experiment import ensure_experiment_is_valid
    ensure_experiment_is_valid(spec)


def test_web_needs_a_load_control():
    with pytest.raises(GamedayError, match="no load control"):
        apply({"title": "t", "method": []}, LiveOptions(web=("127.0.0.1", 8089)))


def test_is_fault_counts_failover_actions_not_repairs_or_probes():
    assert pause.is_fault({"type": "action", "provider": {"module": "chaosext.rds.actions",
                                                          "func": "force_failover"}})
    assert not pause.is_fault({"type": "action", "provider": {"module": "chaosext.elasticache.actions",
                                                              "func": "restore_replicas"}})
    assert not pause.is_fault({"type": "probe", "provider": {"module": "chaosext.rds.actions"}})
    assert pause.is_fault({"name": "mine", "type": "action"}, names=["mine"])


def test_the_pause_control_waits_only_before_the_second_fault(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    fault = {"name": "f", "type": "action", "provider": {"module": "chaosext.rds.actions",
                                                          "func": "force_failover"}}
    pause.configure_control()
    pause.before_activity_control(fault, timeout=0.3)  # before the method: nothing
    pause.before_method_control(None)
    started = time.monotonic()
    pause.before_activity_control(fault, timeout=0.3)
    pause.before_activity_control({**fault, "name": "g"}, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert [(p["before"], p["how"]) for p in pause.read_pauses(str(tmp_path))] == [("g", "timeout")]


def _pause_state(run_dir):
    try:
        return json.loads((run_dir / "pause.json").read_text())["state"]
    except (OSError, ValueError):
        return None


def test_a_pause_ends_on_the_continue_file_and_says_how(tmp_path):
    def go():  # once the pause is on (the stale file is gone by then)
        assert poll_until(lambda: _pause_state(tmp_path) == "waiting", 5)
        (tmp_path / "continue").write_text("enter")
    threading.Thread(target=go).start()
    (tmp_path / "continue").write_text("stale")  # left from before: must not end the pause
    record = pause.wait_for_continue(str(tmp_path), "second", timeout=10)
    assert record["how"] == "enter" and not (tmp_path / "continue").exists()
    assert json.loads((tmp_path / "pause.json").read_text())["state"] == "ended"


def test_sigusr1_to_gameday_ends_the_current_pause_and_only_then(tmp_path):
    said = []
    stepper = Stepper(tmp_path, say=said.append, stdin=io.StringIO(""), every=0.05).start()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # no pause on: nothing happens
        assert not (tmp_path / "continue").exists()
        (tmp_path / "pause.json").write_text(json.dumps(
            {"state": "waiting", "before": "b", "started_at": "x", "timeout_seconds": 5}))
        assert poll_until(lambda: any("paused before b" in s and f"kill -USR1 {os.getpid()}" in s
                                      for s in said), 5)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert (tmp_path / "continue").read_text() == "SIGUSR1"
    finally:
        stepper.stop()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_the_live_view_serves_the_page_and_the_phases(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps(run.load_and_validate(run.resolve("gameday"))))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"time": 1, "source_id": "old"}) + "\n")  # before the run: ignored
    view = LiveView(tmp_path, "127.0.0.1", 0, "http://127.0.0.1:1/", events).start()
    try:
        page = urllib.request.urlopen(view.url, timeout=5).read().decode()
        assert "phases.json" in page and "setInterval(poll, 500)" in page
        data = json.load(urllib.request.urlopen(view.url + "phases.json", timeout=5))
        assert data["run_id"] == tmp_path.name and data["locust_url"] == "http://127.0.0.1:1/"
        assert data["phases"][0]["key"] == "hypothesis-before"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(view.url + "nope", timeout=5)
        assert missing.value.code == 404
    finally:
        view.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(view.url, timeout=2)


def test_lab_events_are_followed_from_the_run_start_and_a_torn_line_waits(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"time": 1, "source_id": "old"}) + "\n")
    tail = LabEvents(path)
    assert tail.read() == []
    with path.open("a") as fh:
        fh.write(json.dumps({"time": 2, "source_id": "new"}) + "\n" + '{"time": 3, "sou')
    assert [e["source_id"] for e in tail.read()] == ["new"]
    with path.open("a") as fh:
        fh.write('rce_id": "late"}\n')
    assert [e["source_id"] for e in tail.read()] == ["new", "late"]


class Terminal:
    """A terminal's input: lines typed one after another (isatty, blocking readline)."""

    def __init__(self):
        self.lines, self.ready = [], threading.Semaphore(0)

    def isatty(self):
        return True

    def type(self, line):
        self.lines.append(line)
        self.ready.release()

    def readline(self):
        self.ready.acquire()
        return self.lines.pop(0)


def test_enter_on_a_terminal_ends_the_current_pause_and_is_offered_in_the_message(tmp_path):
    said, terminal = [], Terminal()
    stepper = Stepper(tmp_path, say=said.append, stdin=terminal, every=0.05).start()
    try:
        terminal.type("\n")  # Enter with no pause on: ignored
        assert poll_until(lambda: not terminal.lines, 5)  # read
        assert not (tmp_path / "continue").exists()
        (tmp_path / "pause.json").write_text(json.dumps(
            {"state": "waiting", "before": "b", "started_at": "x", "timeout_seconds": 5}))
        assert poll_until(lambda: any("press Enter" in s for s in said), 5)
        terminal.type("\n")
        assert poll_until((tmp_path / "continue").exists, 5)
        assert (tmp_path / "continue").read_text() == "enter"
    finally:
        stepper.stop()
        terminal.type("")  # end of input: the reader thread ends


def test_pause_mode_on_a_one_fault_experiment_says_there_is_nothing_to_pause_between(capsys):
    apply(run.load_and_validate(run.resolve("rds-force-failover")), LiveOptions(pause=True))
    assert "fewer than two faults" in capsys.readouterr().err
    apply(run.load_and_validate(run.resolve("gameday")), LiveOptions(pause=True))
    assert capsys.readouterr().err == ""
