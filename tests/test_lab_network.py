"""The lab's data path and its gray failures: every impairment and its end, on real servers
behind the relay; partition-then-crash trials that must lose no acknowledged write (the 20-trial
loops are in scripts/bench_network.py)."""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import pymysql
import pytest
import redis
from conftest import second_lab_port

from groundfloor.supervisor import poll_until
from network_helpers import fully_redundant, partition_then_crash
from woolab import manage, servers

pytestmark = pytest.mark.lab


def network(lab, **query) -> dict:
    from urllib.parse import urlencode
    return lab.call("/_lab/network?" + urlencode(query))


def impairments(lab) -> list:
    return lab.call("/_lab/network", method="GET")["impairments"]


def redis_rtt_ms(lab, address: str, samples: int = 7) -> float:
    """Median PING round trip to one cache node's public address, in ms."""
    client = redis.Redis(host=address, port=lab.config.cache_primary_port, password=lab.secrets["redis_password"],
                         socket_timeout=5)
    try:
        client.ping()
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            client.ping()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    finally:
        client.close()


def mysql_rtt_ms(lab, address: str) -> float:
    conn = pymysql.connect(host=address, port=lab.config.db_endpoint_port, user="admin",
                           password=lab.secrets["db_admin_password"], connect_timeout=5, read_timeout=5,
                           ssl_disabled=True)
    try:
        times = []
        with conn.cursor() as cur:
            for _ in range(5):
                start = time.perf_counter()
                cur.execute("SELECT 1")
                times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    finally:
        conn.close()


@pytest.fixture
def clean_network(lab):
    network(lab, clear=1)
    yield lab
    network(lab, clear=1)
    assert poll_until(lambda: fully_redundant(lab.config), 90, interval=0.25), "the lab did not heal"


def test_delay_shows_in_round_trips_to_that_az_only_and_clear_restores_the_baseline(clean_network):
    lab = clean_network
    a, b = lab.config.cache_node_address(1), lab.config.cache_node_address(2)  # us-east-1a, us-east-1b
    db_a = lab.config.db_node_address(0)
    network(lab, az="us-east-1a", delay_ms=200, jitter_ms=20, seconds=60)
    assert 180 <= redis_rtt_ms(lab, a) <= 240
    assert 180 <= mysql_rtt_ms(lab, db_a) <= 240
    assert redis_rtt_ms(lab, b) < 20
    cleared_at = time.monotonic()
    network(lab, clear=1)
    assert poll_until(lambda: redis_rtt_ms(lab, a, samples=3) < 20, 1.0, interval=0.01)
    assert time.monotonic() - cleared_at < 1.0


def test_bandwidth_cap_slows_a_large_reply(clean_network):
    lab = clean_network
    client = redis.Redis(host=lab.config.cache_node_address(2), port=lab.config.cache_primary_port,
                         password=lab.secrets["redis_password"], socket_timeout=10)
    try:
        client.ping()
        network(lab, az="us-east-1b", bandwidth_kbps=4000, direction="from", seconds=60)
        payload = b"x" * 500_000
        start = time.perf_counter()
        client.execute_command("ECHO", payload)  # 4 Mbit/s: 0.5 MB takes 1 s back from the node
        took = time.perf_counter() - start
    finally:
        client.close()
    assert 0.9 <= took <= 2.0


def test_loss_stalls_some_round_trips_by_a_retransmission_timeout(clean_network):
    lab = clean_network
    network(lab, az="us-east-1b", loss_percent=30, direction="to", seconds=60)
    client = redis.Redis(host=lab.config.cache_node_address(2), port=lab.config.cache_primary_port,
                         password=lab.secrets["redis_password"], socket_timeout=10)
    try:
        client.ping()
        times = []
        for _ in range(30):
            start = time.perf_counter()
            client.ping()
            times.append(time.perf_counter() - start)
    finally:
        client.close()
    stalled = [t for t in times if t >= 0.19]
    assert 2 <= len(stalled) <= 20 and min(times) < 0.02


def test_blackhole_hangs_connections_keeps_the_processes_and_fails_nothing_over(clean_network):
    lab = clean_network
    pids, before = manage.recorded_pids(lab.state_dir), roles(lab)
    since = time.time()
    network(lab, az="us-east-1a", blackhole=1, seconds=60)
    sock = socket.create_connection((lab.config.cache_node_address(1), lab.config.cache_primary_port), timeout=2)
    sock.settimeout(1.0)
    sock.sendall(b"PING\r\n")
    with pytest.raises(socket.timeout):  # accepted, then nothing: hanging, not refused, not reset
        sock.recv(10)
    sock.close()
    with pytest.raises(pymysql.err.OperationalError):  # no handshake within the connect timeout
        pymysql.connect(ssl_disabled=True, host=lab.config.db_node_address(0), port=lab.config.db_endpoint_port, user="admin",
                        password=lab.secrets["db_admin_password"], connect_timeout=1, read_timeout=1)
    changed = poll_until(lambda: [e for e in lab.events(since) if "ailover" in e["message"]
                                  or "primary" in e["message"]] or roles(lab) != before, 5, interval=0.25)
    assert not changed, changed
    assert manage.recorded_pids(lab.state_dir) == pids
    assert all(servers.pid_alive(pid) for pid in pids.values())
    assert redis_rtt_ms(lab, lab.config.cache_node_address(2)) < 20  # the other AZ answers


