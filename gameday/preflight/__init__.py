"""The preflight: everything a run needs, checked read-only, printed as one table.

`gameday run --dry-run` is the preflight and nothing else (no `chaos run`, so no load, no
orders, no carts, no probe writes). A real `--target aws` run does the same preflight first and
starts only when it is ready and the operator confirmed the plan. Sections, in order:
required settings, credentials, targets, allow-lists, IAM, reachability, Store API, plan.
"""
import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

from chaosext.errors import GamedayError

from . import cloud, guards, plan, reach, waivers
from .context import Context, build_context, environment
from .table import FAIL, INFO, OK, Row, ready, render

__all__ = ["Preflight", "run_preflight", "render", "Row", "build_context", "environment"]

# configuration entries whose lab default must never be used against AWS
REQUIRED_ON_AWS = {"shop_url": "GAMEDAY_SHOP_URL", "db_instance_id": "GAMEDAY_DB_INSTANCE_ID",
                   "db_cluster_id": "GAMEDAY_DB_CLUSTER_ID", "replication_group_id": "GAMEDAY_REPLICATION_GROUP_ID"}


def _lab_default(spec: dict, key: str) -> bool:
    """Whether the experiment's own default for `key` names a lab resource (an empty default
    means the experiment works without one: az-power-interruption's DB cluster)."""
    entry = (spec.get("configuration") or {}).get(key)
    return not isinstance(entry, dict) or entry.get("default") not in (None, "")


SECTIONS = ["settings", "waivers", "credentials", "target", "allow-lists", "iam", "reach", "store", "plan"]


@dataclass
class Preflight:
    rows: List[Row]
    facts: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ready(self) -> bool:
        return ready(self.rows)

    def table(self) -> str:
        verdict = "READY" if self.ready else "NOT READY"
        return f"{render(self.rows)}\npreflight: {verdict} ({self.seconds:.1f} s, read-only)"

    def as_dict(self) -> dict:
        return {"ready": self.ready, "seconds": round(self.seconds, 2),
                "rows": [r.as_dict() for r in self.rows]}


def _required_rows(context: Context) -> List[Row]:
    """On AWS, the ids and shop URL must be given: the experiments' defaults are the lab's."""
    if context.target != "aws":
        return []
    used = json.dumps([context.spec.get(k) for k in ("method", "rollbacks", "steady-state-hypothesis")])
    rows = []
    for key, env in REQUIRED_ON_AWS.items():
        if key != "shop_url" and ("${" + key + "}" not in used or not _lab_default(context.spec, key)):
            continue
        if context.env.get(env):
            rows.append(Row("settings", env, OK, context.env[env]))
        else:
            rows.append(Row("settings", env, FAIL, "not set (the experiment's default is the lab's)",
                            f"set {env}"))
    if not context.region:
        rows.append(Row("settings", "AWS_REGION", FAIL, "no region", "pass --region or set AWS_REGION"))
    return rows


def _guarded(section: str, check) -> List[Row]:
    """A section that cannot even run becomes one FAIL row naming why."""
    try:
        return check()
    except GamedayError as exc:
        return [Row(section, "check", FAIL, str(exc), "see the message")]


def run_preflight(context: Context) -> Preflight:
    started = time.monotonic()
    shop_url = (context.setting("shop_url") or context.env.get("GAMEDAY_SHOP_URL") or "").rstrip("/")
    rows = _required_rows(context)
    with environment(context.env):  # boto3 and the clients read the target's environment
        rows += waivers.rows(context)
        context.facts["waivers"] = waivers.lines(context)
        rows += _guarded("credentials", lambda: cloud.credential_rows(context))
        if any(r.status == FAIL for r in rows):  # no credentials: nothing else can be read
            return Preflight(rows, context.facts, time.monotonic() - started)
        targets = _guarded("target", lambda: cloud.target_rows(context))
        context.facts["target_failed"] = any(r.status == FAIL for r in targets)
        rows += targets
        rows += guards.allow_list_rows(context, context.facts.get("account"), shop_url)
        rows += _guarded("iam", lambda: cloud.iam_rows(context))
        if context.target == "aws" and shop_url and not guards.shop_url_allowed(
                shop_url, guards.listed(context, "shop_urls")):
            rows.append(Row("reach", "shop", INFO, f"{shop_url} not contacted: it is not on the shop URL allow-list"))
        else:
            rows += _guarded("reach", lambda: reach.shop_rows(context, shop_url))
        rows.append(reach.mysql_row(context))
        rows.append(reach.redis_row(context))
    rows += plan.plan_rows(context, shop_url)
    rows.sort(key=lambda r: SECTIONS.index(r.section) if r.section in SECTIONS else len(SECTIONS))
    return Preflight(rows, context.facts, time.monotonic() - started)


__all__ += ["OK", "FAIL"]
