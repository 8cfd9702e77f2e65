"""Partition-then-crash trials against a running lab, shared by tests/test_lab_network.py and
scripts/bench_network.py: cut the primary's AZ from the others under acknowledged writes, crash
the primary, heal, and count acknowledged writes that are gone."""
import time
from urllib.parse import urlencode

from groundfloor.supervisor import poll_until
from woolab import manage
from woolab.errors import LabStartError
from woolab.measure import EndpointWriter


def _primary(config, kind: str) -> tuple:
    """(node name, AZ) of the current DB primary (a cluster lab: the writer) or cache primary."""
    snap = manage.call(config, "/_lab/status")
    if kind == "db":
        db = next(iter(snap["db_clusters"].values()), None) or snap["db_instances"]["shop-db"]
        return db["primary"], db["nodes"][db["primary"]]["az"]
    node = next(n for n in snap["cache_clusters"].values() if n["role"] == "primary")
    return node["id"], node["az"]


def fully_redundant(config) -> bool:
    """The lab converged (every node available and replicating) and nothing is impaired."""
    return (not manage.call(config, "/_lab/converged?timeout=0")["problems"]
            and not manage.call(config, "/_lab/network")["impairments"])


def cut_az(config, az: str, service: str = "") -> bool:
    """Cut `az` from the others (only its `service` nodes when given); False while the lab
    refuses (the DB standby not in sync yet)."""
    query = {"az": az, "partition": "*", "seconds": 300, **({"service": service} if service else {})}
    try:
        manage.call(config, "/_lab/network?" + urlencode(query), "POST")
        return True
    except LabStartError as exc:
        if "not in sync" not in str(exc):
            raise
        return False


def partition_then_crash(config, env: dict, kind: str, cut_seconds: float = 2.5, timeout: float = 60.0,
                         service: str = "", write_timeout: float = 5.0) -> dict:
    """One trial: writes through the endpoint (cache: acknowledged only when WAIT saw the
    replica; DB: a commit unanswered for `write_timeout` s counts as not acknowledged), the
    primary's AZ cut from the others (only its `service` nodes when given) for `cut_seconds`
    (longer than MariaDB's 2 s semi-sync timeout), then the primary crashed; the cut ends once
    another node is primary.
    Returns lost acknowledged writes, writes started and acknowledged during the cut, and how
    long the endpoint took no write (last acknowledgement before the cut to the first after the crash)."""
    old, az = _primary(config, kind)
    writer = EndpointWriter(env, kind, wait_replicas=1 if kind == "cache" else 0, table="net_rpo",
                            timeout=write_timeout)
    writer.start()
    try:
        assert poll_until(lambda: len(writer.acked) >= 5, 20), f"no {kind} writes acknowledged before the cut"
        assert poll_until(lambda: cut_az(config, az, service), timeout), f"{az} could not be cut (standby never in sync)"
        cut_at = time.time()
        poll_until(lambda: time.time() - cut_at >= cut_seconds, cut_seconds + 1, interval=0.05)
        # one write may have started before the cut and been acknowledged after it
        during_cut = max(0, sum(1 for t in writer.ack_times if t > cut_at) - 1)
        manage.call(config, f"/_lab/crash?id={old}", "POST")
        crashed_at = time.time()
        moved = poll_until(lambda: _primary(config, kind)[0] != old, timeout)
        manage.call(config, "/_lab/network?clear=1", "POST")
        writable = poll_until(lambda: any(t > crashed_at for t in writer.ack_times), timeout)
    finally:
        writer.finish()
    healed = poll_until(lambda: fully_redundant(config), timeout * 2, interval=0.25)
    last_before_cut = max([t for t in writer.ack_times if t <= cut_at], default=cut_at)
    first_after = min([t for t in writer.ack_times if t > crashed_at], default=float("nan"))
    return {"kind": kind, "old_primary": old, "moved": bool(moved), "writable_again": bool(writable),
            "healed": bool(healed), "acknowledged": len(writer.acked), "acknowledged_during_cut": during_cut,
            "lost": writer.lost(), "unwritable_seconds": round(first_after - last_before_cut, 3)}