def test_an_impairment_ends_when_its_duration_ends(clean_network):
    lab = clean_network
    since = time.time()
    network(lab, az="us-east-1c", delay_ms=50, seconds=1)
    assert impairments(lab)
    assert poll_until(lambda: not impairments(lab), 5, interval=0.05)
    messages = [e["message"] for e in lab.events(since) if e["source_id"] == "us-east-1c"]
    assert any("started" in m for m in messages) and any("its duration ended" in m for m in messages)


def roles(lab) -> dict:
    snap = lab.snapshot()
    db = snap["db_instances"]["shop-db"]
    return {"db": db["primary"], "cache": [n["id"] for n in snap["cache_clusters"].values() if n["role"] == "primary"]}


def test_partition_cuts_replication_but_not_clients(clean_network):
    lab = clean_network
    snap = lab.snapshot()
    node = next(n for n in snap["cache_clusters"].values() if n["role"] == "primary")
    replica = next(n for n in snap["cache_clusters"].values() if n["role"] == "replica")
    network(lab, az=replica["az"], partition="*", seconds=60)
    primary = redis.Redis(host=node["ip"], port=lab.config.cache_primary_port,
                          password=lab.secrets["redis_password"], socket_timeout=2)
    try:
        primary.set("net:cut", "1")
        assert primary.execute_command("WAIT", 1, 300) == 0  # the cut replica never acknowledges
        assert redis_rtt_ms(lab, replica["ip"]) < 20  # the client still reaches it
        network(lab, clear=1)
        assert poll_until(lambda: primary.execute_command("WAIT", 1, 100) == 1, 10)
    finally:
        primary.close()


@pytest.mark.parametrize("args, why", [
    (["us-east-9z", "--delay-ms", "10"], "unknown AZ"),
    (["us-east-1a", "--delay-ms", "-1"], "0 or more"),
    (["us-east-1a", "--loss-percent", "101"], "more than the lab allows"),
    (["us-east-1a", "--bandwidth-kbps", "1e12"], "more than the lab allows"),
    (["us-east-1a", "--partition", "us-east-1a"], "cut from itself"),
    (["us-east-1a", "--delay-ms", "300"], "already has --delay-ms 100"),
    (["us-east-1a", "--blackhole"], "contradict"),
])
def test_bad_input_is_one_line_non_zero_and_changes_nothing(clean_network, args, why):
    lab = clean_network
    network(lab, az="us-east-1a", delay_ms=100, seconds=60)
    network(lab, az="us-east-1a", partition="us-east-1b", seconds=60)
    before = [(i["az"], i["summary"].split(" (")[0]) for i in impairments(lab)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "network", *args, "--state-dir",
                           str(lab.state_dir)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    assert why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert [(i["az"], i["summary"].split(" (")[0]) for i in impairments(lab)] == before


@pytest.mark.parametrize("kind", ["db", "cache"])
def test_partition_then_crash_loses_no_acknowledged_write(lab, kind):
    network(lab, clear=1)
    for _ in range(2):
        trial = partition_then_crash(lab.config, lab.env, kind)
        assert trial["moved"] and trial["writable_again"] and trial["healed"], trial
        assert trial["lost"] == [], trial
        assert trial["acknowledged_during_cut"] == 0, trial  # no write acknowledged without the replica


def test_lab_down_during_an_impairment_leaves_nothing_behind(tmp_path):
    from woolab.config import LabConfig
    from woolab.network import control
    from woolab.network.addresses import server_address
    config = LabConfig.from_env(state_dir=tmp_path / "lab", base_port=second_lab_port(), with_shop=False)
    manage.up(config)
    try:
        control.impair(config.state_dir, {"az": "us-east-1a", "blackhole": "1", "seconds": "600"})
        control.impair(config.state_dir, {"az": "us-east-1b", "delay_ms": "50", "seconds": "600"})
        pids = manage.recorded_pids(config.state_dir)
        public = (config.cache_node_address(1), config.cache_primary_port)
        assert servers.port_in_use(public[1], public[0])  # the relay listens for the node
    finally:
        assert manage.down(config.state_dir) == "lab stopped"
    assert not any(servers.pid_alive(pid) for pid in pids.values())
    for address, port in [public, (server_address(public[0]), public[1]),
                          (config.db_node_address(0), config.db_endpoint_port)]:
        assert not servers.port_in_use(port, address), f"{address}:{port} still listens"
    servers.check_ports_free(config.all_ports())  # every listener of the lab is gone
