"""Readers that lag and the RTO per endpoint on a real Multi-AZ DB cluster lab (its own, once
for this module): a reader delayed with `gameday lab lag` shows in the sampled replica lag while
the other does not, and a FailoverDBCluster gets one figure for the cluster (writer) endpoint
and one for the reader endpoint, each against its own threshold."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymysql
import pytest
from conftest import assert_cluster_whole

from chaosext.rds import actions as rds_actions
from gameday import lag_sampler
from gameday.report.replica_lag import summarize_lag
from groundfloor.resolve import Resolver
from groundfloor.supervisor import poll_until
from woolab import manage
from woolab.config import DB_CLUSTER_ID

pytestmark = pytest.mark.lab
FAST_BOUND = 3.0  # seconds: each endpoint back after FailoverDBCluster (docs/db-cluster.md)
DELAY = 3  # seconds the lagging reader applies commits late


@pytest.fixture(autouse=True)
def _cluster_whole_after_each_test(cluster_lab):
    yield
    assert_cluster_whole(cluster_lab, 60)


@pytest.fixture
def conf(cluster_lab):
    env = cluster_lab.env
    return {"aws_region": "us-east-1", "mysql_host": env["GAMEDAY_MYSQL_HOST"],
            "mysql_reader_host": env["GAMEDAY_MYSQL_READER_HOST"], "mysql_port": env["GAMEDAY_MYSQL_PORT"],
            "mysql_user": env["GAMEDAY_MYSQL_USER"], "mysql_password": env["GAMEDAY_MYSQL_PASSWORD"],
            "mysql_database": env["GAMEDAY_MYSQL_DATABASE"],
            "rto_threshold_seconds": {"rds": 60, "rds-reader": 30}}


def connect(lab, name: str) -> pymysql.connections.Connection:
    host = Resolver(lab.env["GAMEDAY_DNS_SERVER"], cache_seconds=0).address(name)
    return pymysql.connect(host=host, port=int(lab.env["GAMEDAY_MYSQL_PORT"]), user="shop",
                           password=lab.env["GAMEDAY_MYSQL_PASSWORD"], database="shop",
                           autocommit=True, connect_timeout=0.5, read_timeout=2)


def committing(lab, stop: threading.Event, acknowledged: list = None) -> threading.Thread:
    """Commits through the cluster endpoint every 0.1 s until `stop` (the lag needs traffic);
    the values whose commit was acknowledged go to `acknowledged`."""
    acknowledged = [] if acknowledged is None else acknowledged

    def run():
        n = 0
        while not stop.wait(0.1):
            n += 1
            value = f"{time.time()}-{n}"
            try:
                conn = connect(lab, lab.env["GAMEDAY_MYSQL_HOST"])
                try:
                    with conn.cursor() as cur:
                        cur.execute("CREATE TABLE IF NOT EXISTS lag_probe (v VARCHAR(64) PRIMARY KEY)")
                        cur.execute("INSERT INTO lag_probe VALUES (%s)", (value,))
                    acknowledged.append(value)
                finally:
                    conn.close()
            except pymysql.MySQLError:
                pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def lab_lag(lab, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "lag", *args, "--state-dir",
                           str(lab.state_dir)], env=env, capture_output=True, text=True, timeout=60)


def test_a_delayed_reader_shows_in_the_lag_samples_and_the_other_reader_does_not(cluster_lab, tmp_path):
    readers = [r["member"] for r in manage.replica_lag(cluster_lab.state_dir)["readers"]]
    lagging, steady = readers
    done = lab_lag(cluster_lab, lagging, "--seconds", str(DELAY))
    assert done.returncode == 0 and done.stdout == f"{lagging} applies the writer's commits {DELAY} s late\n"
    stop = threading.Event()
    writer = committing(cluster_lab, stop)
    try:
        with lag_sampler.sampling("lab", cluster_lab.state_dir, tmp_path, interval=0.25) as sampling:
            assert sampling
            seen = poll_until(lambda: ((summarize_lag(str(tmp_path)) or {}).get("max_lag_seconds") or 0) >= DELAY - 1,
                              15, 0.25)
    finally:
        lab_lag(cluster_lab, lagging, "--seconds", "0")
        stop.set()
        writer.join(5)
    lag = summarize_lag(str(tmp_path))
    assert seen, lag
    assert lag["readers"][lagging]["max_lag_seconds"] >= DELAY - 1
    assert lag["readers"][lagging]["max_transactions_behind"] > 0
    assert lag["readers"][steady]["max_lag_seconds"] <= 1 and lag["readers"][steady]["samples"] >= 2
    assert poll_until(lambda: all(r["lag_seconds"] == 0 and r["delay_seconds"] == 0 for r in
                                  manage.replica_lag(cluster_lab.state_dir)["readers"]), 15, 0.25)


def test_lab_lag_refuses_the_writer_an_unknown_member_and_a_bad_delay_and_changes_nothing(cluster_lab):
    now = manage.replica_lag(cluster_lab.state_dir)
    reader = now["readers"][0]["member"]
    for args, why in (((now["writer"], "--seconds", "3"), "is the writer"),
                      (("no-such-instance", "--seconds", "3"), "is not a member"),
                      ((reader, "--seconds", "soon"), "whole number of seconds"),
                      ((reader, "--seconds", "99999"), "between 0 and 300"),
                      ((reader,), "give the delay")):
        done = lab_lag(cluster_lab, *args)
        assert done.returncode != 0 and why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done
    assert all(r["delay_seconds"] == 0 for r in manage.replica_lag(cluster_lab.state_dir)["readers"])


def test_cluster_failover_gives_the_writer_and_the_reader_endpoint_each_a_figure(cluster_lab, conf, monkeypatch):
    cluster_lab.aws_env(monkeypatch)
    result = rds_actions.failover_db_cluster(DB_CLUSTER_ID, timeout=90, poll_interval=0.2, configuration=conf)
    assert result["services"] == ["rds", "rds-reader"] and set(result["recovery"]) == {"rds", "rds-reader"}
    writer, reader = result["recovery"]["rds"], result["recovery"]["rds-reader"]
    assert writer["data_plane"]["kind"] == "mysql" and reader["data_plane"]["kind"] == "mysql-reader"
    assert reader["data_plane"]["endpoint"].startswith(conf["mysql_reader_host"])
    assert 0 < writer["rto_seconds"] <= FAST_BOUND and writer["data_plane"]["first_failure_at"] is not None
    assert 0 <= reader["rto_seconds"] <= FAST_BOUND and reader["data_plane"]["attempts"] > 0
    assert result["rto_seconds"] == max(writer["rto_seconds"], reader["rto_seconds"])
    assert result["after"]["writer"] != result["before"]["writer"]


def test_a_failover_to_a_delayed_reader_waits_for_it_to_apply_and_loses_no_commit(cluster_lab, monkeypatch):
    import boto3
    rds = boto3.client("rds", endpoint_url=cluster_lab.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="lab", aws_secret_access_key="lab")
    target = manage.replica_lag(cluster_lab.state_dir)["readers"][0]["member"]
    assert lab_lag(cluster_lab, target, "--seconds", str(DELAY)).returncode == 0
    since, acknowledged, stop = time.time(), [], threading.Event()
    writer = committing(cluster_lab, stop, acknowledged)
    try:
        assert poll_until(lambda: len(acknowledged) >= 10, 10, 0.1)
        rds.failover_db_cluster(DBClusterIdentifier=DB_CLUSTER_ID, TargetDBInstanceIdentifier=target)

        def available() -> bool:
            cluster = rds.describe_db_clusters(DBClusterIdentifier=DB_CLUSTER_ID)["DBClusters"][0]
            return cluster["Status"] == "available"
        assert poll_until(available, 60, 0.2)
    finally:
        stop.set()
        writer.join(5)
    conn = connect(cluster_lab, cluster_lab.env["GAMEDAY_MYSQL_HOST"])
    with conn.cursor() as cur:
        cur.execute("SELECT v FROM lag_probe")
        stored = {row[0] for row in cur.fetchall()}
    conn.close()
    assert not set(acknowledged) - stored and len(acknowledged) >= 10
    events = [e["message"] for e in cluster_lab.events(since)]
    assert f"Completed failover to DB instance: {target}" in events
    assert not [m for m in events if "diverged" in m], events
