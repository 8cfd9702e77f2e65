"""Where the lab lives and which loopback ports it uses.

One state directory holds everything of one lab (data, logs, sockets, secrets, pids), so
several labs can run side by side with different base ports (tests, benchmarks).
"""
import json
import os
import secrets as _secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from .errors import LabConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR_ENV = "GAMEDAY_LAB_STATE_DIR"
TLS_ENV = "GAMEDAY_LAB_TLS"  # set by `gameday run --tls`: a lab the run starts is encrypted
DEFAULT_BASE_PORT = 15300
MAX_CACHE_NODES = 6

DB_INSTANCE_ID = "shop-db"
REPLICATION_GROUP_ID = "shop-cache"
NODE_GROUP_ID = "0001"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
DB_CLUSTER_ID = "shop-db-cluster"
DB_TOPOLOGIES = ("instance", "cluster")  # a Multi-AZ DB instance, or a Multi-AZ DB cluster (docs/db-cluster.md)


def check_db_topology(value: str) -> str:
    """The DB topology asked for, or a one-line refusal naming the choices."""
    if value not in DB_TOPOLOGIES:
        raise LabConfigError(f"unknown DB topology {value!r}: use {' or '.join(DB_TOPOLOGIES)}")
    return value


def default_state_dir() -> Path:
    """Where a lab keeps its data when not told: never inside an installed package.

    ``$GAMEDAY_LAB_STATE_DIR`` when set; else ``.lab`` in a source checkout (the developer's
    habit, cleaned by ``make clean``); else the user's state directory,
    ``$XDG_STATE_HOME/failover-gameday/lab`` (``~/.local/state/failover-gameday/lab``), so a
    ``gameday`` installed from a wheel finds its lab from any working directory.
    """
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if (PROJECT_ROOT / "setup.cfg").is_file() and (PROJECT_ROOT / "woolab").is_dir():
        return PROJECT_ROOT / ".lab"
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "failover-gameday" / "lab"


