"""Every connection setting of the data plane and the shop's REST read keys, with the
environment variable that sets each: the preflight and the run read them through `lookup`, so
what the preflight reports is what the run uses.

An experiment's configuration (or secrets, for passwords) wins; when it leaves a key empty, the
environment variable named here is read. So TLS, the Redis ACL user and the MySQL CA can be set
without editing any experiment file, on the lab as on AWS. `docs/before-aws.md` lists this
table; `tests/test_aws_safety_unit.py` checks the page names every variable.
"""
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

__all__ = ["Setting", "SETTINGS", "lookup", "flag", "tristate"]


@dataclass(frozen=True)
class Setting:
    key: str  # configuration / secrets key
    env: str  # environment variable
    meaning: str


SETTINGS = (
    Setting("mysql_host", "GAMEDAY_MYSQL_HOST", "DB instance endpoint (empty: the DB data-plane check is skipped)"),
    Setting("mysql_port", "GAMEDAY_MYSQL_PORT", "its port (3306)"),
    Setting("mysql_reader_host", "GAMEDAY_MYSQL_READER_HOST", "DB cluster reader endpoint, same port "
            "(empty: a cluster failover's reader endpoint is not measured)"),
    Setting("mysql_user", "GAMEDAY_MYSQL_USER", "a user that may create and update `gameday_probe`"),
    Setting("mysql_password", "GAMEDAY_MYSQL_PASSWORD", "its password"),
    Setting("mysql_database", "GAMEDAY_MYSQL_DATABASE", "the schema holding `gameday_probe`"),
    Setting("mysql_tls", "GAMEDAY_MYSQL_TLS", "true / false; unset: TLS everywhere but loopback"),
    Setting("mysql_ssl_ca", "GAMEDAY_MYSQL_CA", "CA bundle that signed the server certificate "
            "(RDS: global-bundle.pem); unset: the system's trust store"),
    Setting("mysql_tls_verify", "GAMEDAY_MYSQL_TLS_VERIFY", "verify certificate and host name "
            "(default true whenever TLS is used)"),
    Setting("redis_host", "GAMEDAY_REDIS_HOST", "replication group primary endpoint (empty: the "
            "cache data-plane check is skipped)"),
    Setting("redis_port", "GAMEDAY_REDIS_PORT", "its port (6379)"),
    Setting("redis_username", "GAMEDAY_REDIS_USERNAME", "Redis ACL / ElastiCache RBAC user "
            "(unset: the default user)"),
    Setting("redis_password", "GAMEDAY_REDIS_PASSWORD", "AUTH token or the user's password"),
    Setting("redis_ssl", "GAMEDAY_REDIS_TLS", "true when in-transit encryption is enabled"),
    Setting("redis_ssl_ca", "GAMEDAY_REDIS_CA", "CA bundle for the cache certificate (unset: the "
            "system's trust store)"),
    Setting("redis_tls_verify", "GAMEDAY_REDIS_TLS_VERIFY", "verify certificate and host name "
            "(default true whenever TLS is used)"),
    Setting("consumer_key", "GAMEDAY_SHOP_CONSUMER_KEY", "WooCommerce REST read key (empty: the "
            "order RPO check is skipped)"),
    Setting("consumer_secret", "GAMEDAY_SHOP_CONSUMER_SECRET", "its secret"),
)
_BY_KEY = {s.key: s for s in SETTINGS}


def lookup(key: str, configuration: Optional[Mapping[str, Any]] = None,
           secrets: Optional[Mapping[str, Any]] = None, default: Any = None) -> Any:
    """Secrets, then configuration, then the setting's environment variable, then `default`."""
    for source in (secrets or {}, configuration or {}):
        if source.get(key) not in (None, ""):
            return source[key]
    setting = _BY_KEY.get(key)
    if setting and os.environ.get(setting.env, "") != "":
        return os.environ[setting.env]
    return default


def flag(value: Any) -> bool:
    """A boolean that may arrive as a string from the environment."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def tristate(value: Any) -> Optional[bool]:
    """None when unset, else the boolean."""
    return None if value in (None, "") else flag(value)
