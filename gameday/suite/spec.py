"""A suite file: which experiments run, in which order, with which settings, weights and gate.

A suite is JSON (docs/suites.md)::

    {"title": "...", "targets": ["lab", "aws"], "timing": "fast", "gate": {"min_score": 60},
     "experiments": [{"experiment": "rds-force-failover", "weight": 3, "users": 10,
                      "category": "redundancy", "rto_threshold_seconds": {"rds": 120},
                      "impact_budget": {"error_seconds": 20}, "shop_settings": {"retry": "true"}}]}

Everything is checked before anything runs, so a mistake costs no game day: one clear
GamedayError (one line, the CLI exits non-zero) names the file, the entry and the problem.
"""
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext.errors import GamedayError

__all__ = ["SUITES_DIR", "TARGETS", "BUDGET_FIGURES", "Entry", "Suite", "catalog", "resolve",
           "load_suite", "parse_suite"]

SUITES_DIR = Path(str(importlib.resources.files("gameday").joinpath("suites")))
TARGETS = ("lab", "aws")
# impact figures a budget may bound: key in the budget -> where the run's summary keeps it
BUDGET_FIGURES = ("error_seconds", "failed_checkouts", "affected_for_seconds",
                  "time_to_recover_seconds")
SUITE_KEYS = {"title", "description", "targets", "timing", "gate", "experiments"}
ENTRY_KEYS = {"experiment", "name", "weight", "category", "users", "spawn_rate", "shop_settings",
              "timing", "rto_threshold_seconds", "impact_budget"}
DEFAULT_MIN_SCORE = 50.0


@dataclass
class Entry:
    """One experiment of a suite with the settings it runs with."""
    name: str
    experiment: str
    path: Path
    weight: float = 1.0
    category: str = "redundancy"
    users: Optional[int] = None
    spawn_rate: Optional[float] = None
    shop_settings: Dict[str, str] = field(default_factory=dict)
    timing: Optional[str] = None
    rto_threshold_seconds: Any = None
    impact_budget: Dict[str, float] = field(default_factory=dict)
    lab_only: bool = False
    skip_reason: Optional[str] = None  # set for the chosen target, e.g. lab-only on AWS

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "experiment": self.experiment, "weight": self.weight,
                "category": self.category, "users": self.users, "spawn_rate": self.spawn_rate,
                "shop_settings": self.shop_settings, "timing": self.timing,
                "rto_threshold_seconds": self.rto_threshold_seconds,
                "impact_budget": self.impact_budget, "lab_only": self.lab_only,
                "skip_reason": self.skip_reason}


@dataclass
class Suite:
    name: str
    path: Path
    title: str
    description: str
    targets: List[str]
    timing: Optional[str]
    min_score: float
    entries: List[Entry]

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description,
                "targets": self.targets, "timing": self.timing,
                "gate": {"min_score": self.min_score},
                "experiments": [e.as_dict() for e in self.entries]}


def catalog() -> List[Dict[str, str]]:
    """The suites shipped in gameday/suites/ (`suites/` in a checkout)."""
    out = []
    for path in sorted(SUITES_DIR.glob("*.json")):
        try:
            title = json.loads(path.read_text()).get("title", "")
        except ValueError:
            title = "(not valid JSON)"
        out.append({"name": path.stem, "title": title, "path": str(path)})
    return out


def resolve(name_or_path: str) -> Path:
    """A shipped suite's name or a file path."""
    from ..run import find_shipped
    return find_shipped(name_or_path, SUITES_DIR, [s["name"] for s in catalog()], "suite")


