"""Roles that changed without the lab: Sentinel promoted on its own, or a stale primary is back.

Two nodes saying `master` would let the endpoint split writes; ElastiCache never shows that, so
the lab demotes at once what Sentinel would only convert ~10 s later. With exactly one primary,
the nodes themselves are the truth, not a lagging Sentinel.
"""
import logging
from typing import Dict, List, Optional

import redis

from ..parts import LabParts
from . import sentinel

log = logging.getLogger("woolab")


def node_roles(parts: LabParts) -> Dict[str, Optional[str]]:
    """Each cache node's own answer (`master` / `slave`), None for a dead or hung node."""
    with parts.state.lock:
        hosts = {n.id: (n.ip, n.port) for n in parts.state.nodes.values()}
    return {node_id: parts.admin.redis_role(port, host=ip) if parts.procs.alive(node_id) else None
            for node_id, (ip, port) in hosts.items()}


def live_masters(roles: Dict[str, Optional[str]]) -> List[str]:
    return [node_id for node_id, role in roles.items() if role == "master"]


def demote_stale_primaries(parts: LabParts, group_id: str, masters: List[str]) -> bool:
    """REPLICAOF the Sentinel quorum's primary on every other master; returns whether any changed."""
    true_ip = sentinel.quorum_primary(parts.admin, group_id)
    if true_ip is None:
        return False
    demoted = False
    for node_id in masters:
        node = parts.state.nodes[node_id]
        if node.ip == true_ip:
            continue
        try:
            with parts.admin.redis(node.port, host=node.ip) as client:
                client.execute_command("REPLICAOF", true_ip, node.port)
            parts.marker(node_id, f"demoted stale primary {node_id} (Sentinel quorum names {true_ip})")
            demoted = True
        except redis.RedisError as exc:
            log.warning("could not demote %s: %s", node_id, exc)
    return demoted


def adopt_roles(parts: LabParts, roles: Dict[str, Optional[str]]) -> bool:
    """Record the one master as primary and the rest as replicas; returns whether anything changed.
    While a node does not answer, the health monitor owns its story (failover events, replacement)."""
    masters = live_masters(roles)
    if len(masters) != 1 or None in roles.values():
        return False
    changed = False
    with parts.state.lock:
        for node_id, node in parts.state.nodes.items():
            role = "primary" if node_id == masters[0] else "replica"
            if node.role != role:
                node.role, changed = role, True
    return changed
