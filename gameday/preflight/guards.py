"""Guardrails the `gameday` program applies before anything leaves the runner.

- (`mixing.py`: `--target aws` with any endpoint on the lab or this machine is refused before
  boto3 is even asked for credentials.)
- `allow_list_rows`: account, region, resource ids and shop URL against their allow-lists
  (`GAMEDAY_ALLOWED_ACCOUNTS`, `GAMEDAY_ALLOWED_REGIONS`, `GAMEDAY_ALLOWED_RESOURCES`,
  `GAMEDAY_ALLOWED_SHOP_URLS`, comma-separated). No account allow-list is a FAIL unless the
  operator passed `--accept-any-account`; a shop URL off its list is a FAIL for any remote load.
- `confirm`: the operator confirms on a terminal, or CI passes `--yes`. A process outside the
  terminal's foreground process group (started under `timeout`, or with `&`) has no terminal to
  ask on: reading would stop it (SIGTTIN).
"""
import os
import sys
from typing import Callable, List, Optional
from urllib.parse import urlsplit

from chaosext.addresses import is_loopback_url
from chaosext.errors import Refused

from .context import Context
from .table import FAIL, OK, WARN, Row

__all__ = ["is_loopback_url", "allow_list_rows", "listed", "shop_url_allowed", "confirm",
           "interactive", "RUN_PROMPT"]

RUN_PROMPT = "Type yes to run these faults and this load: "
ALLOW_ENV = {"accounts": "GAMEDAY_ALLOWED_ACCOUNTS", "regions": "GAMEDAY_ALLOWED_REGIONS",
             "resources": "GAMEDAY_ALLOWED_RESOURCES", "shop_urls": "GAMEDAY_ALLOWED_SHOP_URLS"}
ALLOW_CONFIG = {"accounts": "aws_allowed_accounts", "regions": "aws_allowed_regions",
                "resources": "aws_allowed_resources", "shop_urls": "allowed_shop_urls"}


def listed(context: Context, which: str) -> List[str]:
    value = context.env.get(ALLOW_ENV[which]) or context.setting(ALLOW_CONFIG[which]) or ""
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _norm(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{parts.path.rstrip('/')}"


def shop_url_allowed(url: str, allowed: List[str]) -> bool:
    """Exact scheme://host[:port], and the URL's path equal to or under an allowed one."""
    mine = _norm(url)
    return any(mine == _norm(a) or mine.startswith(_norm(a) + "/") for a in allowed)


def _account_row(context: Context, account: Optional[str]) -> Row:
    allowed = listed(context, "accounts")
    if not allowed:
        if context.accept_any_account:
            return Row("allow-lists", "account", WARN, f"any account accepted (--accept-any-account); "
                       f"resolved account {account or '?'}")
        return Row("allow-lists", "account", FAIL, "no account allow-list",
                   f"set {ALLOW_ENV['accounts']} to your staging account id (or pass --accept-any-account)")
    if account in allowed:
        return Row("allow-lists", "account", OK, f"{account} is in {allowed}")
    return Row("allow-lists", "account", FAIL, f"account {account or '?'} is not in {allowed}",
               f"use credentials of an allowed account, or add it to {ALLOW_ENV['accounts']}")


def _recommended_row(context: Context, which: str, item: str, values: List[str], why_set: str,
                     fail_fix: str) -> Row:
    """Region and resource ids: WARN without a list (it is recommended), FAIL outside it."""
    allowed = listed(context, which)
    shown = ", ".join(values) or "none"
    if not allowed:
        return Row("allow-lists", item, WARN, f"no {item} allow-list ({shown} accepted)",
                   f"set {ALLOW_ENV[which]} {why_set}")
    outside = [v for v in values if v not in allowed]
    if outside:
        return Row("allow-lists", item, FAIL, f"{', '.join(outside)} not in {allowed}",
                   f"{fail_fix}, or add it to {ALLOW_ENV[which]}")
    return Row("allow-lists", item, OK, f"{shown} in {allowed}")


def _shop_row(context: Context, shop_url: Optional[str]) -> Row:
    allowed = listed(context, "shop_urls")
    if not shop_url:
        return Row("allow-lists", "shop URL", FAIL, "no shop URL", "set GAMEDAY_SHOP_URL to your staging store")
    if shop_url_allowed(shop_url, allowed):
        return Row("allow-lists", "shop URL", OK, f"{shop_url} is allowed: load and checkout probes may go there")
    return Row("allow-lists", "shop URL", FAIL, f"{shop_url} is not in the shop URL allow-list {allowed}",
               f"add it to {ALLOW_ENV['shop_urls']} (staging stores only: the run places real orders)")


def allow_list_rows(context: Context, account: Optional[str], shop_url: Optional[str]) -> List[Row]:
    """The allow-list rows of an AWS run (the lab is its own allow-list: loopback only)."""
    if context.target != "aws":
        return [Row("allow-lists", "target", OK, "the lab: loopback endpoints only")]
    return [_account_row(context, account),
            _recommended_row(context, "regions", "region", [context.region or "?"],
                             "to pin runs to staging regions", "pass --region with an allowed region"),
            _recommended_row(context, "resources", "resources", [rid for _, rid in context.resources],
                             "to the ids you may fail over (the allow tag applies either way)",
                             "point the experiment at allowed resources"),
            _shop_row(context, shop_url)]


def interactive() -> bool:
    """Whether a prompt can be answered: stdin is a terminal and this process is in the
    terminal's foreground process group (from a background group, reading it stops the process
    with SIGTTIN: `timeout` puts its command in a group of its own)."""
    try:
        fd = sys.stdin.fileno()
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def confirm(summary: str, yes: bool, ask: Optional[Callable[[str], str]] = None,
            is_terminal: Optional[Callable[[], bool]] = None, prompt: str = RUN_PROMPT,
            what: str = "run") -> None:
    """Go on only after the operator typed "yes" (or passed --yes); otherwise refuse (exit 3)."""
    if yes:
        return
    terminal = is_terminal() if is_terminal else interactive()
    if not terminal:
        raise Refused(f"{what} not confirmed: no terminal to ask on (stdin is not a terminal in the "
                      f"foreground); pass --yes to confirm without one; nothing was done")
    print(summary, flush=True)
    try:
        answer = (ask or input)(prompt)
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        raise Refused(f"{what} not confirmed; nothing was done")
