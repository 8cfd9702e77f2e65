"""Roles that changed without the lab: Sentinel promoted on its own, or a stale primary is back.

Two nodes saying `master` would let the endpoint split writes; ElastiCache never shows that, so
the lab demotes at once what Sentinel would only convert ~10 s later. With exactly one primary,
the nodes themselves are the truth, not a lagging Sentinel.
"""
import logging
from typing import List

import redis

from ..parts import LabParts
from . import sentinel

log = logging.getLogger("woolab")


def live_masters(parts: LabParts) -> List[str]:
    with parts.state.lock:
        live = {n.id: n.port for n in parts.state.nodes.values() if parts.procs.alive(n.id)}
    return [node_id for node_id, port in live.items() if parts.admin.redis_role(port) == "master"]


def demote_stale_primaries(parts: LabParts, group_id: str, masters: List[str]) -> bool:
    """REPLICAOF the Sentinel quorum's primary on every other master; returns whether any changed."""
    true_port = sentinel.quorum_primary(parts.admin, group_id)
    if true_port is None:
        return False
    demoted = False
    for node_id in masters:
        node = parts.state.nodes[node_id]
        if node.port == true_port:
            continue
        try:
            with parts.admin.redis(node.port) as client:
                client.execute_command("REPLICAOF", "127.0.0.1", true_port)
            parts.marker(node_id, f"demoted stale primary {node_id} (Sentinel quorum names port {true_port})")
            demoted = True
        except redis.RedisError as exc:
            log.warning("could not demote %s: %s", node_id, exc)
    return demoted


def adopt_roles(parts: LabParts, masters: List[str]) -> bool:
    """Record the one live master as primary and the rest as replicas; returns whether anything changed."""
    if len(masters) != 1:
        return False
    changed = False
    with parts.state.lock:
        for node_id, node in parts.state.nodes.items():
            role = "primary" if node_id == masters[0] else "replica"
            if node.role != role:
                node.role, changed = role, True
    return changed
