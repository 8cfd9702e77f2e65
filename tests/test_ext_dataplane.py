"""Data-plane probes against a real redis-server started by the test (own free port, own dir)."""
import socket
import subprocess
import threading
import time

import pytest

from chaosext import dataplane, watch_registry
from chaosext.attempts import Attempt, unanswered
from chaosext.errors import ActivityError
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso, parse_time

REDIS = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, port, tmp_path, *extra):
        self.args = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(tmp_path), *extra]
        self.port = port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        if not poll_until(self.answers, 5, 0.02):
            raise RuntimeError("redis-server did not start")
        return self

    def answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(free_port(), tmp_path)
    yield server.start()
    server.stop()


def config(port, kind="redis"):
    return {f"{kind}_host": "127.0.0.1", f"{kind}_port": port, "dataplane_attempt_timeout": 0.3}


def test_redis_writable_writes_through_the_endpoint(redis_server):
    assert dataplane.redis_writable(configuration=config(redis_server.port)) is True
    client = dataplane.redis_client(config(redis_server.port))
    assert client.get(dataplane.PROBE_KEY) is not None
    assert 0 < client.pttl(dataplane.PROBE_KEY) <= 60000


def test_redis_writable_fails_clearly_when_endpoint_is_down():
    port = free_port()
    with pytest.raises(ActivityError, match=f"redis endpoint 127.0.0.1:{port} is not writable: "
                       "ConnectionError"):
        dataplane.redis_writable(configuration=config(port))


def test_read_only_replica_is_not_writable(tmp_path):
    replica = RedisServer(free_port(), tmp_path, "--replicaof", "127.0.0.1", str(free_port()))
    replica.start()
    try:
        with pytest.raises(ActivityError, match="ReadOnlyError"):
            dataplane.redis_writable(configuration=config(replica.port))
    finally:
        replica.stop()


def test_a_write_slower_than_one_measured_attempt_still_passes_the_writable_check(redis_server):
    conf = {**config(redis_server.port), "dataplane_check_timeout": 2.0}
    admin = dataplane.redis_client(conf)
    admin.execute_command("CLIENT", "PAUSE", "700", "WRITE")  # writes wait 0.7 s, as on a busy node
    outcome = dataplane.attempt_write("redis", conf)
    assert not outcome.ok and "Timeout" in outcome.why  # the outage measurement's attempt gives up
    assert outcome.timed_out and outcome.known_not_writable_at == outcome.started  # no answer came
    admin.execute_command("CLIENT", "PAUSE", "700", "WRITE")
    began = time.monotonic()
    assert dataplane.redis_writable(configuration=conf) is True  # the steady-state check waits for it
    assert time.monotonic() - began >= 0.5  # it was slow, and acknowledged


def test_a_hung_endpoint_fails_the_writable_check_within_its_timeout(redis_server):
    conf = {**config(redis_server.port), "dataplane_check_timeout": 0.5}
    dataplane.redis_client(conf).execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    began = time.monotonic()
    with pytest.raises(ActivityError, match="is not writable: TimeoutError"):
        dataplane.redis_writable(configuration=conf)
    assert time.monotonic() - began < 2.0


def test_mysql_writable_without_an_endpoint_is_skipped_but_waiting_needs_one(monkeypatch):
    monkeypatch.delenv("GAMEDAY_MYSQL_HOST", raising=False)
    assert dataplane.mysql_writable(configuration={}) is True  # optional: skipped, "not measured"
    with pytest.raises(ActivityError, match="no mysql endpoint configured: set `mysql_host`"):
        dataplane.wait_until_writable("mysql", configuration={})


def test_mysql_down_reports_errno_2003():
    with pytest.raises(ActivityError, match="MySQL error 2003"):
        dataplane.mysql_writable(configuration=config(free_port(), "mysql"))


