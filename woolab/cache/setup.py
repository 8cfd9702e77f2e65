"""Bring up the replication group: a primary, its replicas and three Sentinels."""
from typing import Optional

from .. import servers
from ..config import AZS, NODE_GROUP_ID, REPLICATION_GROUP_ID
from ..parts import LabParts
from ..tls import USER_GROUP_ID, lab_tls
from ..state import CacheNode, Endpoint, NodeGroup, ReplicationGroup
from . import sentinel


def start_cache(parts: LabParts) -> None:
    cfg = parts.config
    with parts.state.lock:
        parts.state.groups[REPLICATION_GROUP_ID] = ReplicationGroup(
            id=REPLICATION_GROUP_ID, primary_endpoint=Endpoint(cfg.cache_primary_name, cfg.cache_primary_port),
            reader_endpoint=Endpoint(cfg.cache_reader_name, cfg.cache_reader_port),
            node_groups={NODE_GROUP_ID: NodeGroup()},
            transit_encryption=cfg.tls, user_group_ids=[USER_GROUP_ID] if cfg.tls else [])
    primary = (cfg.cache_node_address(1), cfg.cache_node_port(1))
    for number in range(1, cfg.cache_replicas + 2):
        launch_node(parts, REPLICATION_GROUP_ID, number, None if number == 1 else primary)
    for node_id, node in list(parts.state.nodes.items()):
        servers.wait_for_port(node.port, 10, parts.procs.get(node_id), f"redis {node_id}", host=node.ip)
    # Sentinels learn the replicas from the primary's INFO, which they read every 10 s: started
    # once every replica is linked, their first reading already lists them all
    for node in [n for n in parts.state.nodes.values() if n.role == "replica"]:
        parts.admin.wait_replica_synced(node.port, 10, host=node.ip)
    for i in range(sentinel.SENTINELS):
        name = f"sentinel-{i + 1}"
        parts.procs.add(name, servers.sentinel_start(
            i + 1, cfg.sentinel_port(i), primary, parts.secrets["redis_password"], REPLICATION_GROUP_ID,
            int(parts.timing.sample("cache_detection_seconds") * 1000), cfg.path("run"), lab_tls(cfg)))
    for i in range(sentinel.SENTINELS):
        servers.wait_for_port(cfg.sentinel_port(i), 10, parts.procs.get(f"sentinel-{i + 1}"), "redis-sentinel")
    with parts.admin.redis(primary[1], host=primary[0]) as client:
        version = client.info("server")["redis_version"]
    parts.state.groups[REPLICATION_GROUP_ID].engine_version = version


def launch_node(parts: LabParts, group_id: str, number: int, replica_of: Optional[tuple],
                az: Optional[str] = None) -> str:
    """Start redis-server for node `number` (a replica of `replica_of` = (address, port), or a
    primary) and record it; a node that existed before keeps its AZ, address and creation time
    (a replacement keeps its DNS name and IP, as ElastiCache documents)."""
    node_id = f"{group_id}-{number:03d}"
    port, ip = parts.config.cache_node_port(number), parts.config.cache_node_address(number)
    proc = parts.procs.add(node_id, servers.redis_start(node_id, ip, port, parts.secrets["redis_password"],
                                                        parts.config.path("run"), replica_of,
                                                        lab_tls(parts.config)))
    existing = parts.state.nodes.get(node_id)
    node = CacheNode(id=node_id, replication_group_id=group_id, node_group_id=NODE_GROUP_ID,
                     az=existing.az if existing else (az or AZS[(number - 1) % len(AZS)]), port=port,
                     role="replica" if replica_of else "primary", pid=proc.pid, ip=ip,
                     address=parts.config.cache_node_name(node_id))
    if existing:
        node.created_at, node.tags = existing.created_at, existing.tags
    parts.state.add_node(node)
    return node_id
