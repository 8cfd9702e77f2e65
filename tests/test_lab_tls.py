"""The encrypted lab (`gameday lab up --tls`) against its real servers: TLS only, the Redis ACL
user, replication and Sentinels over TLS, the facade's encryption fields, a game day that passes
through the encrypted paths of the pack, and the preflight's one-line fixes for a plain client,
a wrong CA and a missing user."""
import json
import os
import socket
import ssl

import boto3
import pymysql
import pytest
import redis

from gameday import cli, request, run, safety
from gameday.preflight import reach
from gameday.preflight.context import Context
from test_experiments import primaries_in_one_az
from test_lab_failures import crash_cache_primary_under_writes, healthy_again, messages, wait_for
from woolab import manage, tls
from woolab.measure import EndpointWriter

pytestmark = pytest.mark.lab
# Every failover-shaped experiment of an instance lab: the encrypted paths are the clients' and the
# replicas'; gray failures (tag "impairment") act on bytes, encrypted or not, and run on the plain
# lab (test_network_experiments.py, test_fis_network_experiments.py); DB-cluster experiments need
# a cluster lab (test_lab_cluster.py).
EXPERIMENTS = sorted(p.stem for p in run.EXPERIMENTS_DIR.glob("*.json")
                     if not {"impairment", "db-cluster"} & set(json.loads(p.read_text()).get("tags", [])))


def node_ip(lab, role: str) -> str:
    return next(n["ip"] for n in lab.snapshot()["cache_clusters"].values() if n["role"] == role)


def test_servers_speak_only_tls_and_redis_only_to_the_acl_user(tls_lab):
    env, ca = tls_lab.env, tls_lab.env["GAMEDAY_REDIS_CA"]
    port = tls_lab.config.cache_primary_port
    primary = node_ip(tls_lab, "primary")
    with pytest.raises(redis.ConnectionError):  # plain text to a TLS-only port: closed
        redis.Redis(host=primary, port=port, password=env["GAMEDAY_REDIS_PASSWORD"], socket_timeout=2).ping()
    with pytest.raises(redis.AuthenticationError):  # the default user is off
        redis.Redis(host=primary, port=port, password=env["GAMEDAY_REDIS_PASSWORD"], ssl=True,
                    ssl_ca_certs=ca).ping()
    client = redis.Redis(host=primary, port=port, username=env["GAMEDAY_REDIS_USERNAME"],
                         password=env["GAMEDAY_REDIS_PASSWORD"], ssl=True, ssl_ca_certs=ca)
    assert client.execute_command("ACL", "WHOAMI") in (b"gameday", "gameday")
    client.close()
    db = dict(host=tls_lab.resolve(env["GAMEDAY_MYSQL_HOST"]), port=tls_lab.config.db_endpoint_port,
              user=env["GAMEDAY_MYSQL_USER"], password=env["GAMEDAY_MYSQL_PASSWORD"])
    with pytest.raises(pymysql.err.OperationalError) as refused:  # require_secure_transport
        pymysql.connect(ssl_disabled=True, **db)
    assert refused.value.args[0] == 1045
    conn = pymysql.connect(ssl=ssl.create_default_context(cafile=env["GAMEDAY_MYSQL_CA"]), **db)
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert cur.fetchone()[1].startswith("TLSv1.")
    conn.close()


