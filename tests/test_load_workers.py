"""Distributed load without a shop: the worker options refused in one line, the master's view of
its workers, the per-worker evidence and pulse, a lost worker in the verdict, and workers that
cannot reach their master (stopped, none left behind)."""
import json
import socket
import time

import pytest

from chaosext.load.process import LoadProcess
from chaosext.load.settings import LoadError, LoadSettings, check_master_port, parse_bind
from chaosext.load.workers import WorkerWatch, fleet, pulse, users_problems, worker_problems
from gameday import cli
from gameday.report.sources import read_run
from gameday.report.summary import summarize_files
from load_helpers import locust_processes

MASTER_PORT = 27150  # this test module's Locust master ports: 27150-27159


def settings(tmp_path, **kw):
    return LoadSettings(host="http://127.0.0.1:9", run_dir=str(tmp_path), check_reachable=False,
                        **kw)


@pytest.mark.parametrize("kw, cause", [
    ({"workers": 0}, "workers must be a whole number >= 1 (got 0)"),
    ({"workers": -3}, "workers must be a whole number >= 1 (got -3)"),
    ({"processes": 0}, "processes must be a whole number >= 1"),
    ({"expect_workers": -1}, "expect_workers must be a whole number >= 0"),
    ({"master": True}, "master mode needs expect_workers >= 1"),
    ({"workers": 2, "master_bind_port": 70000}, "master_bind_port must be 1-65535"),
])
def test_worker_settings_that_cannot_work_are_refused_naming_the_cause(tmp_path, kw, cause):
    with pytest.raises(LoadError, match=cause.replace("(", r"\(").replace(")", r"\)")):
        settings(tmp_path, **kw).validate()


def test_a_master_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", MASTER_PORT))
        busy.listen()
        with pytest.raises(LoadError, match=f"cannot listen on 127.0.0.1:{MASTER_PORT} \\(in use\\)"):
            settings(tmp_path, workers=2, master_bind_port=MASTER_PORT).validate()
        with pytest.raises(LoadError, match="in use"):
            check_master_port("127.0.0.1", MASTER_PORT)
    check_master_port("127.0.0.1", MASTER_PORT)  # free again


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:27150", ("127.0.0.1", 27150)), ("0.0.0.0:5557", ("0.0.0.0", 5557)),
    ("[::1]:27151", ("::1", 27151)), ("loadgen.internal:6000", ("loadgen.internal", 6000))])
def test_master_bind_parses_host_and_port(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["27150", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":27150"])
def test_master_bind_without_a_usable_port_is_refused(text):
    with pytest.raises(LoadError, match="HOST:PORT"):
        parse_bind(text)


