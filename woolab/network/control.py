"""`gameday lab network | resolve` and the status view, from any process: they talk to the
controller's `/_lab/network` route and to the lab's DNS server."""
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlencode

from groundfloor.resolve import NameNotResolved, Resolver

from ..config import LabConfig
from ..errors import LabInvalidState


def impair(state_dir: Path, values: Dict[str, object]) -> dict:
    """Apply one impairment (keys as the route's: az, direction, delay_ms, jitter_ms,
    loss_percent, bandwidth_kbps, blackhole, partition, sentinels, seconds)."""
    from .. import manage
    config = manage.require_up(state_dir)
    query = {k: v for k, v in values.items() if v not in (None, False, "")}
    return manage.call(config, "/_lab/network?" + urlencode(query), method="POST")["impairment"]


def clear(state_dir: Path, az: Optional[str] = None) -> List[dict]:
    from .. import manage
    config = manage.require_up(state_dir)
    query = {"clear": "1", **({"az": az} if az else {})}
    return manage.call(config, "/_lab/network?" + urlencode(query), method="POST")["cleared"]


def in_force(config: LabConfig) -> List[dict]:
    from .. import manage
    return manage.call(config, "/_lab/network")["impairments"]


def by_az(impairments: List[dict]) -> Dict[str, str]:
    """AZ -> what is impaired there, for the status column."""
    found: Dict[str, List[str]] = {}
    for imp in impairments:
        found.setdefault(imp["az"], []).append(imp["summary"])
    return {az: "; ".join(words) for az, words in found.items()}


def resolve(config: LabConfig, name: str) -> str:
    """The addresses the lab's DNS server answers for `name` right now (comma-separated)."""
    try:
        return ",".join(Resolver(f"127.0.0.1:{config.dns_port}", cache_seconds=0).addresses(name))
    except NameNotResolved:
        raise LabInvalidState(f"{name}: the lab's DNS server (127.0.0.1:{config.dns_port}) knows no such name; "
                              "`gameday lab status` lists the endpoints") from None


def endpoint_addresses(config: LabConfig, names: List[str]) -> Dict[str, str]:
    """name -> current address ("-" when it resolves to nothing right now)."""
    found = {}
    for name in names:
        try:
            found[name] = resolve(config, name)
        except LabInvalidState:
            found[name] = "-"
    return found
