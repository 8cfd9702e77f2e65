"""What the lab asks the three Sentinels: readiness, who they name primary, a managed failover.

ElastiCache's own failover machinery is not Sentinel, but from the client's side both promote the
replica and move the primary endpoint; Sentinel is the real, working stand-in here.
"""
import logging
from typing import Optional

import redis

from groundfloor.supervisor import poll_until

from ..admin import Admin
from ..errors import LabInvalidState, LabStartError

log = logging.getLogger("woolab")
SENTINELS = 3


def wait_ready(admin: Admin, group_id: str, replicas: int, timeout: float = 15.0) -> None:
    """Sentinels must know each other and the replicas before a failover can win a quorum."""
    def ready():
        try:
            for i in range(SENTINELS):
                with admin.sentinel(i) as s:
                    if len(s.sentinel_sentinels(group_id)) < SENTINELS - 1 or \
                            len(s.sentinel_slaves(group_id)) < replicas:
                        return False
            return True
        except redis.RedisError:
            return False
    if not poll_until(ready, timeout, interval=0.1):
        raise LabStartError(f"Sentinels did not reach quorum within {timeout:.0f} s")


def wait_know_replica(admin: Admin, group_id: str, ip: str, timeout: float = 30.0) -> None:
    """A new replica can be promoted only once every Sentinel has seen it healthy (they poll the
    primary's INFO every 10 s, so this can take that long)."""
    def healthy_in(index: int) -> bool:
        try:
            with admin.sentinel(index) as s:
                return any(r["ip"] == ip and not r.get("is_sdown") and not r.get("is_disconnected")
                           for r in s.sentinel_slaves(group_id))
        except redis.RedisError:
            return False
    if not poll_until(lambda: all(healthy_in(i) for i in range(SENTINELS)), timeout, interval=0.2):
        raise LabInvalidState(f"Sentinels did not discover the replica at {ip} within {timeout:.0f} s")


def quorum_primary(admin: Admin, group_id: str) -> Optional[str]:
    """The primary address a majority of Sentinels agree on, or None."""
    ports = [p for p in (admin.sentinel_view(i, group_id) for i in range(SENTINELS)) if p]
    if not ports:
        return None
    best = max(set(ports), key=ports.count)
    return best if ports.count(best) >= 2 else None


def any_primary(admin: Admin, group_id: str) -> Optional[str]:
    return next((p for p in (admin.sentinel_view(i, group_id) for i in range(SENTINELS)) if p), None)


TRANSIENT_BOUND = 15.0  # seconds a Sentinel may be slow to answer (a busy machine) before it counts as failed


def _on_each(admin: Admin, command, bound: float = TRANSIENT_BOUND) -> None:
    """`command(sentinel)` on every Sentinel. A timeout or a refused connection is transient:
    tried again until `bound`; after that the mechanic fails with a LabInvalidState (healing's)."""
    for i in range(SENTINELS):
        errors = []

        def done() -> bool:
            try:
                with admin.sentinel(i) as s:
                    command(s)
                return True
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                errors.append(exc)
                return False
        if not poll_until(done, bound, interval=0.2):
            raise LabInvalidState(f"sentinel-{i + 1} did not answer within {bound:g} s: {errors[-1]}")


def forget(admin: Admin, group_id: str) -> None:
    """Stop every Sentinel watching the group (a failover the lab runs itself: Sentinel's own
    FAILOVER stalls while the old primary's writes are paused, and it would reconfigure nodes)."""
    def remove(s) -> None:
        try:
            s.execute_command("SENTINEL", "REMOVE", group_id)
        except redis.ResponseError:
            pass  # not monitored (any more)
    _on_each(admin, remove)


def repoint(admin: Admin, group_id: str, primary: tuple, password: str, down_after_ms: int) -> None:
    """Make every Sentinel monitor `primary` = (address, port) after a failover the lab ran itself
    (authenticating as the nodes' ACL user when the lab has one)."""
    forget(admin, group_id)
    username = admin.redis_options.get("username")
    user = ("auth-user", username) if username else ()

    def monitor(s) -> None:
        try:
            s.execute_command("SENTINEL", "MONITOR", group_id, primary[0], primary[1], 2)
        except redis.ResponseError as exc:
            if "Duplicated master name" not in str(exc):  # a retry after the first try did get through
                raise
        s.execute_command("SENTINEL", "SET", group_id, *user, "auth-pass", password,
                          "down-after-milliseconds", down_after_ms, "failover-timeout", 2000,
                          "parallel-syncs", 1)
    _on_each(admin, monitor)


def ask_failover(admin: Admin, group_id: str) -> None:
    """A managed failover (TestFailover) promotes at once; the first Sentinel that accepts runs it."""
    for i in range(SENTINELS):
        try:
            with admin.sentinel(i) as s:
                s.execute_command("SENTINEL FAILOVER", group_id)
            return
        except redis.RedisError as exc:
            log.info("sentinel-%d refused a forced failover (%s); trying the next", i + 1, exc)