def load_suite(name_or_path: str, target: str) -> Suite:
    """Read and check a suite for `target`; GamedayError (one line) on any problem."""
    path = resolve(name_or_path)
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise GamedayError(f"suite {path.name} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise GamedayError(f"suite {path}: {exc.strerror or exc}") from None
    return parse_suite(data, path, target)


def parse_suite(data: Any, path: Path, target: str) -> Suite:
    """The checked suite of a parsed file (see the module docstring for the shape)."""
    where = f"suite {path.name}"
    if not isinstance(data, dict):
        raise GamedayError(f"{where}: expected a JSON object with an \"experiments\" list")
    _no_unknown(data, SUITE_KEYS, where)
    targets = data.get("targets", list(TARGETS))
    if not isinstance(targets, list) or not targets or any(t not in TARGETS for t in targets):
        raise GamedayError(f"{where}: \"targets\" must be a non-empty list of {', '.join(TARGETS)}")
    if target not in targets:
        raise GamedayError(f"{where} runs on {', '.join(targets)} only, not on the {target}")
    raw = data.get("experiments")
    if not isinstance(raw, list) or not raw:
        raise GamedayError(f"{where}: \"experiments\" must be a non-empty list")
    gate = data.get("gate", {})
    if not isinstance(gate, dict):
        raise GamedayError(f"{where}: \"gate\" must be an object like {{\"min_score\": 60}}")
    _no_unknown(gate, {"min_score"}, f"{where}: gate")
    min_score = _number(gate.get("min_score", DEFAULT_MIN_SCORE), f"{where}: gate min_score", 0, 100)
    timing = _optional_text(data.get("timing"), f"{where}: timing")
    entries = [_entry(item, i, where, target, targets) for i, item in enumerate(raw, 1)]
    seen = set()
    for entry in entries:
        if entry.name in seen:
            raise GamedayError(f"{where}: the name {entry.name!r} is used twice; give one entry "
                               "a \"name\" of its own")
        seen.add(entry.name)
    return Suite(name=path.stem, path=path, title=str(data.get("title") or path.stem),
                 description=str(data.get("description") or ""), targets=targets, timing=timing,
                 min_score=min_score, entries=entries)


def _entry(item: Any, index: int, where: str, target: str, targets: List[str]) -> Entry:
    """One checked entry: its experiment exists and validates, its settings make sense."""
    from .. import run
    if isinstance(item, str):
        item = {"experiment": item}
    if not isinstance(item, dict) or not isinstance(item.get("experiment"), str):
        raise GamedayError(f"{where}: entry {index} needs \"experiment\" (a name from "
                           "`gameday list` or a path)")
    label = f"{where}: entry {index} ({item.get('name') or item['experiment']})"
    _no_unknown(item, ENTRY_KEYS, label)
    try:
        path = run.resolve(item["experiment"])
    except GamedayError as exc:
        raise GamedayError(f"{label}: {exc}") from None
    spec = run.load_and_validate(path)
    entry = Entry(name=str(item.get("name") or path.stem), experiment=item["experiment"], path=path,
                  weight=_number(item.get("weight", 1), f"{label}: weight", low_open=0),
                  category=str(item.get("category") or "redundancy"),
                  users=_users(item.get("users"), label),
                  spawn_rate=None if item.get("spawn_rate") is None else
                  _number(item["spawn_rate"], f"{label}: spawn_rate", low_open=0),
                  shop_settings=_shop_settings(item.get("shop_settings"), label),
                  timing=_optional_text(item.get("timing"), f"{label}: timing"),
                  rto_threshold_seconds=_threshold(item.get("rto_threshold_seconds"), label),
                  impact_budget=_budget(item.get("impact_budget"), label),
                  lab_only="lab-only" in (spec.get("tags") or []))
    if entry.lab_only and targets == ["aws"]:
        raise GamedayError(f"{label}: {path.stem} runs only on the lab, but this suite is for AWS "
                           "only; remove it or add \"lab\" to \"targets\"")
    if entry.lab_only and target == "aws":
        entry.skip_reason = (f"{path.stem} runs only on the lab (AWS offers no way to inject "
                             "this fault)")
    elif entry.shop_settings and target == "aws":
        entry.skip_reason = "its shop settings configure the lab's stand-in shop, not a store on AWS"
    return entry


def _no_unknown(data: dict, known: set, where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise GamedayError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _number(value: Any, what: str, low: Optional[float] = None, high: Optional[float] = None,
            low_open: Optional[float] = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and low_open is not None and value <= low_open:
        raise GamedayError(f"{what} must be > {low_open:g} (got {value})")
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        span = f" between {low:g} and {high:g}" if low is not None and high is not None else ""
        raise GamedayError(f"{what} must be a number{span} (got {json.dumps(value)})")
    return float(value)


def _users(value: Any, label: str) -> Optional[int]:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GamedayError(f"{label}: users must be a whole number ≥ 1 (got {json.dumps(value)})")
    return value


def _optional_text(value: Any, what: str) -> Optional[str]:
    if value is not None and (not isinstance(value, str) or not value):
        raise GamedayError(f"{what} must be a profile name like \"fast\" or \"aws\"")
    return value


def _shop_settings(value: Any, label: str) -> Dict[str, str]:
    """Shop settings checked like `gameday matrix --setting`: known keys, values the shop takes."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GamedayError(f"{label}: shop_settings must be an object of KEY: VALUE")
    from ..matrix import check_shop_setting, settable
    out = {}
    for key, raw in value.items():
        if key not in settable():
            raise GamedayError(f"{label}: unknown shop setting {key!r} (known: {', '.join(settable())})")
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        check_shop_setting(f"{label}: shop setting {key}", key, text)
        out[key] = text
    return out


def _threshold(value: Any, label: str) -> Any:
    """Seconds, or {service or fault prefix: seconds} as the experiments' own configuration."""
    if value is None:
        return None
    values = value.values() if isinstance(value, dict) else [value]
    for v in values:
        _number(v, f"{label}: rto_threshold_seconds", low_open=0)
    return value


def _budget(value: Any, label: str) -> Dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GamedayError(f"{label}: impact_budget must be an object like {{\"error_seconds\": 20}}")
    _no_unknown(value, set(BUDGET_FIGURES), f"{label}: impact_budget")
    return {k: _number(v, f"{label}: impact_budget {k}", low=0) for k, v in value.items()}