def plain_reply(port: int) -> bytes:
    """What a port answers a plain-text PING: nothing when it closes or resets the connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as plain:
            plain.sendall(b"PING\r\n")
            return plain.recv(16)
    except ConnectionResetError:
        return b""


def test_replication_and_sentinels_run_over_tls(tls_lab):
    with pymysql.connect(ssl_disabled=True, unix_socket=str(tls_lab.state_dir / "run" / "shop-db-b.sock"), user="root",
                         password="") as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
    assert status["Slave_IO_Running"] == "Yes" and status["Master_SSL_Allowed"] == "Yes"
    assert status["Master_SSL_Verify_Server_Cert"] == "Yes"
    env = tls_lab.env
    replica = redis.Redis(host=node_ip(tls_lab, "replica"), port=tls_lab.config.cache_primary_port,
                          **tls.redis_options(tls.lab_tls(tls_lab.config), env["GAMEDAY_REDIS_PASSWORD"]))
    assert replica.info("replication")["master_link_status"] == "up"  # the replica logged in over TLS
    replica.close()
    for i in range(3):
        port = tls_lab.config.sentinel_port(i)
        assert not plain_reply(port).startswith(b"+")  # no +PONG in plain text
        sentinel = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=env["GAMEDAY_REDIS_CA"])
        master = sentinel.sentinel_master("shop-cache")
        assert master["num-other-sentinels"] == 2 and master["num-slaves"] == 1 and not master["is_sdown"]
        sentinel.close()


def test_facade_reports_in_transit_encryption_and_the_ca(tls_lab, monkeypatch):
    tls_lab.aws_env(monkeypatch)
    group = boto3.client("elasticache").describe_replication_groups()["ReplicationGroups"][0]
    assert group["TransitEncryptionEnabled"] is True and group["TransitEncryptionMode"] == "required"
    assert group["AuthTokenEnabled"] is False and group["UserGroupIds"] == [tls.USER_GROUP_ID]
    for cluster in boto3.client("elasticache").describe_cache_clusters()["CacheClusters"]:
        assert cluster["TransitEncryptionEnabled"] is True
    instance = boto3.client("rds").describe_db_instances()["DBInstances"][0]
    assert instance["CACertificateIdentifier"] == tls.CA_IDENTIFIER
    assert instance["CertificateDetails"]["CAIdentifier"] == tls.CA_IDENTIFIER


def test_lab_env_prints_the_tls_settings_and_up_again_says_tls(tls_lab, capsys):
    state_dir = str(tls_lab.state_dir)
    assert cli.main(["lab", "env", "--state-dir", state_dir]) == 0
    exports = capsys.readouterr().out
    for line in ("export GAMEDAY_REDIS_TLS=true", "export GAMEDAY_MYSQL_TLS=true",
                 f"export GAMEDAY_REDIS_CA={tls_lab.state_dir / 'tls' / 'ca.pem'}",
                 f"export GAMEDAY_MYSQL_CA={tls_lab.state_dir / 'tls' / 'ca.pem'}",
                 "export GAMEDAY_REDIS_USERNAME=gameday"):
        assert line in exports.splitlines(), exports
    assert cli.main(["lab", "up", "--tls", "--state-dir", state_dir]) == 0
    assert "lab already up" in capsys.readouterr().out and "TLS" in manage.up(tls_lab.config)


def test_tls_run_or_up_on_a_running_plain_lab_is_one_line(lab, capsys, monkeypatch):
    monkeypatch.delenv("GAMEDAY_LAB_TLS", raising=False)
    code = cli.main(["run", "rds-force-failover", "--tls", "--state-dir", str(lab.state_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "already up without TLS" in err
    assert "GAMEDAY_LAB_TLS" not in os.environ  # a refused run changes nothing for the next one
    assert cli.main(["lab", "up", "--tls", "--state-dir", str(lab.state_dir)]) == 1
    assert "already up without TLS" in capsys.readouterr().err


def test_crashed_cache_primary_is_replaced_by_sentinels_talking_tls_as_the_acl_user(tls_lab):
    """Sentinel's own election (not the lab's TestFailover) over TLS: Sentinels reach quorum over
    TLS, promote with the ACL user, and the writer (TLS, ACL user) loses nothing acknowledged."""
    old, new, t0, writer = crash_cache_primary_under_writes(tls_lab)
    assert writer.lost() == []
    assert new != old
    assert messages(tls_lab, t0)[0] == f"Failover from primary node {old} to replica node {new} completed"


def test_db_failover_rebuilds_the_standby_with_replication_over_tls_and_loses_nothing(tls_lab):
    wait_for(lambda: healthy_again(tls_lab), what="a healthy lab")
    writer = EndpointWriter(tls_lab.env, "db")  # TLS verified against the lab's CA
    writer.start()
    wait_for(lambda: len(writer.acked) > 20)
    before = tls_lab.snapshot()["db_instances"]["shop-db"]["primary"]
    tls_lab.failover_db()
    wait_for(lambda: healthy_again(tls_lab), what="a rebuilt standby")
    acked = len(writer.acked)
    wait_for(lambda: len(writer.acked) > acked + 20)
    writer.finish()
    assert writer.lost() == []
    with pymysql.connect(ssl_disabled=True, unix_socket=str(tls_lab.state_dir / "run" / f"{before}.sock"), user="root",
                         password="") as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")  # the old primary is the new standby
        status = cur.fetchone()
    assert status["Slave_IO_Running"] == "Yes" and status["Master_SSL_Verify_Server_Cert"] == "Yes"


def run_on_tls_lab(lab, monkeypatch, tmp_path, name) -> tuple:
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    code = run.game_day(request.build(name, "lab", lab=request.LabRequest(state_dir=lab.state_dir),
                                      run_id=name, load=request.LoadRequest(users=8)))
    run_dir = tmp_path / name
    return code, json.loads((run_dir / "journal.json").read_text()), json.loads(
        (run_dir / "summary.json").read_text())


@pytest.mark.timeout(300)
def test_cache_failover_game_day_passes_through_the_encrypted_paths(tls_lab, monkeypatch, tmp_path):
    code, journal, summary = run_on_tls_lab(tls_lab, monkeypatch, tmp_path, "elasticache-test-failover")
    assert code == 0, summary["verdict_reasons"]
    assert summary["verdict"] == "passed" and summary["rpo"]["orders_lost"] == 0
    assert all(0 < f["rto_seconds"] <= 3.0 for f in summary["faults"]), summary["faults"]
    # the data-plane probes could only write to the TLS-only servers over TLS as the ACL user
    writes = [p for phase in ("before", "after") for p in journal["steady_states"][phase]["probes"]
              if p["activity"]["name"] == "cache-writable-through-primary-endpoint"]
    assert len(writes) == 2 and all(p["status"] == "succeeded" and p["tolerance_met"] for p in writes), writes
    assert json.loads((tmp_path / "elasticache-test-failover" / "target.json").read_text())  # written


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> str:
    """A second CA, which signed none of the lab's certificates."""
    path = tmp_path_factory.mktemp("other-ca") / "ca.pem"
    _, cert = tls.make_ca("another CA")
    tls.write_cert(path, cert)
    return str(path)