def test_attempts_to_one_endpoint_are_at_least_100ms_apart():
    conf = config(free_port())
    starts = [dataplane.attempt_write("redis", conf)[2] for _ in range(5)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.099, gaps


def test_wait_until_writable_rejects_unknown_kind():
    with pytest.raises(ActivityError, match="unknown data-plane kind 'postgres'"):
        dataplane.wait_until_writable("postgres", configuration={})


def test_wait_until_writable_returns_at_once_when_writable(redis_server):
    result = dataplane.wait_until_writable("redis", timeout=2, configuration=config(redis_server.port))
    assert result["first_failure_at"] is None
    assert result["writable_again_at"] == result["first_success_at"]


def test_wait_until_writable_measures_an_outage(redis_server):
    conf = config(redis_server.port)
    redis_server.stop()
    down_at = time.time()
    result_holder = {}
    thread = threading.Thread(target=lambda: result_holder.update(
        dataplane.wait_until_writable("redis", timeout=10, expect_outage=True, configuration=conf)))
    thread.start()
    assert poll_until(lambda: any(o["kind"] == "redis" for o in watch_registry.live_outages()), 5)
    redis_server.start()
    up_at = time.time()
    thread.join()
    result = result_holder
    failed = parse_time(result["first_failure_at"]).timestamp()
    again = parse_time(result["writable_again_at"]).timestamp()
    assert down_at - 0.001 <= failed <= down_at + 0.2  # ISO keeps milliseconds
    last_refused, acknowledged = (parse_time(t).timestamp() for t in result["writable_again_between"])
    assert last_refused <= up_at + 0.001 < acknowledged + 0.001  # the server came back in between
    # (last_refused is that attempt's end: a refusal is an answer, chaosext/attempts.py)
    assert acknowledged <= up_at + 0.4  # one 100 ms poll plus connect time
    assert acknowledged - last_refused <= 0.1 + 0.25 + 0.05  # one pacing step plus one attempt
    assert abs(again - (last_refused + acknowledged) / 2) <= 0.001  # the middle, to the millisecond
    assert result["attempts"] <= (again - failed) / 0.1 + 2


def test_wait_until_writable_with_expected_outage_times_out_clearly(redis_server):
    with pytest.raises(ActivityError, match="stayed writable for 0.3 s"):
        dataplane.wait_until_writable("redis", timeout=0.3, expect_outage=True,
                                      configuration=config(redis_server.port))


def test_writable_again_is_the_middle_of_the_last_refusal_and_the_first_acknowledged_write(monkeypatch):
    """The endpoint came back at some moment between the answer to the last failed attempt and
    the end of the first acknowledged write; the watch reports that interval and its middle."""
    script = iter([Attempt(False, "refused", 10.000, 10.001), Attempt(False, "refused", 10.100, 10.102),
                   Attempt(True, None, 10.200, 10.230), Attempt(True, None, 10.300, 10.310)])
    monkeypatch.setattr(dataplane, "attempt_write", lambda *args: next(script))
    watch = dataplane.WriteWatch("redis", config(6379))
    assert [watch.step() for _ in range(4)] == [False, False, True, True]
    assert watch.first_failure_at == 10.000
    assert watch.writable_again_between == (10.102, 10.230)
    assert watch.writable_again_at == pytest.approx(10.166)
    assert watch.result()["writable_again_between"] == [iso(10.102), iso(10.230)]
    assert watch.outage_seconds == pytest.approx(0.166)


def test_an_attempt_that_hung_past_the_moment_the_endpoint_moved_does_not_make_the_recovery_late(monkeypatch):
    """An AZ power interruption: the last failed attempt resolved the endpoint to the powered-off
    primary just before the record moved and hung there for its whole 0.25 s timeout, so it ended
    after the endpoint was writable again. A timeout proves nothing past its start; counted from
    its end, the estimate came out 0.25 s after the lab's own record."""
    moved_at = 49.484  # when the lab's own probe first wrote through the moved endpoint
    script = iter([Attempt(False, "Timeout connecting", 49.190, 49.440, timed_out=True),
                   Attempt(False, "Timeout connecting", 49.440, 49.690, timed_out=True),
                   Attempt(True, None, 49.690, 49.780)])
    monkeypatch.setattr(dataplane, "attempt_write", lambda *args: next(script))
    watch = dataplane.WriteWatch("redis", config(6379))
    assert [watch.step() for _ in range(3)] == [False, False, True]
    low, high = watch.writable_again_between
    assert (low, high) == (49.440, 49.780) and low <= moved_at <= high
    assert watch.writable_again_at == pytest.approx(49.610)
    assert abs(watch.writable_again_at - moved_at) <= (high - low) / 2


def test_a_write_held_until_the_primary_was_demoted_counts_from_its_answer(monkeypatch):
    """A cache TestFailover: the old primary pauses writes, so an attempt waits there until the
    demotion answers it READONLY, the moment the record moves. That answer is evidence up to its
    end; counting from the attempt's start would put the estimate up to half a timeout early."""
    script = iter([Attempt(False, "ReadOnlyError: You can't write against a read only replica.", 20.000, 20.180),
                   Attempt(True, None, 20.181, 20.186)])
    monkeypatch.setattr(dataplane, "attempt_write", lambda *args: next(script))
    watch = dataplane.WriteWatch("redis", config(6379))
    assert [watch.step() for _ in range(2)] == [False, True]
    assert watch.writable_again_between == (20.180, 20.186)


def test_a_timeout_is_told_apart_from_an_answer_for_both_clients(redis_server):
    """Real errors: a connection refused, a Redis write paused past its timeout, and a MySQL
    handshake that never comes (a listener nobody serves)."""
    refused = dataplane.attempt_write("redis", config(free_port()))
    assert not refused.ok and not refused.timed_out and refused.known_not_writable_at == refused.finished
    conf = config(redis_server.port)
    dataplane.redis_client(conf).execute_command("CLIENT", "PAUSE", "1000", "WRITE")
    paused = dataplane.attempt_write("redis", conf)
    assert not paused.ok and paused.timed_out
    with socket.socket() as silent:  # accepts in the kernel's backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        hung = dataplane.attempt_write("mysql", config(silent.getsockname()[1], "mysql"))
    assert not hung.ok and "MySQL error 2013" in hung.why and hung.timed_out
    assert not unanswered(ValueError("not a timeout"))
