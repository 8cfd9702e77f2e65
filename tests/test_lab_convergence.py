"""The lab never stays broken (woolab/convergence.py, woolab/db/failover.py): whatever a mechanic
meets, it converges on its own to full redundancy, as RDS and ElastiCache replace what failed.
Each test breaks a real lab node in a way seen on busy machines and waits for the lab to be whole."""
import socket
import subprocess
import sys
import time

import boto3
import pymysql
import pytest
from botocore.exceptions import ClientError

from groundfloor.supervisor import poll_until
from woolab import manage
from woolab.network.addresses import server_address

pytestmark = pytest.mark.lab


def sql(lab, node: str, statement: str):
    with pymysql.connect(ssl_disabled=True, unix_socket=str(lab.state_dir / "run" / f"{node}.sock"), user="root", password="",
                         autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall()


def db_instance(lab) -> dict:
    return lab.snapshot()["db_instances"]["shop-db"]


def assert_whole(lab, timeout: float = 60.0) -> None:
    result = manage.converged(lab.state_dir, timeout)
    assert result["converged"], result


def messages(lab, since: float) -> list:
    return [e["message"] for e in lab.events(since)]


def noticed(lab, since: float, message: str) -> None:
    """Wait until the lab has noticed a failure (its monitor needs the detection time)."""
    assert poll_until(lambda: message in messages(lab, since), 30), messages(lab, since)


def test_a_standby_that_diverged_is_built_afresh_from_the_primary(lab):
    assert_whole(lab)
    standby, primary = db_instance(lab)["standby"], db_instance(lab)["primary"]
    since = time.time()
    # a transaction only the standby has (the shape an old primary killed mid-commit leaves behind)
    sql(lab, standby, "SET GLOBAL read_only=0")
    sql(lab, standby, "INSERT INTO woolab.probe VALUES (424242, 1) ON DUPLICATE KEY UPDATE t=t+1")
    sql(lab, standby, "SET GLOBAL read_only=1")
    lab.call(f"/_lab/crash?id={standby}")
    noticed(lab, since, "Recovery of standby DB instance has started.")
    assert_whole(lab)
    seen = messages(lab, since)
    assert any(f"standby {standby} diverged" in m for m in seen), seen
    assert "Recovery of standby DB instance has completed." in seen
    assert sql(lab, standby, "SELECT COUNT(*) FROM woolab.probe WHERE id=424242")[0][0] == 0
    grants = "SHOW GRANTS FOR 'shop'@'127.%'"  # the copy carries the accounts and their grants
    assert sorted(sql(lab, standby, grants)) == sorted(sql(lab, primary, grants))
    position = sql(lab, primary, "SELECT @@gtid_binlog_pos")[0][0]
    assert poll_until(lambda: sql(lab, standby, "SELECT @@gtid_current_pos")[0][0] == position, 10)


def test_a_standby_that_cannot_start_for_a_while_is_started_again_until_it_can(lab):
    assert_whole(lab)
    db = db_instance(lab)
    standby = db["nodes"][db["standby"]]
    since = time.time()
    lab.call(f"/_lab/crash?id={db['standby']}")
    # the address the standby's server listens on (behind the lab's relay) is taken until we let go
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    assert poll_until(lambda: _bind(holder, server_address(standby["ip"]), standby["port"]), 10, interval=0.01)
    holder.listen()
    assert poll_until(lambda: any("starting it again" in m or "exited" in m for m in _log(lab)), 30)
    holder.close()
    assert_whole(lab)
    assert "Recovery of standby DB instance has completed." in messages(lab, since)


def _bind(sock: socket.socket, ip: str, port: int) -> bool:
    try:
        sock.bind((ip, port))
        return True
    except OSError:
        return False


def _log(lab) -> list:
    return (lab.state_dir / "controller.log").read_text().splitlines()[-20:]


def test_a_failover_asked_for_while_the_standby_is_replaced_is_refused_with_the_time_to_wait(lab, lab_env):
    assert_whole(lab)
    standby = db_instance(lab)["standby"]
    lab.call(f"/_lab/crash?id={standby}")
    assert poll_until(lambda: db_instance(lab)["nodes"][standby]["status"] != "available", 20, interval=0.02)
    rds = boto3.client("rds")
    with pytest.raises(ClientError) as refused:
        rds.reboot_db_instance(DBInstanceIdentifier="shop-db", ForceFailover=True)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidDBInstanceState"
    assert "retry in about" in error["Message"] and standby in error["Message"]
    assert_whole(lab)


def test_a_primary_lost_while_no_standby_can_take_over_is_restarted_in_place(lab):
    assert_whole(lab)
    db = db_instance(lab)
    primary, standby = db["primary"], db["standby"]
    since = time.time()
    lab.call(f"/_lab/interrupt-az?id={db['nodes'][standby]['az']}&seconds=8")
    assert poll_until(lambda: db_instance(lab)["nodes"][standby]["status"] == "failed", 20, interval=0.05)
    lab.call(f"/_lab/crash?id={primary}")
    assert poll_until(lambda: any("no standby to promote" in m for m in messages(lab, since)), 20)
    assert_whole(lab, 90)
    assert db_instance(lab)["primary"] == primary  # an outage, never a promotion of a stale standby
    assert "DB instance restarted" in messages(lab, since)


def test_a_primary_crashed_as_power_returns_to_the_standby_az_is_restarted_and_the_lab_ends_whole(lab):
    """The standby's rebuild starts when power returns; the primary dies right then. The rebuild
    cannot succeed from a dead primary: it ends at once, the primary is restarted in place (never
    a promotion of the stale standby), and the standby is rebuilt after it."""
    assert_whole(lab)
    db = db_instance(lab)
    primary, standby = db["primary"], db["standby"]
    since = time.time()
    lab.call(f"/_lab/interrupt-az?id={db['nodes'][standby]['az']}&seconds=3")
    assert poll_until(lambda: any("power restored" in m for m in messages(lab, since)), 30, interval=0.02)
    lab.call(f"/_lab/crash?id={primary}")
    assert poll_until(lambda: any(f"its primary {primary} is down" in m for m in messages(lab, since)), 60)
    assert_whole(lab, 90)
    assert db_instance(lab)["primary"] == primary
    assert any("no standby to promote" in m for m in messages(lab, since))


def test_lab_repair_brings_a_frozen_cache_replica_back_and_reports_full_redundancy(lab):
    assert_whole(lab)
    replica = next(n for n in lab.snapshot()["cache_clusters"].values() if n["role"] == "replica")
    lab.call(f"/_lab/freeze?id={replica['id']}")
    done = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "repair", "--state-dir", str(lab.state_dir),
                           "--timeout", "60"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "full redundancy" in done.stdout
    assert manage.converged(lab.state_dir)["converged"]
