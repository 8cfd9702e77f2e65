"""The lab's endpoints behave like AWS's from the client's side: DNS names with a TTL, one host per
node, READONLY on a connection kept to a demoted cache primary, a refused old DB address."""
import json
import socket
import time

import dns.message
import dns.query
import dns.rdatatype
import pymysql
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from groundfloor.resolve import NameNotResolved, Resolver
from groundfloor.supervisor import poll_until
from woolab import manage
from woolab.config import LabConfig

pytestmark = pytest.mark.lab


def record(lab, name):
    """(addresses, ttl) of an A record, straight from the lab's DNS server."""
    host, port = lab.env["GAMEDAY_DNS_SERVER"].split(":")
    reply = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), host, port=int(port), timeout=2)
    rrset = reply.answer[0]
    return sorted(item.address for item in rrset), rrset.ttl


def wait_for(condition, timeout=30.0):
    value = poll_until(condition, timeout, 0.02)
    assert value, "condition not reached in time"
    return value


def healthy(lab):
    snap = lab.snapshot()
    return snap["db_instances"]["shop-db"]["status"] == "available" and all(
        n["status"] == "available" for n in snap["db_instances"]["shop-db"]["nodes"].values()) and \
        snap["replication_groups"]["shop-cache"]["status"] == "available"


def test_endpoints_are_aws_shaped_names_with_the_profile_ttl_and_move_on_failover(lab):
    wait_for(lambda: healthy(lab))
    env = lab.env
    assert env["GAMEDAY_MYSQL_HOST"].endswith(".rds.amazonaws.com")
    assert env["GAMEDAY_REDIS_HOST"].startswith("master.") and env["GAMEDAY_REDIS_HOST"].endswith(".cache.amazonaws.com")
    db = lab.snapshot()["db_instances"]["shop-db"]
    before, ttl = record(lab, env["GAMEDAY_MYSQL_HOST"])
    assert before == [db["nodes"][db["primary"]]["ip"]] and ttl == 1  # fast profile
    readers, _ = record(lab, env["GAMEDAY_REDIS_READER_HOST"])
    replicas = [n["ip"] for n in lab.snapshot()["cache_clusters"].values() if n["role"] == "replica"]
    assert readers == sorted(replicas)
    cached = Resolver(env["GAMEDAY_DNS_SERVER"])  # honours the TTL
    assert cached.address(env["GAMEDAY_MYSQL_HOST"]) == before[0]
    lab.failover_db()
    after, _ = record(lab, env["GAMEDAY_MYSQL_HOST"])
    db = lab.snapshot()["db_instances"]["shop-db"]
    assert after == [db["nodes"][db["primary"]]["ip"]] and after != before
    assert poll_until(lambda: cached.address(env["GAMEDAY_MYSQL_HOST"]) == after[0],
                      ttl + 0.1, 0.02)  # re-resolved once the TTL ran out
    stale = Resolver(env["GAMEDAY_DNS_SERVER"], cache_seconds=3600)
    stale.address(env["GAMEDAY_MYSQL_HOST"])
    lab.failover_db()
    assert stale.address(env["GAMEDAY_MYSQL_HOST"]) == after[0]  # the stale-DNS client keeps the old host
    with pytest.raises(NameNotResolved):
        Resolver(env["GAMEDAY_DNS_SERVER"]).address("no-such-db.lab.rds.amazonaws.com")


def test_a_connection_kept_to_the_old_cache_primary_gets_readonly_after_a_failover(lab):
    wait_for(lambda: healthy(lab))
    env = lab.env
    kept = redis.Redis(host=lab.resolve(env["GAMEDAY_REDIS_HOST"]), port=int(env["GAMEDAY_REDIS_PORT"]),
                       password=env["GAMEDAY_REDIS_PASSWORD"], socket_timeout=5, retry=Retry(NoBackoff(), 0))
    kept.set("kept-before", "1")
    connection = kept.connection_pool.get_connection()
    kept.connection_pool.release(connection)
    lab.failover_cache()
    with pytest.raises(redis.exceptions.ReadOnlyError):
        kept.set("kept-after", "1")
    assert kept.connection_pool.get_connection() is connection  # the same, never-cut connection


def test_the_old_db_primary_address_refuses_connections_until_the_record_moved(lab):
    wait_for(lambda: healthy(lab))
    env = lab.env
    db = lab.snapshot()["db_instances"]["shop-db"]
    old_ip = db["nodes"][db["primary"]]["ip"]
    t0 = time.time()
    lab.failover_db(wait=False)
    wait_for(lambda: any("endpoint unavailable" in e["message"] for e in lab.events(t0)))
    refused_at = None

    def refused():
        nonlocal refused_at
        try:
            socket.create_connection((old_ip, int(env["GAMEDAY_MYSQL_PORT"])), timeout=0.5).close()
            return False
        except ConnectionResetError:  # the relay's listener closing with this attempt in its queue
            return False
        except ConnectionRefusedError:
            refused_at = time.time()
            return True
    wait_for(refused, timeout=5)
    assert lab.resolve(env["GAMEDAY_MYSQL_HOST"]) == old_ip or any(
        "endpoint writable" in e["message"] for e in lab.events(t0))
    lab.wait_idle()
    moved = next(e["time"] for e in lab.events(t0) if "endpoint writable" in e["message"])
    assert refused_at <= moved  # clients of the old address met a refusal while the record pointed there
    conn = pymysql.connect(host=lab.resolve(env["GAMEDAY_MYSQL_HOST"]), port=int(env["GAMEDAY_MYSQL_PORT"]),
                           user=env["GAMEDAY_MYSQL_USER"], password=env["GAMEDAY_MYSQL_PASSWORD"],
                           database=env["GAMEDAY_MYSQL_DATABASE"], ssl_disabled=True, connect_timeout=2)
    conn.close()


@pytest.fixture(scope="module")
def slow_lab(tmp_path_factory, lab):
    """A second lab (no shop) with a timing file: a 4 s DB failover, a 3 s cache failover."""
    state_dir = tmp_path_factory.mktemp("slow-lab")
    timing = state_dir / "timing.json"
    timing.write_text(json.dumps({"name": "test-slow", "db_failover_seconds": 4, "cache_failover_seconds": 3,
                                  "db_dns_ttl_seconds": 2}))
    config = LabConfig.from_env(state_dir=state_dir, base_port=lab.config.base_port + 400, with_shop=False,
                                timing=str(timing))
    manage.up(config)
    yield LabConfig.load(state_dir)
    manage.down(state_dir)


def test_a_timing_file_sets_the_outage_of_each_failover(slow_lab):
    from conftest import LabHandle
    lab = LabHandle(slow_lab)
    assert record(lab, lab.env["GAMEDAY_MYSQL_HOST"])[1] == 2
    for failover, started, planned in ((lab.failover_db, "endpoint unavailable", 4.0),
                                       (lab.failover_cache, "stopped taking writes", 3.0)):
        t0 = time.time()
        failover()
        events = lab.events(t0)
        down = next(e["time"] for e in events if started in e["message"])
        up = next(e["time"] for e in events if "endpoint writable" in e["message"])
        assert planned <= up - down <= planned + 1.5, (failover.__name__, up - down)
