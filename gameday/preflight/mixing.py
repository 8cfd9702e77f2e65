"""`--target aws` must reach AWS and the staging shop, never the lab or this machine.

Every endpoint a run would use is judged by the addresses it resolves to, wherever it comes
from: the AWS endpoint variables (global and per service), the AWS profile's `endpoint_url`
(global and in its `services` section, as botocore reads them), the shop URL, the notification
URLs, the DNS server and the data-plane hosts. Loopback, unspecified and link-local addresses,
the lab's own endpoint names and the variables only `gameday lab env` sets are leftovers; a name
that does not resolve is one too (refuse when in doubt). One refusal names them all and gives the
one command that clears them.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from chaosext.addresses import Unresolvable, addresses_of, local_kind, url_host
from chaosext.errors import GuardrailRefused

__all__ = ["Leftover", "leftovers", "refuse", "LAB_ENV_VARS", "AWS_SERVICES"]

# what `gameday lab env` exports (woolab/manage.py `env` and `tls_env`; a test keeps them equal)
LAB_ENV_VARS = (
    "GAMEDAY_TARGET", "GAMEDAY_LAB_STATE_DIR", "AWS_ENDPOINT_URL", "GAMEDAY_LAB_CONTROL_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "GAMEDAY_DB_INSTANCE_ID", "GAMEDAY_REPLICATION_GROUP_ID", "GAMEDAY_DNS_SERVER",
    "GAMEDAY_MYSQL_HOST", "GAMEDAY_MYSQL_PORT", "GAMEDAY_MYSQL_USER", "GAMEDAY_MYSQL_PASSWORD",
    "GAMEDAY_MYSQL_DATABASE", "GAMEDAY_REDIS_HOST", "GAMEDAY_REDIS_PORT", "GAMEDAY_REDIS_READER_HOST",
    "GAMEDAY_REDIS_READER_PORT", "GAMEDAY_REDIS_PASSWORD", "GAMEDAY_WEBHOOK_URL",
    "GAMEDAY_SLACK_WEBHOOK_URL", "GAMEDAY_SHOP_URL", "GAMEDAY_SHOP_CONSUMER_KEY",
    "GAMEDAY_SHOP_CONSUMER_SECRET", "GAMEDAY_SHOP_WRITE_CONSUMER_KEY",
    "GAMEDAY_SHOP_WRITE_CONSUMER_SECRET", "GAMEDAY_MYSQL_TLS", "GAMEDAY_MYSQL_CA",
    "GAMEDAY_MYSQL_TLS_VERIFY", "GAMEDAY_REDIS_TLS", "GAMEDAY_REDIS_CA", "GAMEDAY_REDIS_TLS_VERIFY",
    "GAMEDAY_REDIS_USERNAME")
LAB_ONLY_VARS = ("GAMEDAY_LAB_STATE_DIR", "GAMEDAY_LAB_CONTROL_URL")
LAB_MARKERS = ("GAMEDAY_TARGET", "AWS_ACCESS_KEY_ID") + LAB_ONLY_VARS
URL_VARS = ("GAMEDAY_SHOP_URL", "GAMEDAY_WEBHOOK_URL", "GAMEDAY_SLACK_WEBHOOK_URL")
HOST_VARS = ("GAMEDAY_MYSQL_HOST", "GAMEDAY_REDIS_HOST", "GAMEDAY_REDIS_READER_HOST", "GAMEDAY_DNS_SERVER")
# configuration keys an experiment may spell out itself (not through an env entry)
CONFIG_ENDPOINTS = {"shop_url": "url", "mysql_host": "host", "redis_host": "host",
                    "redis_reader_host": "host"}
AWS_SERVICES = ("rds", "elasticache", "sts", "iam", "fis", "cloudwatch")
# hosts a test lets through so it can stand a fake AWS endpoint on loopback; no command-line
# option or variable sets it
TEST_LOOPBACK_HOSTS: frozenset = frozenset()


@dataclass(frozen=True)
class Leftover:
    source: str  # a variable name, `configuration KEY` or `profile P endpoint_url (rds)`
    value: str
    why: str
    variable: Optional[str] = None  # the environment variable that clears it, when it is one

    def text(self) -> str:
        return f"{self.source}={self.value} ({self.why})"


def _judge(host: str, lab_names: Iterable[str]) -> Optional[str]:
    """Why `host` cannot be an AWS or staging endpoint, or None when it can."""
    if not host or host in TEST_LOOPBACK_HOSTS:
        return None
    if host.lower().rstrip(".") in lab_names:
        return "the lab's own endpoint name"
    try:
        kinds = sorted({local_kind(a) or "" for a in addresses_of(host)} - {""})
    except Unresolvable:
        return "does not resolve from this machine"
    return f"{' and '.join(kinds)} address" if kinds else None


def _host_of(value: str, kind: str) -> str:
    if kind == "url":
        return url_host(value)
    host = value.strip()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _lab_names(env: Dict[str, str]) -> List[str]:
    """The endpoint names of a lab this machine has state for (none when there is no lab)."""
    try:
        from woolab.config import LabConfig, default_state_dir
        state_dir = Path(env.get("GAMEDAY_LAB_STATE_DIR") or default_state_dir())
        config = LabConfig.load(state_dir)
        return [n.lower() for n in (config.db_endpoint_name, config.cache_primary_name,
                                    config.cache_reader_name)]
    except Exception:  # no lab state here (or an unreadable one): no lab names to compare with
        return []


def _env_leftovers(env: Dict[str, str], lab_names: List[str]) -> List[Leftover]:
    found = []
    if env.get("GAMEDAY_TARGET") == "lab":
        found.append(Leftover("GAMEDAY_TARGET", "lab", "set by `gameday lab env`", "GAMEDAY_TARGET"))
    found += [Leftover(v, env[v], "only the lab sets it", v) for v in LAB_ONLY_VARS if env.get(v)]
    if env.get("AWS_ACCESS_KEY_ID") == "lab" and env.get("AWS_SECRET_ACCESS_KEY") == "lab":
        found.append(Leftover("AWS_ACCESS_KEY_ID", "lab", "the lab's placeholder credentials",
                              "AWS_ACCESS_KEY_ID"))
    endpoint_vars = sorted(k for k in env if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_"))
    for var in endpoint_vars + list(URL_VARS) + list(HOST_VARS):
        if not env.get(var):
            continue
        kind = "url" if var in URL_VARS or var.startswith("AWS_ENDPOINT_URL") else "host"
        why = _judge(_host_of(env[var], kind), lab_names)
        if why:
            found.append(Leftover(var, env[var], why, var))
    return found


def _profile_leftovers(env: Dict[str, str], profile: Optional[str], lab_names: List[str],
                       what: str) -> List[Leftover]:
    """`endpoint_url` in the AWS profile (global or per service), as botocore would use it."""
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider
    session = botocore.session.Session(profile=profile or env.get("AWS_PROFILE") or None)
    if str(session.get_config_variable("ignore_configured_endpoint_urls")).lower() == "true":
        return []
    try:
        scoped = session.get_scoped_config()
    except Exception as exc:  # ProfileNotFound, a broken config file: say which
        raise GuardrailRefused(f"{what} refused: the AWS profile cannot be read ({exc}); "
                               "nothing was done") from None
    found, name = [], session.profile or "default"
    for service in AWS_SERVICES:
        url = ConfiguredEndpointProvider(session.full_config, scoped, service, environ={}).provide()
        why = _judge(url_host(url), lab_names) if url else None
        if why:
            found.append(Leftover(f"profile {name} endpoint_url ({service})", url, why))
    return found


def leftovers(env: Dict[str, str], spec: Optional[dict] = None, profile: Optional[str] = None,
              what: str = "--target aws") -> List[Leftover]:
    """Every endpoint of an AWS run that points at the lab or this machine (see the module)."""
    from .context import environment
    lab_names = _lab_names(env)
    found = _env_leftovers(env, lab_names)
    named = ((spec or {}).get("configuration") or {}).get("aws_profile_name")
    profile = profile or (named if isinstance(named, str) and named else None)
    for key, kind in CONFIG_ENDPOINTS.items():
        value = ((spec or {}).get("configuration") or {}).get(key)
        if isinstance(value, str) and value:
            why = _judge(_host_of(value, kind), lab_names)
            if why:
                found.append(Leftover(f"configuration {key}", value, why))
    with environment(env):
        found += _profile_leftovers(env, profile, lab_names, what)
    return found


def refuse(env: Dict[str, str], spec: Optional[dict] = None, profile: Optional[str] = None,
           what: str = "--target aws") -> None:
    """One refusal naming every leftover, with the one command that clears them; nothing is sent."""
    found = leftovers(env, spec, profile, what)
    if not found:
        return
    lab_env = any(f.variable in LAB_MARKERS for f in found)  # `gameday lab env` was evaluated
    clear = [v for v in LAB_ENV_VARS if v in env] if lab_env else []
    clear += [f.variable for f in found if f.variable and f.variable not in clear]
    fixes = [f"clear them with: unset {' '.join(clear)}"] if clear else []
    if any(f.source.startswith("profile ") for f in found):
        fixes.append("remove endpoint_url from the AWS profile (or export AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true)")
    if any(f.source.startswith("configuration ") for f in found):
        fixes.append("point the experiment's configuration at your staging endpoints")
    raise GuardrailRefused(f"{what} refused: {len(found)} setting(s) point at the lab or at this "
                           f"machine, not at AWS or your staging shop: "
                           f"{'; '.join(f.text() for f in found)}; {'; '.join(fixes)}; nothing was done")