BAD = {
    "plain client, encrypted cache": ({"GAMEDAY_REDIS_TLS": "false"}, "cache endpoint", "set GAMEDAY_REDIS_TLS=true"),
    "plain client, encrypted DB": ({"GAMEDAY_MYSQL_TLS": "false"}, "DB endpoint", "set GAMEDAY_MYSQL_TLS=true"),
    "wrong CA, DB": ({"GAMEDAY_MYSQL_CA": "other"}, "DB endpoint", "set GAMEDAY_MYSQL_CA"),
    "wrong CA, cache": ({"GAMEDAY_REDIS_CA": "other"}, "cache endpoint", "set GAMEDAY_REDIS_CA"),
    "no ACL user": ({"GAMEDAY_REDIS_USERNAME": ""}, "cache endpoint", "GAMEDAY_REDIS_USERNAME"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_tls_setting_is_one_fail_row_naming_the_fix(tls_lab, monkeypatch, capsys, other_ca, case):
    settings, item, fix = BAD[case]
    tls_lab.aws_env(monkeypatch)
    env = {**os.environ, **tls_lab.env, **{k: other_ca if v == "other" else v for k, v in settings.items()}}
    spec = run.load_and_validate(run.resolve("rds-force-failover"))
    code = safety.dry_run(spec, "lab", env, "bad-tls-setting")
    table = capsys.readouterr().out
    failed = [line for line in table.splitlines() if " FAIL " in line]
    assert code == 2 and len(failed) == 1 and item in failed[0], table
    fix_line = table.splitlines()[table.splitlines().index(failed[0]) + 1]
    assert fix_line.strip().startswith("fix:") and fix in fix_line, fix_line


def test_the_lab_env_as_printed_passes_the_preflight(tls_lab, monkeypatch, capsys):
    tls_lab.aws_env(monkeypatch)
    spec = run.load_and_validate(run.resolve("rds-force-failover"))
    code = safety.dry_run(spec, "lab", {**os.environ, **tls_lab.env}, "good-tls-settings")
    table = capsys.readouterr().out
    assert code == 0, table
    assert "TLS verified" in table and "(TLS on)" in table


def test_a_plain_client_is_told_the_cache_speaks_tls_only_without_asking_aws(tls_lab, monkeypatch):
    """Without DescribeReplicationGroups (no facts), the refused connection itself is examined."""
    tls_lab.aws_env(monkeypatch)
    monkeypatch.setenv("GAMEDAY_REDIS_TLS", "false")
    row = reach.redis_row(Context("lab", dict(os.environ), {}, {}, {}, "plain-client"), timeout=2.0)
    assert row.status == "FAIL" and row.fix == reach.TLS_ONLY_HELP["redis"], row


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_passes_on_the_encrypted_lab(tls_lab, monkeypatch, tmp_path, name):
    if name == "az-power-interruption":
        primaries_in_one_az(tls_lab)  # an earlier experiment on this lab may have split them
    code, journal, summary = run_on_tls_lab(tls_lab, monkeypatch, tmp_path, name)
    assert code == 0, summary["verdict_reasons"]
    assert journal["status"] == "completed" and not journal["deviated"]
    assert summary["faults"] and summary["rpo"]["orders_lost"] == 0
    assert not manage.is_up(tmp_path)
