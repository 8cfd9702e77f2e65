"""The lab's failover mechanics against the real servers it starts."""
import time

import pymysql
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from groundfloor.supervisor import poll_until
from woolab.measure import EndpointWriter

pytestmark = pytest.mark.lab


def mysql(lab, **kw):
    e = lab.env
    return pymysql.connect(host=lab.resolve(e["GAMEDAY_MYSQL_HOST"]), port=int(e["GAMEDAY_MYSQL_PORT"]),
                           user=e["GAMEDAY_MYSQL_USER"], password=e["GAMEDAY_MYSQL_PASSWORD"],
                           database=e["GAMEDAY_MYSQL_DATABASE"], connect_timeout=1, read_timeout=5,
                           write_timeout=5, autocommit=True, ssl_disabled=True, **kw)


def cache(lab, host_key="GAMEDAY_REDIS_HOST"):
    e = lab.env
    return redis.Redis(host=lab.resolve(e[host_key]), port=int(e["GAMEDAY_REDIS_PORT"]), password=e["GAMEDAY_REDIS_PASSWORD"],
                       socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def wait_for(condition, timeout: float = 15.0) -> None:
    assert poll_until(condition, timeout, 0.02), "condition not reached in time"


def _role(client) -> str:
    """The replication role a (reader endpoint) client sees now; a refused one reconnects."""
    try:
        return client.info("replication")["role"]
    except redis.RedisError:
        client.connection_pool.disconnect()
        return ""


def scalar(conn, statement, args=None):
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchone()[0]


def test_db_force_failover_swaps_roles_azs_and_moves_the_endpoint(lab):
    before = lab.snapshot()["db_instances"]["shop-db"]
    conn = mysql(lab)
    server_before = scalar(conn, "SELECT @@server_id")
    t0 = time.time()
    lab.failover_db()
    after = lab.snapshot()["db_instances"]["shop-db"]
    assert after["status"] == "available"
    assert (after["primary"], after["standby"]) == (before["standby"], before["primary"])
    assert after["nodes"][after["primary"]]["az"] == before["nodes"][before["standby"]]["az"]
    with pytest.raises(pymysql.err.OperationalError):  # the old connection was broken
        scalar(conn, "SELECT 1")
    fresh = mysql(lab)
    assert scalar(fresh, "SELECT @@server_id") != server_before
    assert scalar(fresh, "SELECT @@read_only") == 0
    messages = [e["message"] for e in lab.events(t0) if e["source_type"] == "db-instance"]
    assert messages == ["Multi-AZ instance failover started.", "DB instance restarted",
                        "Multi-AZ instance failover completed"]


def test_db_failover_loses_no_acknowledged_commit_and_replication_recovers(lab):
    writer = EndpointWriter(lab.env, "db")
    writer.start()
    for _ in range(3):
        acked_before = len(writer.acked)
        wait_for(lambda: len(writer.acked) > acked_before + 10)
        lab.failover_db()
    acked_before = len(writer.acked)
    wait_for(lambda: len(writer.acked) > acked_before + 10)
    writer.finish()
    assert len(writer.acked) > 50 and writer.failure_times  # real load, real faults
    assert writer.lost() == []
    stored = len(writer.acked)
    standby = lab.snapshot()["db_instances"]["shop-db"]["standby"]
    replica = pymysql.connect(ssl_disabled=True, unix_socket=str(lab.state_dir / "run" / f"{standby}.sock"), user="root", password="",
                              autocommit=True)
    assert poll_until(lambda: scalar(replica, "SELECT COUNT(*) FROM shop.lab_rpo") >= stored, 5, 0.1), \
        scalar(replica, "SELECT COUNT(*) FROM shop.lab_rpo")
    with replica.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"


def test_cache_primary_loss_promotes_the_replica_and_the_old_primary_returns_as_replica(lab):
    before = lab.snapshot()["cache_clusters"]
    old = next(n for n, v in before.items() if v["role"] == "primary")
    client = cache(lab)
    client.set("before-failover", "1")
    t0 = time.time()
    lab.failover_cache()
    after = lab.snapshot()["cache_clusters"]
    assert after[old]["role"] == "replica"
    new = next(n for n, v in after.items() if v["role"] == "primary")
    assert new != old
    fresh = cache(lab)
    fresh.set("after-failover", "1")
    assert fresh.info("replication")["role"] == "master"
    assert lab.resolve(lab.env["GAMEDAY_REDIS_HOST"]) == after[new]["ip"]  # the DNS record moved
    messages = [e["message"] for e in lab.events(t0) if e["source_type"] != "lab"]
    assert messages == ["Test Failover API called for node group 0001",
                        f"Failover from primary node {old} to replica node {new} completed",
                        "Recovering cache nodes 0001", "Finished recovery for cache nodes 0001"]
    reader = cache(lab, "GAMEDAY_REDIS_READER_HOST")
    assert poll_until(lambda: _role(reader) == "slave", 3, 0.1)


def test_cache_failover_keeps_every_wait_acknowledged_write(lab):
    writer = EndpointWriter(lab.env, "cache", wait_replicas=1)
    writer.start()
    wait_for(lambda: len(writer.acked) > 10)
    lab.failover_cache()
    acked_before = len(writer.acked)
    wait_for(lambda: len(writer.acked) > acked_before + 10)
    writer.finish()
    assert writer.acked and writer.failure_times  # the fault was real and writes resumed
    assert writer.lost() == []


def test_cache_replica_can_be_removed_and_added_back(lab):
    snap = lab.snapshot()
    replica = next(n for n, v in snap["cache_clusters"].items() if v["role"] == "replica")
    lab.call(f"/_lab/cache-delete?id={replica}")
    lab.wait_idle()
    members = lab.snapshot()["replication_groups"]["shop-cache"]["node_groups"]["0001"]["members"]
    assert replica not in members and len(members) == 1
    with pytest.raises(Exception, match="no replica"):
        lab.call("/_lab/cache-failover?id=shop-cache")
    added = lab.call("/_lab/cache-add?id=shop-cache")["id"]
    lab.wait_idle()
    snap = lab.snapshot()
    assert snap["cache_clusters"][added]["role"] == "replica"
    assert len(snap["replication_groups"]["shop-cache"]["node_groups"]["0001"]["members"]) == 2
    assert redis.Redis(host=snap["cache_clusters"][added]["ip"], port=snap["cache_clusters"][added]["port"],
                       password=lab.env["GAMEDAY_REDIS_PASSWORD"]).info("replication")["master_link_status"] == "up"
