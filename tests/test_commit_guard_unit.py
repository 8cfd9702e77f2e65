"""The commit guard (woolab/db/commitguard.py) before an impairment touches a DB node: semi-sync
must be on, and a commit made after the change to "wait without a timeout" must be acknowledged
before the impairment may start; otherwise nothing is left changed. The MariaDB connection is
stood in for, to make the acknowledgement fail on purpose; tests/test_lab_network.py runs the
guard against the real servers (partition-then-crash trials)."""
import contextlib
import threading
import types

import pytest

from woolab.db import commitguard
from woolab.errors import LabInvalidState


class FakePrimary:
    """Answers the guard's statements; `acks` says, probe by probe, whether semi-sync is on."""

    def __init__(self, acks):
        self.acks, self.settings, self.statements = list(acks), {}, []

    def sql(self, _conn, statement, args=()):
        self.statements.append(statement)
        if statement.startswith("SET GLOBAL"):
            self.settings[statement.split()[2]] = args[0]
        if statement.startswith("SHOW GLOBAL STATUS"):
            return [("Rpl_semi_sync_master_status", "ON" if self.acks.pop(0) else "OFF")]
        return []


@pytest.fixture
def guard(monkeypatch):
    def make(acks):
        primary = FakePrimary(acks)
        monkeypatch.setattr(commitguard.servers, "sql", primary.sql)
        db = types.SimpleNamespace(primary="shop-db-a", standby="shop-db-b")
        markers = []
        parts = types.SimpleNamespace(
            state=types.SimpleNamespace(lock=threading.RLock(), db={"shop-db": db}, clusters={}),
            admin=types.SimpleNamespace(mysql=lambda *_a, **_k: contextlib.nullcontext(object())),
            marker=lambda source, message, **_kw: markers.append(message), commits_strict=False)
        return parts, primary, markers
    return make


def test_strict_once_a_commit_made_after_the_change_is_acknowledged(guard):
    parts, primary, markers = guard([True, True])
    commitguard.set_strict(parts, True)
    assert primary.settings == {"rpl_semi_sync_master_wait_no_slave": 1,
                                "rpl_semi_sync_master_timeout": commitguard.STRICT_TIMEOUT_MS}
    probes = [s for s in primary.statements if s.startswith("REPLACE INTO")]
    assert len(probes) == 2  # one before the change, one after it
    assert markers == ["commits wait for the standby without a timeout"]


def test_no_acknowledgement_after_the_change_refuses_and_restores_the_fallback(guard):
    parts, primary, markers = guard([True, False])
    with pytest.raises(LabInvalidState, match="did not acknowledge"):
        commitguard.set_strict(parts, True)
    assert primary.settings == {"rpl_semi_sync_master_wait_no_slave": 0,
                                "rpl_semi_sync_master_timeout": commitguard.NORMAL_TIMEOUT_MS}
    assert markers == []


def test_semi_sync_off_refuses_before_changing_anything(guard):
    parts, primary, _ = guard([False])
    with pytest.raises(LabInvalidState, match="not in sync"):
        commitguard.set_strict(parts, True)
    assert primary.settings == {}


def test_a_writer_promoted_while_the_guard_holds_is_made_strict_and_not_after_it_ends(guard):
    parts, primary, markers = guard([True, True])
    commitguard.strict_on_promotion(parts, "shop-db-b")  # no guard yet: nothing to do
    assert primary.settings == {} and markers == []
    commitguard.set_strict(parts, True)
    assert parts.commits_strict is True
    primary.settings.clear()
    commitguard.strict_on_promotion(parts, "shop-db-b")
    assert primary.settings == {"rpl_semi_sync_master_wait_no_slave": 1,
                                "rpl_semi_sync_master_timeout": commitguard.STRICT_TIMEOUT_MS}
    commitguard.set_strict(parts, False)
    primary.settings.clear()
    commitguard.strict_on_promotion(parts, "shop-db-b")
    assert parts.commits_strict is False and primary.settings == {}


def test_a_refused_guard_leaves_promotions_alone(guard):
    parts, primary, _ = guard([False])
    with pytest.raises(LabInvalidState):
        commitguard.set_strict(parts, True)
    commitguard.strict_on_promotion(parts, "shop-db-b")
    assert parts.commits_strict is False and primary.settings == {}
