"""The Multi-AZ DB cluster lab (`gameday lab up --db cluster`), started once for this module.

Its API shapes (DescribeDBClusters, members in DescribeDBInstances), its DNS answers before and
after a failover, FailoverDBCluster with and without a target, the refusals that change nothing,
the automatic failover of a crashed writer and of a hung one (back as a read-only reader),
partition-then-crash of the writer (no acknowledged commit lost), a cut that outlasts the
failover (only its own AZ cut) and whose promoted writer waits for its readers, a writer lost
with no reader available (restarted in place), the pack's FIS cluster failover with its
guardrails and preflight, and (slow) the cluster game days (API, FIS), the AZ power
interruption, and 20 failovers under continuous commits.
"""
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import dns.message
import dns.query
import pymysql
import pytest
from conftest import assert_cluster_whole, rds_client
from botocore.exceptions import ClientError

from groundfloor.resolve import Resolver
from groundfloor.supervisor import ProcessId, poll_until
from network_helpers import cut_az, partition_then_crash
from woolab import manage, servers
from woolab.config import DB_CLUSTER_ID
from woolab.measure import EndpointWriter
from woolab.timing import PROFILES

pytestmark = pytest.mark.lab
CLUSTER = DB_CLUSTER_ID
FAST_BOUND = 3.0  # seconds: cluster endpoint writable / reader endpoint serving after FailoverDBCluster
# a hung writer: the fast profile's detection (db_detection_seconds) plus the failover's own bound
HANG_BOUND = PROFILES["fast"].db_detection_seconds + FAST_BOUND


@pytest.fixture(autouse=True)
def _cluster_whole_after_each_test(cluster_lab):
    """Every test starts on, and leaves, a whole cluster: available, both readers replicating."""
    yield
    assert_cluster_whole(cluster_lab, 60)


@pytest.fixture
def rds(cluster_lab):
    return rds_client(cluster_lab)


def describe(rds) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]


def writer_of(cluster: dict) -> str:
    return next(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"])


def readers_of(cluster: dict) -> list:
    return sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if not m["IsClusterWriter"])


def connect(lab, name: str) -> pymysql.connections.Connection:
    host = Resolver(lab.env["GAMEDAY_DNS_SERVER"], cache_seconds=0).address(name)
    return pymysql.connect(ssl_disabled=True, host=host, port=int(lab.env["GAMEDAY_MYSQL_PORT"]), user="shop",
                           password=lab.env["GAMEDAY_MYSQL_PASSWORD"], database="shop", autocommit=True,
                           connect_timeout=0.5, read_timeout=2, write_timeout=2)


def commit(lab, value: str) -> bool:
    """One row committed through the cluster endpoint (resolved afresh); False when refused."""
    try:
        conn = connect(lab, lab.env["GAMEDAY_MYSQL_HOST"])
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS cluster_probe (v VARCHAR(64) PRIMARY KEY)")
                cur.execute("INSERT INTO cluster_probe VALUES (%s)", (value,))
            return True
        finally:
            conn.close()
    except pymysql.MySQLError:
        return False


def read_through(lab, name: str, value: str) -> bool:
    """Whether `value` can be read through endpoint `name` now."""
    try:
        conn = connect(lab, name)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM cluster_probe WHERE v = %s", (value,))
                return cur.fetchone()[0] == 1
        finally:
            conn.close()
    except pymysql.MySQLError:
        return False


def wait_available(rds, timeout: float = 30) -> dict:
    seen = {}

    def available() -> bool:
        seen.update(describe(rds))
        return seen["Status"] == "available"
    assert poll_until(available, timeout, 0.1), seen["Status"]
    return seen


def ttl_of(lab, name: str) -> int:
    host, port = lab.env["GAMEDAY_DNS_SERVER"].split(":")
    answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=2)
    return answer.answer[0].ttl


