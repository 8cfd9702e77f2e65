"""A standby rebuild meets a busy machine (woolab/db/failover.py): a node slow to start or a refused
connection is retried, a diverged node is built afresh from the primary, and a rebuild that keeps
failing is handed to healing instead of staying `rebuilding`. The node start, replication and the
copy are stood in for, to make them fail on purpose; tests/test_lab_convergence.py does it for real."""
import os
import subprocess
import threading
import types

import pymysql
import pytest

from woolab.db import failover, setup
from woolab.db.setup import Diverged
from woolab.errors import LabStartError


@pytest.fixture
def parts(monkeypatch):
    nodes = {"shop-db-a": types.SimpleNamespace(status="rebuilding"),
             "shop-db-b": types.SimpleNamespace(pid=os.getpid())}  # a primary whose process runs
    db = types.SimpleNamespace(id="shop-db", primary="shop-db-b", nodes=nodes)
    stopped, markers = [], []
    parts = types.SimpleNamespace(
        state=types.SimpleNamespace(db_instance=lambda _id: db, db_resource=lambda _id: db, lock=threading.RLock(),
                                    save=lambda: None),
        procs=types.SimpleNamespace(stop=lambda name, hard=False: stopped.append((name, hard))),
        marker=lambda source, message, **_kw: markers.append(message), stopping=threading.Event())
    parts.nodes, parts.stopped, parts.markers = nodes, stopped, markers
    parts.started, parts.modes, parts.reseeded = [], [], []
    monkeypatch.setattr(failover, "restart_node", lambda _p, name, read_only: parts.started.append(name))
    monkeypatch.setattr(failover, "reseed", lambda _p, name, primary: parts.reseeded.append((name, primary)))
    monkeypatch.setattr(failover.time, "sleep", lambda _s: None)
    return parts


def replicating_after(parts, monkeypatch, outcomes):
    """replicate() raises the queued outcomes in turn, then succeeds."""
    def replicate(_parts, name, primary_name, primary, gtid_mode, timeout):
        parts.modes.append(gtid_mode)
        if outcomes:
            raise outcomes.pop(0)
    monkeypatch.setattr(failover, "replicate", replicate)


def test_a_refused_admin_connection_during_a_rebuild_is_retried_from_a_fresh_start(parts, monkeypatch):
    # the failure seen in CI: the node's socket refused while mariadbd was still starting
    refused = pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'localhost' ([Errno 111])")
    replicating_after(parts, monkeypatch, [refused, LabStartError("replication did not start within 30 s")])
    assert failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a") is True
    assert parts.started == ["shop-db-a"] * 3 and parts.stopped == [("shop-db-a", True)] * 2
    assert parts.nodes["shop-db-a"].status == "available"


def test_a_diverged_standby_is_built_afresh_from_the_primary(parts, monkeypatch):
    replicating_after(parts, monkeypatch, [Diverged("shop-db-a diverged from its primary: error 1236")])
    assert failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a") is True
    assert parts.reseeded == [("shop-db-a", "shop-db-b")]
    assert parts.modes == ["current_pos", "slave_pos"]  # the copy starts from the primary's position
    assert parts.nodes["shop-db-a"].status == "available"
    assert any("diverged" in m for m in parts.markers)


def test_a_rebuild_that_keeps_failing_is_handed_to_healing_not_left_rebuilding(parts, monkeypatch):
    monkeypatch.setattr(failover, "REBUILD_BUDGET", 0.0)
    replicating_after(parts, monkeypatch, [LabStartError("replication did not start within 30 s")] * 50)
    assert failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a") is False
    assert parts.nodes["shop-db-a"].status == "failed"
    assert any("handed to healing" in m for m in parts.markers)


