"""A standby rebuild that fails is started afresh, a bounded number of times (woolab/db/failover.py):
the node start and replication are stood in for, to make them fail on purpose."""
import threading
import types

import pytest

from woolab.db import failover
from woolab.errors import LabStartError


def lab_parts():
    nodes = {"shop-db-a": types.SimpleNamespace(status="rebuilding"), "shop-db-b": object()}
    db = types.SimpleNamespace(primary="shop-db-b", nodes=nodes)
    stopped = []
    parts = types.SimpleNamespace(
        state=types.SimpleNamespace(db_instance=lambda _id: db, lock=threading.RLock()),
        procs=types.SimpleNamespace(stop=lambda name, hard=False: stopped.append((name, hard))))
    return parts, nodes, stopped


def test_a_rebuild_whose_replication_does_not_start_is_tried_again_from_a_fresh_start(monkeypatch):
    parts, nodes, stopped = lab_parts()
    outcomes = [LabStartError("replication on shop-db-a did not start within 30 s"), None]
    started, timeouts = [], []

    def replicate(_parts, name, primary, gtid_mode, timeout):
        timeouts.append(timeout)
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome
    monkeypatch.setattr(failover, "restart_node", lambda _p, name, read_only: started.append(name))
    monkeypatch.setattr(failover, "replicate", replicate)
    failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a")
    assert started == ["shop-db-a", "shop-db-a"] and stopped == [("shop-db-a", True)]
    assert nodes["shop-db-a"].status == "available"
    assert timeouts == [failover.REBUILD_REPLICATION_TIMEOUT] * 2


def test_a_rebuild_that_keeps_failing_gives_up_after_its_attempts(monkeypatch):
    parts, nodes, stopped = lab_parts()

    def replicate(*_args, **_kwargs):
        raise LabStartError("replication on shop-db-a did not start within 30 s")
    monkeypatch.setattr(failover, "restart_node", lambda *_a, **_k: None)
    monkeypatch.setattr(failover, "replicate", replicate)
    with pytest.raises(LabStartError):
        failover.DbMechanics(parts).rebuild_standby("shop-db", "shop-db-a")
    assert len(stopped) == failover.REBUILD_ATTEMPTS - 1
    assert nodes["shop-db-a"].status == "rebuilding"