def test_local_workers_dial_loopback_when_the_master_binds_every_interface(tmp_path):
    s = settings(tmp_path, workers=2, master_bind_host="0.0.0.0", master_bind_port=MASTER_PORT)
    master, worker = s.command(), s.worker_command()
    assert master[master.index("--expect-workers") + 1] == "2"
    assert master[master.index("--master-bind-host") + 1] == "0.0.0.0"
    assert worker[worker.index("--master-host") + 1] == "127.0.0.1"
    assert worker[worker.index("--master-port") + 1] == str(MASTER_PORT)
    assert worker[worker.index("--run-dir") + 1] == str(tmp_path)  # findable by its run dir
    assert settings(tmp_path, workers=1, expect_workers=3).expected_workers == 4


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers must be at least 1 (got 0)"),
    (["--workers", "-1"], "--workers must be at least 1 (got -1)"),
    (["--workers", "2", "--master-bind", "localhost"], "master bind address must be HOST:PORT"),
    (["--master-bind", f"127.0.0.1:{MASTER_PORT + 1}"], "--master-bind needs --workers N"),
    (["--workers", "2", "--remote-workers", "0"], "--remote-workers must be at least 1"),
])
def test_gameday_run_refuses_bad_worker_options_in_one_line(capsys, argv, message):
    assert cli.main(["run", "gameday", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err


def test_gameday_run_refuses_a_master_port_in_use_in_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", MASTER_PORT + 2))
        busy.listen()
        assert cli.main(["run", "gameday", "--workers", "2", "--master-bind",
                         f"127.0.0.1:{MASTER_PORT + 2}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"gameday: error: load: the Locust master cannot listen on "
                   f"127.0.0.1:{MASTER_PORT + 2} (in use); choose another master bind port")


# ---------------------------------------------------------------- the master's view of its workers

def test_a_worker_missing_or_leaving_while_the_test_runs_is_lost_but_not_at_the_end(tmp_path):
    watch = WorkerWatch(str(tmp_path), expected=3)
    for cid, name in (("c1", "w1"), ("c2", "w2"), ("c3", "w3")):
        watch.identify(cid, name, pid=100 + int(cid[1]), host="here")
    watch.observe([("c1", "running", 5), ("c2", "running", 5), ("c3", "running", 5)], True, 10.0)
    watch.observe([("c1", "running", 5), ("c2", "missing", 0), ("c3", "running", 5)], True, 14.0)
    watch.observe([("c1", "running", 8)], True, 15.0)  # c3 left mid-run, c2 removed
    watch.observe([], False, 20.0)  # the master stops: c1 leaving now is the normal end
    watch.write("stopped", 20.0)
    workers = json.loads((tmp_path / "load-workers.json").read_text())["workers"]
    assert workers["w1"]["lost_at"] is None and workers["w1"]["users"] == 8
    assert (workers["w2"]["lost_at"], workers["w2"]["lost_how"]) == (14.0, "stopped sending heartbeats")
    assert workers["w2"]["users"] == 5  # what it had before it went missing
    assert (workers["w3"]["lost_at"], workers["w3"]["lost_how"]) == (15.0, "left the master")
    assert workers["w3"]["pid"] == 103


def write_run(tmp_path, lost=False):
    """A distributed run directory as the master's recorder writes it."""
    lines = [{"t": 100 + s, "step": "checkout", "worker": w, "requests": 10, "failures": 1,
              "errors": {"503": 1}, "carts_lost": 0, "hist": [[10.0, 10]]}
             for s in range(5) for w in ("w1", "w2")]
    (tmp_path / "timeline.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    orders = [{"order_id": n, "t": 100 + n, "worker": "w1" if n % 3 else "w2"} for n in range(1, 10)]
    (tmp_path / "orders.jsonl").write_text("\n".join(map(json.dumps, orders)) + "\n")
    watch = WorkerWatch(str(tmp_path), expected=2)
    watch.identify("c1", "w1", 11, "here")
    watch.identify("c2", "w2", 12, "here")
    watch.observe([("c1", "running", 4), ("c2", "running", 4)], True, 101.0)
    if lost:
        watch.observe([("c1", "running", 4), ("c2", "missing", 4)], True, 103.5)
    watch.write("running", 104.0)


def test_fleet_has_each_workers_figures_and_problems_name_a_lost_one(tmp_path):
    write_run(tmp_path, lost=True)
    local = [{"name": "w1", "pid": 11, "exit_code": 0},
             {"name": "w2", "pid": 12, "exit_code": -9, "exited_before_stop": True}]
    workers = {w["name"]: w for w in fleet(str(tmp_path), local)}
    assert workers["w1"]["requests"] == 50 and workers["w1"]["orders"] == 6
    assert workers["w2"]["requests"] == 50 and workers["w2"]["orders"] == 3
    assert workers["w2"]["lost_at"].endswith("Z") and workers["w2"]["exit_code"] == -9
    problems = worker_problems(list(workers.values()))
    assert len(problems) == 1 and problems[0].startswith("load generation: worker w2 (pid 12) "
                                                         "was lost mid-run at")
    assert "stopped sending heartbeats; its process exited with code -9" in problems[0]


def test_the_pulse_shows_users_and_rate_per_worker(tmp_path):
    write_run(tmp_path, lost=True)
    rows = [json.loads(x) for x in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert pulse(rows, str(tmp_path), 5.0) == \
        "[workers] w1 4 users 10.0 req/s | w2 LOST 10.0 req/s"
    (tmp_path / "load-workers.json").unlink()
    assert pulse(rows, str(tmp_path), 5.0) is None  # not distributed: the pulse stays one line


def test_a_lost_worker_fails_the_verdict_as_a_load_generation_problem(run_dir):
    files = read_run(str(run_dir))
    assert summarize_files(files)["verdict"] == "passed"
    problem = ("load generation: worker w2 (pid 12) was lost mid-run at 10:00:03Z (stopped "
               "sending heartbeats)")
    files.load_summary["problems"] = [problem]
    files.load_summary["workers"] = [{"name": "w2", "requests": 5, "orders": 1,
                                      "lost_at": "2026-11-30T10:00:03.000Z"}]
    summary = summarize_files(files)
    assert summary["verdict"] == "failed" and problem in summary["verdict_reasons"]
    assert summary["load"]["workers"][0]["name"] == "w2"


# ---------------------------------------------------------------- workers that never reach the master

def test_a_worker_that_cannot_reach_the_master_stops_the_load_in_one_line(tmp_path):
    """The master listens on 127.0.0.1 only; the worker dials 127.0.0.2 and is refused."""
    s = settings(tmp_path, workers=1, master_bind_port=MASTER_PORT + 3,
                 worker_master_host="127.0.0.2", start_timeout=8)
    load = LoadProcess(s)
    began = time.monotonic()
    with pytest.raises(LoadError) as caught:
        load.start()
    message = str(caught.value)
    assert message.startswith(f"load: 0 of 1 Locust workers reached the master at "
                              f"127.0.0.1:{MASTER_PORT + 3} within 8 s")
    assert "\n" not in message and time.monotonic() - began < 30
    assert not locust_processes(tmp_path)
    summary = json.loads((tmp_path / "load-summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == message


def test_a_load_that_could_not_start_fails_the_verdict_naming_the_cause(run_dir):
    files = read_run(str(run_dir))
    files.load_summary.update(status="failed", error="load: 1 of 2 Locust workers reached the "
                              "master at 127.0.0.1:27150 within 30 s; last worker log line: x")
    summary = summarize_files(files)
    assert summary["verdict"] == "failed"
    assert ("load generation: 1 of 2 Locust workers reached the master at 127.0.0.1:27150 "
            "within 30 s; last worker log line: x") in summary["verdict_reasons"]


def test_the_run_pulse_adds_a_line_per_worker_only_for_distributed_runs(tmp_path):
    from gameday.pulse import Pulse
    write_run(tmp_path)
    lines = Pulse(str(tmp_path), every=5.0).line(now=105.0).splitlines()
    assert len(lines) == 2 and lines[0].endswith("| req/s p95 err: checkout 20 10ms 10% | orders 9")
    assert lines[1] == "[workers] w1 4 users 10.0 req/s | w2 4 users 10.0 req/s"


def test_a_load_whose_workers_never_ran_every_user_is_a_load_generation_problem(tmp_path):
    watch = WorkerWatch(str(tmp_path), expected=2, target_users=100)
    watch.observe([("c1", "spawning", 30), ("c2", "spawning", 30)], True, 1.0)
    watch.observe([("c1", "running", 50), ("c2", "spawning", 40)], True, 2.0)
    watch.write("running", 2.0)
    assert users_problems(str(tmp_path)) == [
        "load generation: at most 90 of the 100 users ran at once: the workers could not start "
        "more before the load stopped (users ÷ spawn_rate longer than the run, or workers short "
        "of CPU: see locust-w*.log)"]
    watch.observe([("c1", "running", 50), ("c2", "running", 50)], True, 3.0)
    watch.observe([("c1", "stopping", 0), ("c2", "stopping", 0)], False, 4.0)
    watch.write("stopped", 4.0)
    registry = json.loads((tmp_path / "load-workers.json").read_text())
    assert (registry["peak_users"], registry["all_users_at"]) == (100, 3.0)
    assert users_problems(str(tmp_path)) == []


def test_the_report_takes_a_seconds_p95_from_every_workers_histogram(tmp_path):
    fast = {"t": 100, "step": "browse", "worker": "w1", "requests": 90, "failures": 0,
            "errors": {}, "carts_lost": 0, "p95": 10.0, "hist": [[10.0, 90]]}
    slow = {**fast, "worker": "w2", "requests": 10, "p95": 500.0, "hist": [[500.0, 10]]}
    (tmp_path / "timeline.jsonl").write_text(f"{json.dumps(fast)}\n{json.dumps(slow)}\n")
    cell = read_run(str(tmp_path)).cells[(100, "browse")]
    assert cell["requests"] == 100 and cell["p95"] == 500.0  # 10 of 100 at 500 ms: p95 is 500
    slow.update(requests=1, hist=[[500.0, 1]])
    (tmp_path / "timeline.jsonl").write_text(f"{json.dumps(fast)}\n{json.dumps(slow)}\n")
    assert read_run(str(tmp_path)).cells[(100, "browse")]["p95"] == 10.0  # not the max of the two


def test_predicted_capacity_is_bounded_by_one_core_per_locust_process_and_by_the_machine():
    from benchkit.locustruns import predicted_rps
    # 0.5 ms per request in Locust, 1.5 ms in the lab, 2 cores: one worker is capped by its core
    assert predicted_rps(0.5, 1.5, workers=1, cores=2) == 1000.0
    assert predicted_rps(0.5, 1.5, workers=2, cores=2) == 1000.0  # the lab then fills the cores
    assert predicted_rps(2.0, 0.5, workers=2, cores=2) == 800.0
    assert predicted_rps(0.0, 1.0, workers=1) == 0.0  # nothing measured