def test_a_rebuild_whose_primary_process_is_gone_is_handed_to_healing_at_once(parts, monkeypatch):
    """Power came back to the standby's AZ just after the primary crashed: no standby can be
    built from a dead primary, so the rebuild ends now and the monitor restarts the primary."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    parts.nodes["shop-db-b"].pid = gone.pid
    refused = pymysql.err.OperationalError(2003, "Can't connect to MySQL server ([Errno 111])")
    replicating_after(parts, monkeypatch, [refused] * 50)
    assert failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a") is False
    assert parts.started == ["shop-db-a"]  # one attempt, not REBUILD_BUDGET seconds of them
    assert parts.nodes["shop-db-a"].status == "failed"
    assert any("its primary shop-db-b is down" in m and "handed to healing" in m for m in parts.markers)


def test_an_unexpected_error_is_not_swallowed_as_transient(parts, monkeypatch):
    replicating_after(parts, monkeypatch, [KeyError("a bug in the mechanic")])
    with pytest.raises(KeyError):
        failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a")


def slave_status(**fields):
    base = {"Slave_IO_Running": "No", "Slave_SQL_Running": "Yes", "Last_IO_Errno": 0, "Last_IO_Error": "",
            "Last_SQL_Errno": 0, "Last_SQL_Error": ""}
    return [{**base, **fields}]


@pytest.mark.parametrize("errno", [2003, 2005, 2006, 2013])
def test_a_replica_that_cannot_reach_its_primary_yet_is_waited_for(monkeypatch, errno):
    monkeypatch.setattr(setup.servers, "sql_dict", lambda _c, _s: slave_status(
        Last_IO_Errno=errno, Last_IO_Error="error connecting to master"))
    assert setup.replication_running(None, "shop-db-a") is False


def test_a_replica_that_diverged_is_told_apart_by_errno_though_its_message_says_connecting(monkeypatch):
    # MariaDB's wording of error 1236 contains "connecting slave": the text must not decide
    monkeypatch.setattr(setup.servers, "sql_dict", lambda _c, _s: slave_status(
        Last_IO_Errno=1236, Last_IO_Error="Got fatal error 1236 from master: 'Error: connecting slave requested "
                                           "to start from GTID 0-1-17, which is not in the master's binlog'"))
    with pytest.raises(Diverged):
        setup.replication_running(None, "shop-db-a")


def test_a_replica_whose_sql_thread_stopped_is_built_afresh(monkeypatch):
    monkeypatch.setattr(setup.servers, "sql_dict", lambda _c, _s: slave_status(
        Slave_IO_Running="Yes", Slave_SQL_Running="No", Last_SQL_Errno=1062, Last_SQL_Error="Duplicate entry"))
    with pytest.raises(Diverged):
        setup.replication_running(None, "shop-db-a")


def test_a_replica_refused_for_another_reason_fails_at_once(monkeypatch):
    monkeypatch.setattr(setup.servers, "sql_dict", lambda _c, _s: slave_status(
        Last_IO_Errno=1045, Last_IO_Error="Access denied for user 'repl'"))
    with pytest.raises(LabStartError, match="Access denied"):
        setup.replication_running(None, "shop-db-a")


def test_a_running_replica_is_running(monkeypatch):
    monkeypatch.setattr(setup.servers, "sql_dict", lambda _c, _s: slave_status(Slave_IO_Running="Yes"))
    assert setup.replication_running(None, "shop-db-a") is True


def test_a_node_holding_a_gtid_its_primary_never_had_is_told_before_it_replicates():
    # the standby wrote 0-2-1295 on its own; the primary's state for server 2 stops at 1290
    assert setup.errant_gtids("0-1-10,0-2-1295", "0-1-1300,0-2-1290") == ["0-2-1295"]
    assert setup.errant_gtids("0-1-10,0-2-5", "0-1-1300,0-2-1290") == []  # behind, not diverged
    assert setup.errant_gtids("", "0-1-3") == []  # a fresh copy holds nothing of its own


def test_a_rebuild_stops_when_the_lab_goes_down_and_starts_nothing_after(parts, monkeypatch):
    """A rebuild still retrying when `gameday lab down` stops the lab must not start the node
    again after the lab's stop swept its processes (a server left running would hold the lab's
    ports for the next lab)."""
    parts.stopping.set()
    replicating_after(parts, monkeypatch, [])
    assert failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a") is False
    assert parts.started == [] and ("shop-db-a", True) in parts.stopped
