"""The AWS-visible state of the lab as small types, and the one store that guards them.

What AWS would show through DescribeDBInstances / DescribeReplicationGroups /
DescribeCacheClusters lives here: statuses, roles, AZs, endpoints, tags. The mechanics change it
under the store's lock; the facade reads a JSON snapshot (`LabState.snapshot()`) whose shape is
`dataclasses.asdict` of these types, and `topology.json` is that snapshot on disk (with pids, so a
crashed controller can still be cleaned up).
"""
import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .config import write_json_atomic
from .errors import LabInvalidState, LabNotFound


@dataclass
class Endpoint:
    address: str
    port: int


@dataclass
class DbNode:
    """One mariadbd behind a DB instance: the primary or the Multi-AZ standby."""
    az: str
    port: int
    role: str  # primary | standby
    pid: Optional[int]
    server_id: int
    ip: str = "127.0.0.1"  # the node's own loopback address (its host)
    status: str = "available"  # available | failed | rebuilding


@dataclass
class DbInstance:
    id: str
    engine: str
    engine_version: str
    multi_az: bool
    endpoint: Endpoint
    primary: str
    standby: Optional[str]
    nodes: Dict[str, DbNode]
    status: str = "available"
    db_name: str = "shop"
    master_username: str = "admin"
    instance_class: str = "db.lab.small"
    created_at: float = field(default_factory=time.time)
    last_failover_at: Optional[float] = None
    tags: Dict[str, str] = field(default_factory=lambda: {"chaos:allowed": "true"})
    endpoint_node: Optional[str] = None  # the node the endpoint's DNS record names
    ca_certificate: Optional[Dict[str, object]] = None  # encrypted lab: {"id", "valid_till"} of its CA

    def node_in(self, az: str) -> List[str]:
        return [name for name, node in self.nodes.items() if node.az == az]


@dataclass
class DbCluster:
    """A Multi-AZ DB cluster: a writer and two readers, one per AZ, each a DB instance of its own.

    `primary` names the writer and `nodes` holds the members (role `writer` or `reader`), the
    same fields as a `DbInstance`'s, so the DB mechanics that rebuild a replica serve both."""
    id: str
    engine: str
    engine_version: str
    endpoint: Endpoint  # the cluster (writer) endpoint
    reader_endpoint: Endpoint
    primary: str
    nodes: Dict[str, DbNode]
    status: str = "available"  # available | failing-over
    db_name: str = "shop"
    master_username: str = "admin"
    instance_class: str = "db.lab.small"
    created_at: float = field(default_factory=time.time)
    last_failover_at: Optional[float] = None
    tags: Dict[str, str] = field(default_factory=lambda: {"chaos:allowed": "true"})
    member_endpoints: Dict[str, str] = field(default_factory=dict)  # member -> its instance endpoint name
    endpoint_node: Optional[str] = None  # the member the cluster endpoint's record names

    @property
    def readers(self) -> List[str]:
        return sorted(name for name in self.nodes if name != self.primary)


@dataclass
class CacheNode:
    """One redis-server of a replication group (an ElastiCache cache cluster id)."""
    id: str
    replication_group_id: str
    node_group_id: str
    az: str
    port: int
    role: str  # primary | replica
    pid: Optional[int]
    status: str = "available"  # available | creating | deleting | modifying | failed
    address: str = "127.0.0.1"  # the node endpoint's DNS name, as DescribeCacheClusters shows it
    ip: str = "127.0.0.1"  # the node's own loopback address (its host)
    created_at: float = field(default_factory=time.time)
    node_type: str = "cache.lab.small"
    tags: Dict[str, str] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.id.rsplit("-", 1)[1])


@dataclass
class NodeGroup:
    status: str = "available"
    members: List[str] = field(default_factory=list)


@dataclass
class ReplicationGroup:
    id: str
    primary_endpoint: Endpoint
    reader_endpoint: Endpoint
    node_groups: Dict[str, NodeGroup]
    engine_version: str = ""
    engine: str = "redis"
    status: str = "available"
    automatic_failover: bool = True
    multi_az: bool = True
    tags: Dict[str, str] = field(default_factory=lambda: {"chaos:allowed": "true"})
    transit_encryption: bool = False  # encrypted lab: TLS only ("required")
    user_group_ids: List[str] = field(default_factory=list)  # encrypted lab: the ACL user's group (RBAC)