def test_describe_db_clusters_shows_a_writer_and_two_readers_in_three_azs(cluster_lab, rds):
    cluster = describe(rds)
    assert cluster["Status"] == "available" and cluster["MultiAZ"] is True
    assert cluster["AvailabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert len(readers_of(cluster)) == 2 and writer_of(cluster) not in readers_of(cluster)
    assert cluster["Endpoint"] == cluster_lab.env["GAMEDAY_MYSQL_HOST"]
    assert cluster["Endpoint"].startswith(f"{CLUSTER}.cluster-") and ".cluster-ro-" in cluster["ReaderEndpoint"]
    assert {"Key": "chaos:allowed", "Value": "true"} in cluster["TagList"]
    tags = rds.list_tags_for_resource(ResourceName=cluster["DBClusterArn"])["TagList"]
    assert tags == cluster["TagList"]
    members = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]
    assert sorted(m["DBInstanceIdentifier"] for m in members) == sorted(
        m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"])
    assert {m["AvailabilityZone"] for m in members} == set(cluster["AvailabilityZones"])
    assert all(m["DBClusterIdentifier"] == CLUSTER and m["DBInstanceStatus"] == "available" for m in members)


def test_endpoints_name_the_writer_the_readers_and_each_member_with_the_profile_ttl(cluster_lab, rds):
    cluster = describe(rds)
    resolver = Resolver(cluster_lab.env["GAMEDAY_DNS_SERVER"], cache_seconds=0)
    ips = {m["DBInstanceIdentifier"]: resolver.address(m["Endpoint"]["Address"])
           for m in rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]}
    assert len(set(ips.values())) == 3
    assert resolver.addresses(cluster["Endpoint"]) == [ips[writer_of(cluster)]]
    answers = [resolver.addresses(cluster["ReaderEndpoint"]) for _ in range(4)]
    assert all(len(a) == 1 for a in answers)  # one reader per answer, in turn
    assert {a[0] for a in answers} == {ips[r] for r in readers_of(cluster)}
    assert ttl_of(cluster_lab, cluster["Endpoint"]) == ttl_of(cluster_lab, cluster["ReaderEndpoint"]) == 1


def test_a_commit_reaches_the_readers_semi_synchronously(cluster_lab, rds):
    conn = connect(cluster_lab, cluster_lab.config.db_member_endpoint_name(writer_of(describe(rds))))
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                    "('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')")
        status = dict(cur.fetchall())
    conn.close()
    assert status == {"Rpl_semi_sync_master_status": "ON", "Rpl_semi_sync_master_clients": "2"}
    value = f"semi-{time.time()}"
    assert commit(cluster_lab, value)
    assert poll_until(lambda: read_through(cluster_lab, cluster_lab.env["GAMEDAY_MYSQL_READER_HOST"], value), 5, 0.05)


def test_failover_without_a_target_promotes_a_reader_within_the_fast_bounds(cluster_lab, rds):
    before = describe(rds)
    value = f"before-{time.time()}"
    assert commit(cluster_lab, value)
    asked = time.monotonic()
    answer = rds.failover_db_cluster(DBClusterIdentifier=CLUSTER)["DBCluster"]
    assert answer["Status"] == "failing-over"
    writable = poll_until(lambda: commit(cluster_lab, f"w-{time.time()}") and time.monotonic(), 10, 0.02)
    serving = poll_until(lambda: read_through(cluster_lab, before["ReaderEndpoint"], value) and time.monotonic(),
                         10, 0.02)
    assert writable and writable - asked <= FAST_BOUND, writable and writable - asked
    assert serving and serving - asked <= FAST_BOUND
    after = wait_available(rds)
    assert writer_of(after) in readers_of(before) and writer_of(before) in readers_of(after)
    resolver = Resolver(cluster_lab.env["GAMEDAY_DNS_SERVER"], cache_seconds=0)
    new_ip = resolver.address(cluster_lab.config.db_member_endpoint_name(writer_of(after)))
    assert resolver.addresses(after["Endpoint"]) == [new_ip]
    assert new_ip not in {resolver.address(after["ReaderEndpoint"]) for _ in range(4)}
    messages = [e["Message"] for e in rds.describe_events(SourceType="db-cluster", SourceIdentifier=CLUSTER,
                                                            Duration=5)["Events"]]
    assert f"Started cross AZ failover to DB instance: {writer_of(after)}" in messages
    assert f"Completed failover to DB instance: {writer_of(after)}" in messages
    assert read_through(cluster_lab, after["Endpoint"], value)  # nothing acknowledged was lost


