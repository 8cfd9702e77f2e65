"""Waived guardrails, said out loud: each is a WARN row of the preflight, a line of the
confirmation text and a line of the report (`target.json` `waivers`). docs/before-aws.md lists
every waiver and what it lets through; a test keeps that list and `WAIVERS` equal.
"""
from dataclasses import dataclass
from typing import Callable, List

from chaosext import guardrails, settings

from .context import Context
from .table import WARN, Row

__all__ = ["Waiver", "WAIVERS", "active", "rows", "lines"]


@dataclass(frozen=True)
class Waiver:
    name: str  # how the operator asks for it
    lets_through: str  # what it lets through that would be refused otherwise
    applies: Callable[[Context], bool]


def _config_flag(key: str) -> Callable[[Context], bool]:
    return lambda context: settings.flag(context.setting(key, False))


def _verify_off(key: str) -> Callable[[Context], bool]:
    return lambda context: settings.tristate(
        settings.lookup(key, context.configuration, context.secrets)) is False


WAIVERS = (
    Waiver("chaos_waive_tag_guardrail", f"resources without the allow tag "
           f"({guardrails.DEFAULT_ALLOW_TAG} or chaos_allow_tag) can be failed over",
           _config_flag("chaos_waive_tag_guardrail")),
    Waiver("--accept-any-account", "the run acts in whatever account the credentials resolve to "
           "(no GAMEDAY_ALLOWED_ACCOUNTS)", lambda context: context.accept_any_account),
    Waiver("GAMEDAY_MYSQL_TLS_VERIFY=false", "the DB endpoint's TLS certificate and host name are not "
           "verified (a man in the middle would not be noticed)", _verify_off("mysql_tls_verify")),
    Waiver("GAMEDAY_REDIS_TLS_VERIFY=false", "the cache endpoint's TLS certificate and host name are "
           "not verified", _verify_off("redis_tls_verify")),
)


def active(context: Context) -> List[Waiver]:
    """The waivers this run asks for (on the lab too: the report says so either way)."""
    return [w for w in WAIVERS if w.applies(context)]


def rows(context: Context) -> List[Row]:
    return [Row("waivers", w.name, WARN, f"WAIVED: {w.lets_through}",
                "drop the waiver unless you mean it (docs/before-aws.md, \"Waivers\")")
            for w in active(context)]


def lines(context: Context) -> List[str]:
    return [f"WAIVED {w.name}: {w.lets_through}" for w in active(context)]