@dataclass
class LabConfig:
    state_dir: Path = field(default_factory=default_state_dir)
    base_port: int = DEFAULT_BASE_PORT
    region: str = "us-east-1"
    account_id: str = "123456789012"
    cache_replicas: int = 1
    timing: str = "fast"  # fast | aws | a JSON file (woolab/timing.py); the options below override it
    sentinel_down_after_ms: Optional[int] = None  # fast: 1500 (500 ms saw false failovers on 2 loaded cores)
    min_failover_interval: float = 0.0
    db_failover_outage_seconds: Optional[float] = None  # how long the DB endpoint stays unavailable in a failover
    cache_failover_outage_seconds: Optional[float] = None  # TestFailover: primary gone this long before promotion
    allow_primary_delete: bool = False
    db_multi_az: bool = True
    with_shop: bool = True
    shop_env: dict = field(default_factory=dict)
    db_topology: str = "instance"  # instance (primary + standby) | cluster (a writer and two readers)
    tls: bool = False  # `up --tls`: TLS-only Redis (ACL user) and MariaDB with the lab's own CA (woolab/tls.py)

    @classmethod
    def from_env(cls, **overrides) -> "LabConfig":
        cfg = cls(state_dir=default_state_dir(),
                  base_port=int(os.environ.get("GAMEDAY_LAB_BASE_PORT", DEFAULT_BASE_PORT)),
                  timing=os.environ.get("GAMEDAY_LAB_TIMING") or "fast",
                  tls=os.environ.get(TLS_ENV, "").strip().lower() in ("1", "true", "yes", "on"))
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        check_db_topology(cfg.db_topology)
        cfg.state_dir = Path(cfg.state_dir).resolve()
        if cfg.timing not in ("fast", "aws"):
            cfg.timing = str(Path(cfg.timing).resolve())
        return cfg

    # ports -----------------------------------------------------------------
    @property
    def facade_port(self) -> int:
        return self.base_port

    @property
    def shop_port(self) -> int:
        return self.base_port + 1

    @property
    def webhook_port(self) -> int:
        return self.base_port + 2

    @property
    def db_endpoint_port(self) -> int:
        """Every DB node listens on this port, each on its own address (DNS picks the primary)."""
        return self.base_port + 6

    @property
    def db_node_count(self) -> int:
        """MariaDB nodes of the topology: a cluster's writer and two readers, an instance's
        primary and standby (only the primary when it is not Multi-AZ)."""
        if self.db_topology == "cluster":
            return 3
        return 2 if self.db_multi_az else 1

    def db_node_port(self, index: int) -> int:
        return self.db_endpoint_port

    @staticmethod
    def db_node_address(index: int) -> str:
        return f"127.0.10.{index + 1}"

    @property
    def cache_primary_port(self) -> int:
        """Every cache node listens on this port, each on its own address."""
        return self.base_port + 79

    @property
    def cache_reader_port(self) -> int:
        return self.cache_primary_port

    def cache_node_port(self, number: int) -> int:
        return self.cache_primary_port

    @staticmethod
    def cache_node_address(number: int) -> str:
        """Address of cache node shop-cache-00<number> (1-based)."""
        return f"127.0.11.{number}"

    def sentinel_port(self, index: int) -> int:
        return self.base_port + 91 + index

    @property
    def dns_port(self) -> int:
        """The lab's DNS server (UDP, 127.0.0.1): the endpoints are names, as on AWS."""
        return self.base_port + 53

    # endpoint names, shaped like AWS's ----------------------------------------------------
    @property
    def dns_zone_id(self) -> str:
        return f"lab{self.base_port}"

    @property
    def db_endpoint_name(self) -> str:
        return f"{DB_INSTANCE_ID}.{self.dns_zone_id}.{self.region}.rds.amazonaws.com"

    @property
    def db_cluster_endpoint_name(self) -> str:
        """The cluster (writer) endpoint, shaped like AWS's `<id>.cluster-<zone>.<region>.rds.amazonaws.com`."""
        return f"{DB_CLUSTER_ID}.cluster-{self.dns_zone_id}.{self.region}.rds.amazonaws.com"

    @property
    def db_reader_endpoint_name(self) -> str:
        """The reader endpoint over the cluster's readers (`cluster-ro-` as on AWS)."""
        return f"{DB_CLUSTER_ID}.cluster-ro-{self.dns_zone_id}.{self.region}.rds.amazonaws.com"

    def db_member_endpoint_name(self, member: str) -> str:
        """The instance endpoint of one cluster member."""
        return f"{member}.{self.dns_zone_id}.{self.region}.rds.amazonaws.com"

    @property
    def db_writer_name(self) -> str:
        """The name clients write through: the cluster endpoint or the instance endpoint."""
        return self.db_cluster_endpoint_name if self.db_topology == "cluster" else self.db_endpoint_name

    def _cache_domain(self) -> str:
        short = self.region.replace("us-east-", "use").replace("eu-west-", "euw")
        return f"{REPLICATION_GROUP_ID}.{self.dns_zone_id}.{short}.cache.amazonaws.com"

    @property
    def cache_primary_name(self) -> str:
        return f"master.{self._cache_domain()}"

    @property
    def cache_reader_name(self) -> str:
        return f"replica.{self._cache_domain()}"

    def cache_node_name(self, node_id: str) -> str:
        return f"{node_id}.{self._cache_domain()}"

    def all_ports(self) -> list:
        """Every TCP listener of the lab: ports on 127.0.0.1 or (address, port) pairs."""
        ports = [self.facade_port, self.webhook_port]
        ports += [(self.db_node_address(i), self.db_endpoint_port) for i in range(max(2, self.db_node_count))]
        ports += [(self.cache_node_address(n), self.cache_primary_port) for n in range(1, self.cache_replicas + 2)]
        ports += [self.sentinel_port(i) for i in range(3)]
        if self.with_shop:
            ports.append(self.shop_port)
        return ports

    # files -----------------------------------------------------------------
    def path(self, *parts) -> Path:
        return Path(self.state_dir, *parts)

    def save(self) -> None:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        self.path("lab-config.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> "LabConfig":
        data = json.loads(Path(state_dir, "lab-config.json").read_text())
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)  # a file from before `db_topology` existed gets the default, instance


def load_or_create_secrets(state_dir: Path) -> dict:
    """Random passwords for this lab, stored 0600 in the state dir."""
    path = Path(state_dir, "secrets.json")
    if path.exists():
        return json.loads(path.read_text())
    values = {name: _secrets.token_urlsafe(18) for name in
              ("db_admin_password", "db_repl_password", "db_app_password", "redis_password",
               "shop_nonce_secret", "shop_consumer_secret")}
    values["shop_consumer_key"] = "ck_" + _secrets.token_hex(16)
    values["shop_consumer_secret"] = "cs_" + values["shop_consumer_secret"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f, indent=2)
    return values


def write_json_atomic(path: Path, data, mode: int = 0o644) -> None:
    """Readers in other processes never see a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