def test_failover_to_a_named_reader_makes_it_the_writer(cluster_lab, rds):
    target = readers_of(describe(rds))[-1]
    rds.failover_db_cluster(DBClusterIdentifier=CLUSTER, TargetDBInstanceIdentifier=target)
    assert writer_of(wait_available(rds)) == target


def test_lab_failover_db_on_the_command_line_fails_the_cluster_over(cluster_lab, rds):
    before = writer_of(describe(rds))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "failover", "db",
                           "--state-dir", str(cluster_lab.state_dir)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "db failover done\n", done.stderr
    assert writer_of(describe(rds)) != before


def test_a_bad_target_or_a_busy_cluster_is_refused_and_nothing_changes(cluster_lab, rds):
    before = describe(rds)
    for target, why in (("no-such-instance", "is not a member"), (writer_of(before), "is the writer")):
        with pytest.raises(ClientError) as err:
            rds.failover_db_cluster(DBClusterIdentifier=CLUSTER, TargetDBInstanceIdentifier=target)
        assert err.value.response["Error"]["Code"] == "InvalidDBInstanceState" and why in str(err.value)
    assert describe(rds) == before
    with pytest.raises(ClientError) as err:
        rds.failover_db_cluster(DBClusterIdentifier="no-such-cluster")
    assert err.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    rds.failover_db_cluster(DBClusterIdentifier=CLUSTER)
    with pytest.raises(ClientError) as err:
        rds.failover_db_cluster(DBClusterIdentifier=CLUSTER)
    assert err.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"
    wait_available(rds)


def test_a_crashed_writer_fails_over_by_itself_and_rejoins_as_a_reader(cluster_lab, rds):
    before = describe(rds)
    since = time.time()
    cluster_lab.call(f"/_lab/crash?id={writer_of(before)}")
    assert poll_until(lambda: writer_of(describe(rds)) != writer_of(before), 20, 0.2)
    after = wait_available(rds)
    assert writer_of(before) in readers_of(after)
    assert poll_until(lambda: commit(cluster_lab, f"crash-{time.time()}"), 10, 0.05)
    completed = [e for e in cluster_lab.events(since) if e.get("event_id") == "RDS-EVENT-0071"]
    assert completed and completed[0]["source_type"] == "db-cluster"


def member_read_only(lab, name: str) -> int:
    """@@read_only of one member, asked through its instance endpoint."""
    conn = connect(lab, lab.config.db_member_endpoint_name(name))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@read_only")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_hung_writer_fails_over_by_itself_and_rejoins_as_a_reader_not_a_second_writer(cluster_lab, rds):
    before = describe(rds)
    writer = writer_of(before)
    kept = f"hang-kept-{time.time()}"
    assert commit(cluster_lab, kept)
    hung = ProcessId.of(cluster_lab.snapshot()["db_clusters"][CLUSTER]["nodes"][writer]["pid"])
    cluster_lab.call(f"/_lab/freeze?id={writer}")  # SIGSTOP: the host hangs, its connections hang
    frozen = time.monotonic()
    writable = poll_until(lambda: commit(cluster_lab, f"hang-{time.time()}") and time.monotonic(), 20, 0.05)
    assert writable and writable - frozen <= HANG_BOUND, writable and writable - frozen
    print(f"hung writer: cluster endpoint writable {writable - frozen:.2f} s after SIGSTOP")
    after = describe(rds)
    assert writer_of(after) in readers_of(before)
    assert not hung.alive()  # terminated before the promotion: nothing left for a SIGCONT to resume
    wait_available(rds, 60)
    assert manage.converged(cluster_lab.state_dir, 60)["converged"]
    cluster_lab.call(f"/_lab/thaw?id={writer}")  # SIGCONT to the member by name, as `gameday lab thaw` does
    after = describe(rds)
    assert writer_of(after) != writer and writer in readers_of(after)
    assert member_read_only(cluster_lab, writer) == 1  # a reader, never a second writer
    conn = connect(cluster_lab, cluster_lab.config.db_member_endpoint_name(writer))
    try:
        with pytest.raises(pymysql.MySQLError) as refused, conn.cursor() as cur:
            cur.execute("INSERT INTO cluster_probe VALUES (%s)", (f"old-writer-{time.time()}",))
    finally:
        conn.close()
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    resolver = Resolver(cluster_lab.env["GAMEDAY_DNS_SERVER"], cache_seconds=0)
    assert resolver.addresses(after["Endpoint"]) == [
        resolver.address(cluster_lab.config.db_member_endpoint_name(writer_of(after)))]
    assert read_through(cluster_lab, after["Endpoint"], kept)


