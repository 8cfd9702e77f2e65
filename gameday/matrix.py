"""`gameday matrix`: one experiment once per combination of shop settings, then one comparison.

``--setting profile=stock,hardened --setting retry=true,false`` runs 4 game days on the lab, each
with its combination applied as stand-in shop settings (like ``gameday run --shop-setting``),
and writes ``reports/<matrix-id>/matrix.html`` + ``matrix.md`` + ``matrix.json`` with one row
per combination (see :mod:`gameday.report.matrix`). Everything is checked before anything runs:
an unknown setting, a value the shop would refuse, an empty value list or more runs than
``max_runs`` is one clear error and nothing is started.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Dict, List, Optional

from chaosext.errors import GamedayError
from woolab import manage
from woolab.config import LabConfig
from woolab.runlock import lab_lock
from woolab.shop.config import ConfigError, ShopConfig

from .interrupt import Interrupted, Interrupts
from .request import RunRequest

DEFAULT_MAX_RUNS = 16
# where the shop is and who it is: the lab sets these, a matrix varies behaviour only
NOT_SETTINGS = {"db_host", "db_port", "db_user", "db_password", "db_name", "db_ssl_ca", "redis_host",
                "redis_port", "redis_password", "redis_username", "redis_ssl", "redis_ssl_ca",
                "redis_reader_port", "consumer_key",
                "consumer_secret", "nonce_secret", "access_log", "dns_server"}


def settable() -> List[str]:
    return sorted(f.name for f in dataclasses.fields(ShopConfig) if f.name not in NOT_SETTINGS)


def check_shop_setting(label: str, key: str, value: str) -> None:
    """Refuse, in one line starting with `label`, a value the stand-in shop would not take."""
    try:
        ShopConfig(**{key: value})
    except ConfigError as exc:
        raise GamedayError(f"{label}: value {value!r} refused ({exc})") from None


def parse_axes(pairs: Optional[List[str]]) -> Dict[str, List[str]]:
    """``["k=v1,v2", ...]`` → ``{"k": ["v1", "v2"]}``, each value checked against the shop config."""
    if not pairs:
        raise GamedayError("give at least one --setting KEY=V1,V2 (e.g. --setting profile=stock,hardened)")
    axes: Dict[str, List[str]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not sep or not key:
            raise GamedayError(f"--setting {pair!r} is not KEY=V1,V2 (e.g. retry=true,false)")
        if key not in settable():
            raise GamedayError(f"--setting {key}: unknown shop setting (known: {', '.join(settable())})")
        if key in axes:
            raise GamedayError(f"--setting {key} given twice: list all its values in one --setting")
        if not values:
            raise GamedayError(f"--setting {key}= has no values (e.g. {key}=V1,V2)")
        if len(set(values)) != len(values):
            raise GamedayError(f"--setting {key}: a value is listed twice ({raw})")
        for value in values:
            check_shop_setting(f"--setting {key}", key, value)
        axes[key] = values
    return axes


def combinations(axes: Dict[str, List[str]], max_runs: int = DEFAULT_MAX_RUNS) -> List[Dict[str, str]]:
    """Every combination, first setting varying slowest; more than ``max_runs`` is refused."""
    total = 1
    for values in axes.values():
        total *= len(values)
    if max_runs < 1:
        raise GamedayError("--max-runs must be at least 1")
    if total > max_runs:
        raise GamedayError(f"the matrix has {total} runs, more than --max-runs {max_runs}; "
                           "drop values or raise --max-runs")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def label(combo: Dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in combo.items())


def slug(combo: Dict[str, str]) -> str:
    return "_".join(f"{k}-{v}" for k, v in combo.items()).replace("/", "-")


def run_matrix(base: RunRequest, pairs: List[str], max_runs: int = DEFAULT_MAX_RUNS,
               matrix_id: Optional[str] = None, interrupts: Optional[Interrupts] = None) -> int:
    """Run the request's experiment once per combination on the lab; write the comparison; 0
    when written. `base` is validated already; each run is a variant of it.

    The lab's lock is held across all runs. A signal stops the run in progress as in `gameday
    run` (rollbacks, report) and then the matrix: no further run starts, the comparison of the
    runs so far is written, and the command exits with 128 + the signal (docs/exit-codes.md)."""
    combos = combinations(parse_axes(pairs), max_runs)
    matrix_id = matrix_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{base.path.stem}-matrix"
    matrix_dir = base.reports_dir / matrix_id
    if matrix_dir.exists() and any(matrix_dir.iterdir()):
        raise GamedayError(f"matrix directory {matrix_dir} already exists; choose another --matrix-id")
    with (interrupts or Interrupts()).installed() as signals, lab_lock(base.lab.state_dir, run_id=matrix_id):
        return _run_all(base, combos, matrix_dir, signals)


def _run_all(base: RunRequest, combos: List[Dict[str, str]], matrix_dir: Path, signals: Interrupts) -> int:
    from . import run
    from .report.matrix import shop_saw, write_matrix_report
    matrix_id, state_dir = matrix_dir.name, base.lab.state_dir
    started = not manage.is_up(state_dir)
    if started:
        print(manage.up(LabConfig.from_env(state_dir=state_dir, timing=base.lab.timing,
                                           tls=base.lab.tls or None)), flush=True)
    access_log = LabConfig.load(state_dir).path("run") / "shop-access.jsonl"
    runs: List[dict] = []
    title = f"{base.path.stem} ({matrix_id})"
    try:
        for i, combo in enumerate(combos, 1):
            print(f"gameday: matrix run {i}/{len(combos)}: {label(combo)}", flush=True)
            _wait_idle(state_dir)
            code = run.game_day(base.variant(f"{matrix_id}/{slug(combo)}", combo), signals)
            run_dir = matrix_dir / slug(combo)
            runs.append({"label": label(combo), "settings": combo, "exit_code": code,
                         "run_dir": str(run_dir), "shop_saw": shop_saw(str(access_log), str(run_dir))})
            if signals.first is not None:  # stopped from outside: no further run
                raise Interrupted(signals.first)
    except BaseException:  # a signal or a lab error: keep what the finished runs measured
        if runs:
            with signals.deferring():
                paths = write_matrix_report(str(matrix_dir), runs, experiment=title + " (incomplete)")
            print(f"gameday: matrix stopped after {len(runs)} runs: {paths['matrix.html']}", flush=True)
        raise
    finally:
        if started:
            with signals.deferring():
                print(manage.down(state_dir), flush=True)
    paths = write_matrix_report(str(matrix_dir), runs, experiment=title)
    print(f"gameday: matrix of {len(runs)} runs: {paths['matrix.html']}", flush=True)
    return 0


def _wait_idle(state_dir: Path) -> None:
    """A run starts only when the previous one's failover has fully settled in the lab."""
    config = manage.require_up(state_dir)
    result = manage.call(config, "/_lab/wait-idle?timeout=120", method="POST", timeout=130)
    if result.get("errors"):
        raise GamedayError("the lab reported errors between matrix runs: " + "; ".join(result["errors"]))