class LabState:
    """The store: every read and change of the AWS-visible state goes through its lock."""

    def __init__(self, path: Path, region: str, account_id: str):
        self.path = Path(path)
        self.region, self.account_id = region, account_id
        self.lock = threading.RLock()
        self.db: Dict[str, DbInstance] = {}
        self.clusters: Dict[str, DbCluster] = {}
        self.groups: Dict[str, ReplicationGroup] = {}
        self.nodes: Dict[str, CacheNode] = {}
        self.processes: Dict[str, int] = {}  # process name -> pid, for crash cleanup
        self.alive = lambda pid: True  # the lab plugs in the supervisor's check

    # lookups ------------------------------------------------------------------------------
    def db_instance(self, instance_id: str) -> DbInstance:
        return _get(self.db, instance_id, "DB instance")

    def db_cluster(self, cluster_id: str) -> DbCluster:
        return _get(self.clusters, cluster_id, "DB cluster")

    def db_resource(self, resource_id: str):
        """A DB instance or a DB cluster by id (both have `id`, `primary`, `nodes`)."""
        if resource_id in self.db:
            return self.db[resource_id]
        return self.db_cluster(resource_id)

    def db_node(self, name: str) -> DbNode:
        """A MariaDB node by name, of an instance or of a cluster."""
        for owner in list(self.db.values()) + list(self.clusters.values()):
            if name in owner.nodes:
                return owner.nodes[name]
        raise LabNotFound(f"DB node {name} not found")

    def db_owner(self):
        """The DB resource the shop writes to: the DB instance, or the DB cluster."""
        owners = list(self.db.values()) + list(self.clusters.values())
        if not owners:
            raise LabNotFound("the lab has no DB instance or DB cluster")
        return owners[0]

    def all_db_nodes(self) -> List[DbNode]:
        return [n for owner in list(self.db.values()) + list(self.clusters.values()) for n in owner.nodes.values()]

    def group(self, group_id: str) -> ReplicationGroup:
        return _get(self.groups, group_id, "Replication group")

    def node(self, node_id: str) -> CacheNode:
        return _get(self.nodes, node_id, "Cache cluster")

    def group_for_change(self, group_id: str) -> ReplicationGroup:
        group = self.group(group_id)
        if group.status != "available":
            raise LabInvalidState(f"Replication group {group_id} is {group.status}, not available "
                                  "(a failover or a node replacement is running; retry once it is available)")
        return group

    def members(self, group_id: str, node_group_id: str) -> List[CacheNode]:
        return [self.nodes[n] for n in self.groups[group_id].node_groups[node_group_id].members]

    def primary_of(self, group_id: str, node_group_id: str) -> CacheNode:
        for node in self.members(group_id, node_group_id):
            if node.role == "primary":
                return node
        raise LabInvalidState(f"node group {node_group_id} of {group_id} has no primary")

    def add_node(self, node: CacheNode) -> None:
        with self.lock:
            self.nodes[node.id] = node
            members = self.groups[node.replication_group_id].node_groups[node.node_group_id].members
            if node.id not in members:
                members.append(node.id)
                members.sort()

    def forget_node(self, node_id: str) -> None:
        with self.lock:
            node = self.nodes.pop(node_id)
            self.processes.pop(node_id, None)
            self.groups[node.replication_group_id].node_groups[node.node_group_id].members.remove(node_id)

    # tags ------------------------------------------------------------------------------------
    def tags_of(self, kind: str, resource_id: str) -> Dict[str, str]:
        table = {"db": self.db, "cluster": self.clusters, "replication-group": self.groups,
                 "cache-cluster": self.nodes}.get(kind)
        if table is None:
            raise LabNotFound(f"unknown resource kind {kind}")
        return _get(table, resource_id, kind).tags

    # views -------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The JSON view the facade, `/_lab/status` and `topology.json` share."""
        with self.lock:
            return copy.deepcopy({
                "region": self.region, "account_id": self.account_id,
                "db_instances": {k: asdict(v) for k, v in self.db.items()},
                "db_clusters": {k: asdict(v) for k, v in self.clusters.items()},
                "replication_groups": {k: asdict(v) for k, v in self.groups.items()},
                "cache_clusters": {k: asdict(v) for k, v in self.nodes.items()}})

    def save(self) -> None:
        data = self.snapshot()
        with self.lock:
            data["processes"] = {name: {"pid": pid, "alive": self.alive(pid)}
                                 for name, pid in self.processes.items()}
        write_json_atomic(self.path, data)


def _get(table: dict, resource_id: str, what: str):
    if resource_id not in table:
        raise LabNotFound(f"{what} {resource_id} not found")
    return table[resource_id]