def test_partition_then_crash_of_the_writer_loses_no_acknowledged_commit(cluster_lab):
    """The writer's AZ cut from the readers' (DB nodes only) for 2.5 s under commits with a 1 s
    timeout, the writer killed, the cut cleared once a reader is the writer; two trials."""
    trials = [partition_then_crash(cluster_lab.config, cluster_lab.env, "db", service="db", write_timeout=1.0)
              for _ in range(2)]
    print("partition-then-crash trials:", trials)
    for trial in trials:
        assert trial["moved"] and trial["writable_again"] and trial["healed"], trial
        assert trial["acknowledged"] >= 5 and trial["lost"] == [], trial
        assert trial["acknowledged_during_cut"] == 0, trial  # nothing acknowledged without a reader
    assert trials[0]["old_primary"] != trials[1]["old_primary"]


def replication_of(lab, name: str) -> dict:
    """One member's replication, asked over its unix socket (past the network layer): whether its
    I/O thread runs, and how many readers acknowledge its commits semi-synchronously."""
    try:
        conn = servers.mysql_root(lab.config.path("run"), name, timeout=1.0, read_timeout=3.0)
    except pymysql.MySQLError:
        return {"io": None, "semi_sync_clients": None}  # not running (being rebuilt)
    try:
        slave = servers.sql_dict(conn, "SHOW SLAVE STATUS")
        clients = servers.sql(conn, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")[0][1]
    finally:
        conn.close()
    return {"io": slave[0]["Slave_IO_Running"] if slave else None, "semi_sync_clients": int(clients)}


def holds(lab, name: str, value: str) -> bool:
    """Whether member `name` holds `value`, asked over its unix socket."""
    try:
        conn = servers.mysql_root(lab.config.path("run"), name, timeout=1.0, read_timeout=3.0)
    except pymysql.MySQLError:
        return False
    try:
        return servers.sql(conn, "SELECT COUNT(*) FROM shop.cluster_probe WHERE v = %s", (value,))[0][0] == 1
    except pymysql.MySQLError:  # the table itself has not reached it
        return False
    finally:
        conn.close()


def test_a_cut_that_outlasts_the_failover_cuts_only_its_own_az(cluster_lab, rds):
    """The writer's AZ cut from the others (DB nodes only), the writer killed, the cut kept: the
    reader outside the cut replicates from the promoted writer and acknowledges its commits,
    while the old writer, inside the cut, replicates from nobody until the cut ends."""
    before = describe(rds)
    old = writer_of(before)
    az = next(m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"] if m["DBInstanceIdentifier"] == old)
    assert poll_until(lambda: cut_az(cluster_lab.config, az, "db"), 30, 0.2)
    try:
        cluster_lab.call(f"/_lab/crash?id={old}")
        assert poll_until(lambda: writer_of(describe(rds)) != old, 20, 0.2)
        new = writer_of(describe(rds))
        other = next(r for r in readers_of(before) if r != new)
        assert poll_until(lambda: replication_of(cluster_lab, other)["io"] == "Yes", 15, 0.2), \
            replication_of(cluster_lab, other)
        assert replication_of(cluster_lab, new)["semi_sync_clients"] == 1
        value = f"cut-kept-{time.time()}"
        assert commit(cluster_lab, value)
        assert poll_until(lambda: read_through(cluster_lab, cluster_lab.config.db_member_endpoint_name(other), value),
                          5, 0.05)
        assert poll_until(lambda: replication_of(cluster_lab, old)["io"] is not None, 20, 0.2)  # told to replicate
        assert not poll_until(lambda: holds(cluster_lab, old, value), 3, 0.2)  # nothing crosses the cut
    finally:
        cluster_lab.call("/_lab/network?clear=1")
    wait_available(rds, 60)
    assert poll_until(lambda: replication_of(cluster_lab, old)["io"] == "Yes", 60, 0.2)


def az_of(rds, name: str) -> str:
    return next(m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"] if m["DBInstanceIdentifier"] == name)


def test_a_writer_promoted_during_a_cut_acknowledges_nothing_its_reader_lacks(cluster_lab, rds):
    """The writer's AZ cut and the writer killed: the promoted writer waits for its remaining
    reader as the old one did, so when a second cut separates that reader too, commits go
    unacknowledged (an outage) instead of being acknowledged by the writer alone after
    MariaDB's 2 s fallback, which a crash of the writer would then lose."""
    before = describe(rds)
    old = writer_of(before)
    assert poll_until(lambda: cut_az(cluster_lab.config, az_of(rds, old), "db"), 30, 0.2)
    try:
        cluster_lab.call(f"/_lab/crash?id={old}")
        assert poll_until(lambda: writer_of(describe(rds)) != old, 20, 0.2)
        new = writer_of(describe(rds))
        other = next(r for r in readers_of(before) if r != new)
        assert poll_until(lambda: replication_of(cluster_lab, other)["io"] == "Yes", 15, 0.2)
        assert poll_until(lambda: commit(cluster_lab, f"before-second-cut-{time.time()}"), 10, 0.05)
        writer = EndpointWriter(cluster_lab.env, "db", table="cut_twice", timeout=1.0)  # its table, before the cut
        assert cut_az(cluster_lab.config, az_of(rds, other), "db")
        writer.start()
        try:  # longer than MariaDB's 2 s fallback and a few client timeouts
            poll_until(lambda: len(writer.failure_times) >= 4 or writer.acked, 15, 0.05)
        finally:
            writer.finish()
        assert writer.acked == [] and len(writer.failure_times) >= 4, (writer.acked, writer.failure_times)
    finally:
        cluster_lab.call("/_lab/network?clear=1")
    wait_available(rds, 60)


OUT_OF_POWER = 20  # seconds the readers' AZs are out of power in the restart-in-place test


def test_a_writer_lost_while_no_reader_is_available_is_restarted_in_place_never_promoting_a_reader(
        cluster_lab, rds):
    before = describe(rds)
    writer = writer_of(before)
    kept = f"kept-{time.time()}"
    assert commit(cluster_lab, kept)
    zones = {m["DBInstanceIdentifier"]: m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]}
    since = time.time()
    for reader in readers_of(before):
        # long enough that the writer crashes, and must be back, well before the readers' power
        # returns, even when the lab takes seconds to notice both readers gone on a busy machine
        cluster_lab.call(f"/_lab/interrupt-az?id={zones[reader]}&seconds={OUT_OF_POWER}")

    def readers_lost() -> bool:
        nodes = cluster_lab.snapshot()["db_clusters"][CLUSTER]["nodes"]
        return all(nodes[r]["status"] != "available" for r in readers_of(before))
    assert poll_until(readers_lost, 12, 0.1)  # the lab's monitoring saw both readers go
    cluster_lab.call(f"/_lab/crash?id={writer}")
    crashed = time.monotonic()
    writable = poll_until(lambda: commit(cluster_lab, f"restarted-{time.time()}") and time.monotonic(), 15, 0.05)
    assert writable and writable - crashed <= 6.0, "the writer was not restarted in place"
    assert time.time() < since + OUT_OF_POWER, "the readers' power returned first: nothing proven"
    assert writer_of(describe(rds)) == writer and read_through(cluster_lab, cluster_lab.env["GAMEDAY_MYSQL_HOST"], kept)
    def writer_events() -> list:
        return [e["event_id"] for e in cluster_lab.events(since) if e.get("source_id") == writer and e.get("event_id")]
    # the restart is announced once the writer took its first commit, which the test may see first
    assert poll_until(lambda: writer_events() == ["RDS-EVENT-0004", "RDS-EVENT-0006"], 5, 0.1), writer_events()
    events = cluster_lab.events(since)
    assert not [e for e in events if e.get("event_id") in ("RDS-EVENT-0073", "RDS-EVENT-0071")]  # no promotion


def test_the_writer_az_losing_power_fails_over_and_its_member_rejoins_when_power_returns(cluster_lab, rds):
    before = describe(rds)
    az = next(m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]
        if m["DBInstanceIdentifier"] == writer_of(before))
    powered_off = cluster_lab.call(f"/_lab/interrupt-az?id={az}&seconds=8")["powered_off"]
    assert writer_of(before) in powered_off
    assert poll_until(lambda: writer_of(describe(rds)) != writer_of(before), 20, 0.2)
    assert poll_until(lambda: commit(cluster_lab, f"power-{time.time()}"), 10, 0.05)
    assert poll_until(lambda: not cluster_lab.call("/_lab/converged?timeout=0", method="GET")["problems"], 60, 0.5)
    members = {m["DBInstanceIdentifier"]: m["DBInstanceStatus"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]}
    assert writer_of(before) in readers_of(describe(rds)) and set(members.values()) == {"available"}


def test_chaostoolkit_aws_failover_db_cluster_works_unchanged(cluster_lab, rds, monkeypatch):
    """chaostoolkit-aws sends `TargetDBInstanceIdentifier=None` when no target is given, which
    botocore refuses before any request (docs/db-cluster.md), so it is called with a target."""
    from chaosaws.rds.actions import failover_db_cluster
    cluster_lab.aws_env(monkeypatch)
    target = readers_of(describe(rds))[0]
    answer = failover_db_cluster(CLUSTER, target_db_instance_identifier=target,
                                 configuration={"aws_region": "us-east-1"})
    assert answer["DBCluster"]["Status"] == "failing-over"
    assert writer_of(wait_available(rds)) == target


def test_fis_failover_db_cluster_resolves_the_cluster_by_tag_and_moves_the_writer(cluster_lab, rds):
    fis = boto3.client("fis", endpoint_url=cluster_lab.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="lab", aws_secret_access_key="lab")
    before = writer_of(describe(rds))
    template = fis.create_experiment_template(
        clientToken=str(uuid.uuid4()), description="cluster failover", stopConditions=[{"source": "none"}],
        roleArn="arn:aws:iam::123456789012:role/failover-gameday-fis",
        targets={"cluster": {"resourceType": "aws:rds:cluster", "resourceTags": {"chaos:allowed": "true"},
                             "selectionMode": "ALL"}},
        actions={"failover": {"actionId": "aws:rds:failover-db-cluster", "targets": {"Clusters": "cluster"}}},
    )["experimentTemplate"]["id"]
    experiment = fis.start_experiment(clientToken=str(uuid.uuid4()), experimentTemplateId=template)["experiment"]
    state = {}

    def ended() -> bool:
        state.update(fis.get_experiment(id=experiment["id"])["experiment"]["state"])
        return state["status"] in ("completed", "stopped", "failed")
    assert poll_until(ended, 60, 0.2) and state["status"] == "completed", state
    assert writer_of(describe(rds)) != before


FIS_CONFIG = {"aws_region": "us-east-1", "fis_role_arn": "arn:aws:iam::123456789012:role/failover-gameday-fis"}


def test_the_pack_s_fis_cluster_failover_selects_the_cluster_by_tag_and_id_and_moves_the_writer(
        cluster_lab, rds, monkeypatch):
    from chaosext.fis.actions import failover_db_cluster
    cluster_lab.aws_env(monkeypatch)
    before = writer_of(describe(rds))
    result = failover_db_cluster(db_cluster_identifier=CLUSTER, measure_data_plane=False, poll_interval=0.2,
                                 timeout=60, configuration=FIS_CONFIG)
    assert result["fis"]["state"] == "completed"
    assert result["before"]["targets"]["Clusters"]["filters"] == [{"path": "DBClusterIdentifier", "values": [CLUSTER]}]
    assert result["writer"]["before"] == before and result["writer"]["moved"]
    assert writer_of(wait_available(rds)) == result["writer"]["after"] != before


def test_cluster_guardrails_refuse_on_the_lab_in_one_line_and_change_nothing(cluster_lab, rds, monkeypatch):
    from chaosext.errors import GuardrailRefused
    from chaosext.fis.actions import failover_db_cluster as fis_failover
    from chaosext.rds.actions import failover_db_cluster, force_failover
    cluster_lab.aws_env(monkeypatch)
    fis = boto3.client("fis", endpoint_url=cluster_lab.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="lab", aws_secret_access_key="lab")
    experiments, before = len(fis.list_experiments()["experiments"]), describe(rds)
    member = readers_of(before)[0]
    refusals = {
        "is not in the resource allow-list": lambda: fis_failover(
            db_cluster_identifier=CLUSTER, configuration={**FIS_CONFIG, "aws_allowed_resources": "other"}),
        f"{CLUSTER} is a DB cluster, not a DB instance": lambda: force_failover(CLUSTER, configuration=FIS_CONFIG),
        f"it is a member of DB cluster {CLUSTER}: name the cluster": lambda: failover_db_cluster(
            member, configuration=FIS_CONFIG),
    }
    for why, call in refusals.items():
        with pytest.raises(GuardrailRefused) as err:
            call()
        assert why in str(err.value) and "\n" not in str(err.value) and "nothing was changed" in str(err.value)
    assert describe(rds) == before and len(fis.list_experiments()["experiments"]) == experiments
    rds.failover_db_cluster(DBClusterIdentifier=CLUSTER)
    with pytest.raises(GuardrailRefused, match="it is failing-over, not available"):
        fis_failover(db_cluster_identifier=CLUSTER, configuration=FIS_CONFIG)
    assert len(fis.list_experiments()["experiments"]) == experiments
    wait_available(rds)


def test_the_fis_variant_s_preflight_shows_the_cluster_plan_and_fails_off_the_allow_list(
        cluster_lab, rds, monkeypatch, capsys):
    from gameday import cli
    writer = writer_of(describe(rds))
    monkeypatch.setenv("GAMEDAY_ALLOWED_RESOURCES", "another-cluster")
    code = cli.main(["run", "rds-cluster-failover-fis", "--dry-run", "--state-dir", str(cluster_lab.state_dir)])
    out = capsys.readouterr().out
    plan = next(line for line in out.splitlines() if "cluster failover 1" in line)
    assert f"on DB cluster {CLUSTER}: writer {writer}" in plan and "DBClusterIdentifier" in plan
    row = next(line for line in out.splitlines() if line.startswith("target") and CLUSTER in line)
    assert code == 2 and "FAIL" in row and "not in the resource allow-list" in row and "NOT READY" in out
    assert writer_of(describe(rds)) == writer


@pytest.mark.slow
def test_rds_cluster_failover_game_day_passes_with_rto_and_nothing_lost(cluster_lab, monkeypatch, tmp_path):
    from gameday import request, run
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    on_lab = request.LabRequest(state_dir=cluster_lab.state_dir, db_topology="cluster")
    started = time.monotonic()
    code = run.game_day(request.build("rds-cluster-failover", "lab", lab=on_lab, run_id="cluster",
                                      load=request.LoadRequest(users=8)))
    summary = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    assert code == 0 and summary["verdict"] == "passed", summary["verdict_reasons"]
    assert time.monotonic() - started <= 120
    journal = json.loads((tmp_path / "cluster" / "journal.json").read_text())
    fault = next(a["output"] for a in journal["run"] if a["activity"]["name"] == "rds-cluster-failover")
    assert 0 < fault["rto_seconds"] <= FAST_BOUND and fault["after"]["writer"] != fault["before"]["writer"]


@pytest.mark.slow
def test_rds_cluster_failover_fis_game_day_passes_with_rto_and_nothing_lost(cluster_lab, monkeypatch, tmp_path):
    from gameday import request, run
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    on_lab = request.LabRequest(state_dir=cluster_lab.state_dir, db_topology="cluster")
    code = run.game_day(request.build("rds-cluster-failover-fis", "lab", lab=on_lab, run_id="cluster-fis",
                                      load=request.LoadRequest(users=8)))
    summary = json.loads((tmp_path / "cluster-fis" / "summary.json").read_text())
    assert code == 0 and summary["verdict"] == "passed", summary["verdict_reasons"]
    journal = json.loads((tmp_path / "cluster-fis" / "journal.json").read_text())
    fault = next(a["output"] for a in journal["run"] if a["activity"]["name"] == "fis-rds-cluster-failover")
    assert 0 < fault["rto_seconds"] <= FAST_BOUND and fault["writer"]["moved"]
    assert fault["fis"]["state"] == "completed" and summary["rpo"]["orders_lost"] == 0 < summary["rpo"]["orders_checked"]


def cache_primary_az(cluster_lab) -> str:
    return next(c["az"] for c in cluster_lab.snapshot()["cache_clusters"].values() if c["role"] == "primary")


@pytest.mark.slow
@pytest.mark.timeout(600)  # the interruption lasts 60 s, then recovery and a 35 s pause
def test_az_power_interruption_on_a_cluster_lab_fails_the_cluster_over_through_its_endpoint(
        cluster_lab, rds, monkeypatch, tmp_path):
    from gameday import request, run
    az = cache_primary_az(cluster_lab)  # "primary": the writer and the cache primary in one AZ
    zones = {m["DBInstanceIdentifier"]: m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [CLUSTER]}])["DBInstances"]}
    if zones[writer_of(describe(rds))] != az:
        rds.failover_db_cluster(DBClusterIdentifier=CLUSTER,
                                TargetDBInstanceIdentifier=next(n for n, z in zones.items() if z == az))
        wait_available(rds)
    writer = writer_of(describe(rds))
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    on_lab = request.LabRequest(state_dir=cluster_lab.state_dir, db_topology="cluster")
    code = run.game_day(request.build("az-power-interruption", "lab", lab=on_lab, run_id="azp",
                                      load=request.LoadRequest(users=8)))
    summary = json.loads((tmp_path / "azp" / "summary.json").read_text())
    assert code == 0 and summary["verdict"] == "passed", summary["verdict_reasons"]
    [fault] = summary["faults"]
    actions = {a["action_id"]: a["state"] for a in fault["fis"]["actions"].values()}
    assert actions["aws:rds:failover-db-cluster"] == "completed" and actions["aws:rds:reboot-db-instances"] == "skipped"
    db = fault["recovery"]["rds"]
    assert db["data_plane"]["endpoint"].startswith(cluster_lab.env["GAMEDAY_MYSQL_HOST"])
    assert 0 < db["rto_seconds"] <= 5.0 and writer_of(describe(rds)) != writer
    journal = json.loads((tmp_path / "azp" / "journal.json").read_text())
    events = {r["activity"]["name"]: r["output"] for r in journal["run"] if "events-within" in r["activity"]["name"]}
    assert events["rds-cluster-failover-events-within-rto-threshold"]["met"] is True
    assert events["rds-failover-and-standby-recovery-events-within-rto-threshold"]["skipped"]  # no DB instance
    assert summary["rpo"]["orders_lost"] == 0 < summary["rpo"]["orders_checked"]


@pytest.mark.slow
def test_twenty_failovers_under_continuous_commits_lose_no_acknowledged_commit(cluster_lab, rds):
    acknowledged, stop = [], threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            if commit(cluster_lab, f"stress-{n}"):
                acknowledged.append(f"stress-{n}")
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(20):
            rds.failover_db_cluster(DBClusterIdentifier=CLUSTER)
            wait_available(rds, 60)
            assert manage.converged(cluster_lab.state_dir, 60)["converged"]
    finally:
        stop.set()
        thread.join(10)
    conn = connect(cluster_lab, cluster_lab.env["GAMEDAY_MYSQL_HOST"])
    with conn.cursor() as cur:
        cur.execute("SELECT v FROM cluster_probe WHERE v LIKE 'stress-%%'")
        stored = {row[0] for row in cur.fetchall()}
    conn.close()
    assert len(acknowledged) > 100 and not set(acknowledged) - stored
