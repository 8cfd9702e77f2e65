"""Configuration of the stand-in shop: endpoints, secrets and the commonly recommended Redis resilience knobs.

Loaded from the JSON file named by ``WOOLAB_SHOP_CONFIG``; every field can be overridden by an
environment variable ``SHOP_<FIELD>`` (upper case), so an experiment can flip one knob (e.g.
``SHOP_RETRY=off`` for the no-retry baseline) without rewriting the file.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .profiles import PROFILES, apply_profile_defaults

CONFIG_ENV = "WOOLAB_SHOP_CONFIG"
ACCESS_LOG_ENV = "WOOLAB_SHOP_ACCESS_LOG"
ENV_PREFIX = "SHOP_"


class ConfigError(ValueError):
    """The shop configuration is missing or has a value of the wrong type."""


@dataclass(frozen=True)
class ShopConfig:
    # -- endpoints and credentials (the lab's endpoints, never a node) --
    db_host: str = "127.0.0.1"  # the writer: an instance endpoint or a DB cluster's cluster endpoint
    # a DB cluster's reader endpoint: the hardened profile reads the catalogue there
    # (woolab/shop/readsplit.py); None = every query through db_host
    db_reader_host: Optional[str] = None
    db_port: int = 3306
    db_user: str = "shop"
    db_password: str = ""
    db_name: str = "shop"
    db_ssl_ca: Optional[str] = None  # CA bundle (e.g. the RDS bundle); None = TLS off (loopback)
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: Optional[str] = None
    redis_username: Optional[str] = None  # an ACL user (ElastiCache RBAC); None = the default user
    redis_ssl: bool = False  # in-transit encryption; the certificate is then verified
    redis_ssl_ca: Optional[str] = None  # CA bundle for it; None = the system's trust store
    redis_reader_port: Optional[int] = None
    # -- name resolution: endpoints are DNS names, as on AWS --
    dns_server: Optional[str] = None  # HOST:PORT of the lab's DNS server; None = the system resolver
    dns_cache_seconds: Optional[float] = None  # None = honour the TTL; N = keep addresses N s (stale DNS)
    consumer_key: str = "ck_lab"
    consumer_secret: str = "cs_lab"
    nonce_secret: str = "change-me"
    access_log: Optional[str] = None

    # -- Redis client knobs, named as in the commonly recommended Predis options --
    connection_timeout: float = 2.0  # seconds to establish a connection
    read_write_timeout: float = 5.0  # seconds per socket read/write
    retry_wait: int = 1000  # milliseconds between retries
    max_retries: int = 5
    retry: bool = True  # False = the "no retry" baseline
    retry_backoff: str = "constant"  # constant | exponential (retry_wait is the base)
    cart_wait_replicas: int = 0  # WAIT n after a cart write; 0 = off
    cart_wait_timeout_ms: int = 100
    cache_fail_open: bool = False  # object cache: miss instead of error when Redis is down

    # -- database knobs --
    db_connect_timeout: float = 1.0
    db_read_timeout: float = 5.0
    db_write_timeout: float = 5.0
    checkout_retry_after: int = 5  # seconds, sent as Retry-After on 503

    # -- shop behaviour --
    profile: str = "hardened"  # hardened | stock (see woolab/shop/profiles.py)
    currency: str = "USD"
    site_url: str = "http://shop.lab.test"  # base of permalinks and redirect URLs
    payment_methods: tuple = ("cod", "bacs", "cheque")
    max_body_bytes: int = 65536
    product_cache_ttl: int = 60  # seconds a cached listing is fresh
    product_cache_stale_ttl: int = 86400  # seconds it may still be served while the DB is down
    cart_ttl: int = 172800  # seconds a cart lives in Redis (WooCommerce: 48 h)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            want = _base_type(f)
            try:
                coerced = _coerce(value, want)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"shop config field {f.name!r}: expected {want.__name__}, got {value!r}"
                ) from None
            object.__setattr__(self, f.name, coerced)
        if self.max_retries < 0 or self.cart_wait_replicas < 0:
            raise ConfigError("shop config: max_retries and cart_wait_replicas must be >= 0")
        if self.profile not in PROFILES:
            raise ConfigError(f"shop config: profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.retry_backoff not in ("constant", "exponential"):
            raise ConfigError("shop config: retry_backoff must be 'constant' or 'exponential'")

    def public(self) -> dict:
        """The configuration without secrets (for the health route and logs)."""
        hidden = {"db_password", "redis_password", "consumer_secret", "nonce_secret"}
        return {k: ("***" if k in hidden and v else v) for k, v in dataclasses.asdict(self).items()}


_TYPES = {
    "str": str, "int": int, "float": float, "bool": bool, "tuple": tuple,
    "Optional[str]": str, "Optional[int]": int, "Optional[float]": float,
}


def _base_type(f: dataclasses.Field) -> type:
    return _TYPES[str(f.type)]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(value: Any, want: type) -> Any:
    if want is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if want is tuple:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)
    if want is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    if want in (int, float) and isinstance(value, bool):
        raise TypeError(value)
    return want(value)


def load_config(path: Optional[str] = None, environ: Mapping[str, str] = os.environ) -> ShopConfig:
    """Read the JSON file (path or ``$WOOLAB_SHOP_CONFIG``) and apply ``SHOP_*`` overrides."""
    path = path or environ.get(CONFIG_ENV)
    data: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read shop config {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"shop config {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"shop config {path} must hold a JSON object")
    names = {f.name for f in dataclasses.fields(ShopConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"shop config {path}: unknown field(s) {', '.join(unknown)}")
    for name in names:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            data[name] = None if env_value == "" else env_value
    if environ.get(ACCESS_LOG_ENV):
        data["access_log"] = environ[ACCESS_LOG_ENV]
    return ShopConfig(**apply_profile_defaults(data))


def resolver_for(config: ShopConfig):
    """The shop's resolver: the lab's DNS server (or the system's), honouring the TTL unless
    `dns_cache_seconds` makes it keep addresses longer (the stale-DNS client)."""
    from groundfloor.resolve import Resolver
    return Resolver(config.dns_server, cache_seconds=config.dns_cache_seconds)
