"""Chaos Toolkit control: shopper load (headless Locust) around an experiment.

Starts Locust before the steady-state hypothesis and stops it after the rollbacks, so the fault is
injected and judged under load. The load summary goes to ``RUN_DIR/load-summary.json`` and into
the journal as the extension named ``gameday-load``. Declare it once at the experiment level::

    "controls": [{"name": "shopper-load", "provider": {
        "type": "python", "module": "chaosext.load.control",
        "arguments": {"users": 20, "spawn_rate": 10, "max_duration": 900}}}]

Arguments (all optional): ``users`` (10), ``spawn_rate``, ``locustfile`` (the pack's
``chaosext/loadtests/shopper.py``), ``host`` (else configuration ``shop_url`` / ``$GAMEDAY_SHOP_URL``),
``tags``, ``exclude_tags``, ``workers`` (a Locust master plus this many local worker processes),
``remote_workers`` (more workers joining from other machines), ``master_bind`` (``HOST:PORT`` the
master listens on; loopback and a free port by default), ``run_dir`` (else configuration
``gameday_run_dir`` / ``$GAMEDAY_RUN_DIR`` / a new ``reports/load-*``), ``max_duration`` (Locust's
``--run-time``; by default, or with ``"auto"``, the longest the experiment can last when every
wait uses its whole timeout, see chaosext.thresholds, so the bound covers a slow AWS failover),
``stop_grace`` (15 s), ``start_timeout`` (30 s), ``warmup`` (seconds
of load before the hypothesis, 0), ``shopper`` (e.g. ``{"think_min": 0, "checkout_weight": 5}``),
``locust_args`` (extra Locust flags), ``start_at`` (``hypothesis`` | ``experiment`` | ``method``),
``web`` (``HOST:PORT``, loopback only: run with Locust's own web UI there instead of headless,
still self-starting and bounded; else configuration ``load_web_bind``; chaosext.load.web).

The target must be loopback unless configuration ``load_allow_remote_host`` is true. A load that
cannot start (bad argument, unreachable shop, Locust failing) interrupts the experiment with one
message naming the cause; whatever was measured is still summarised.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Optional

from chaoslib.exceptions import InterruptExecution
from chaoslib.extension import set_extension
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosext import thresholds
from chaosext.load.config import RUN_DIR_ENV, flag, new_run_dir, run_dir_of, shop_url_of
from chaosext.load.process import LoadError, LoadProcess, LoadSettings, write_json
from chaosext.load.settings import parse_bind
from chaosext.load.web import web_bind
from groundfloor import run_files

__all__ = ["configure_control", "before_experiment_control", "before_hypothesis_control",
           "before_method_control", "after_rollback_control", "after_experiment_control",
           "cleanup_control", "current_load"]

logger = logging.getLogger("chaostoolkit")

EXTENSION_NAME = "gameday-load"
SETTING_ARGS = ("users", "spawn_rate", "locustfile", "tags", "exclude_tags", "workers",
                "processes", "master", "expect_workers", "master_bind_host", "master_bind_port",
                "worker_master_host", "max_duration", "stop_grace", "start_timeout", "shopper",
                "locust_args")
# older or shorter spellings of the same settings
ALIASES = {"remote_workers": "expect_workers"}

_state: Dict[str, Any] = {"load": None, "summary": None, "attempted": False,
                          "experiment_seconds": None}
BOUND_MARGIN = 120.0  # seconds of load bound beyond the experiment's longest run


def current_load() -> Optional[LoadProcess]:
    """The load this process is running (for tests and other controls), if any."""
    return _state["load"]


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, **arguments: Any) -> None:
    """Forget any previous run's load (one control module serves one experiment at a time) and
    work out how long this experiment can last (the default bound of the load)."""
    _stop("new experiment")
    _state.update(load=None, summary=None, attempted=False,
                  experiment_seconds=thresholds.experiment_seconds(experiment, configuration))


def before_experiment_control(context: Experiment, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    if arguments.get("start_at") == "experiment":
        _start(arguments, configuration)


def before_hypothesis_control(context: Any, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    """Start the load before the first steady-state hypothesis (the second one finds it running)."""
    if arguments.get("start_at", "hypothesis") == "hypothesis":
        _start(arguments, configuration)


def before_method_control(context: Any, configuration: Configuration = None,
                          secrets: Secrets = None, **arguments: Any) -> None:
    """Start here when there is no hypothesis (or ``start_at: method``)."""
    _start(arguments, configuration)


def after_rollback_control(context: Any, state: Any = None, configuration: Configuration = None,
                           secrets: Secrets = None, **arguments: Any) -> None:
    _stop("after rollbacks")


def after_experiment_control(context: Experiment, state: Journal = None,
                             configuration: Configuration = None, secrets: Secrets = None,
                             **arguments: Any) -> None:
    """Stop the load if the rollbacks did not (failed/interrupted runs) and journal the summary."""
    _stop(f"experiment {state.get('status', 'ended') if isinstance(state, dict) else 'ended'}")
    if isinstance(state, dict) and _state["summary"] is not None:
        set_extension(state, {"name": EXTENSION_NAME, **_state["summary"]})


def cleanup_control() -> None:
    """Last hook chaoslib calls, even after errors: never leave Locust behind."""
    _stop("cleanup")


# ---------------------------------------------------------------- internals
def _start(arguments: Dict[str, Any], configuration: Configuration) -> None:
    if _state["attempted"]:
        return
    _state["attempted"] = True
    configuration = configuration or {}
    try:
        settings = _settings(arguments, configuration)
    except LoadError as exc:
        _fail(str(exc), arguments.get("run_dir") or configuration.get("gameday_run_dir"))
    if not os.environ.get(RUN_DIR_ENV):  # probes in this process read the same run dir
        os.environ[RUN_DIR_ENV] = settings.run_dir
    load = LoadProcess(settings)
    try:
        load.start()
    except LoadError as exc:
        _state["summary"] = load.stop("start-up failed")
        raise InterruptExecution(str(exc)) from None
    except BaseException:  # SIGTERM/Ctrl-C while workers join: keep what was measured
        _state["summary"] = load.stop("interrupted during start-up")
        raise
    _state["load"] = load
    warmup = float(arguments.get("warmup") or 0)
    if warmup > 0:
        logger.info("load: warming up for %g s", warmup)
        time.sleep(warmup)


def _settings(arguments: Dict[str, Any], configuration: Configuration) -> LoadSettings:
    host = shop_url_of(configuration, arguments.get("host"))
    if not host:
        raise LoadError("load: no shop URL: pass host, or set configuration shop_url or "
                        "$GAMEDAY_SHOP_URL")
    try:
        run_dir = run_dir_of(configuration, arguments.get("run_dir"))
    except Exception:  # none configured: a fresh directory of its own
        run_dir = new_run_dir()
    arguments = {ALIASES.get(k, k): v for k, v in arguments.items()}
    kwargs = {k: arguments[k] for k in SETTING_ARGS if arguments.get(k) is not None}
    bound = _bound(arguments)
    kwargs.pop("max_duration", None)
    if bound is not None:
        kwargs["max_duration"] = bound
    if arguments.get("master_bind"):
        kwargs["master_bind_host"], kwargs["master_bind_port"] = parse_bind(arguments["master_bind"])
    for key in ("tags", "exclude_tags", "locust_args"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = kwargs[key].split()
    for key in ("users", "workers", "processes", "expect_workers", "master_bind_port"):
        if isinstance(kwargs.get(key), str) and kwargs[key].strip().lstrip("-").isdigit():
            kwargs[key] = int(kwargs[key])
    if "master" in kwargs:
        kwargs["master"] = flag(kwargs["master"])
    web = arguments.get("web") or configuration.get("load_web_bind")
    if web:
        kwargs["web_host"], kwargs["web_port"] = web_bind(str(web))
    return LoadSettings(host=host, run_dir=run_dir,
                        allow_remote_host=flag(configuration.get("load_allow_remote_host")),
                        **kwargs)


def _bound(arguments: Dict[str, Any]) -> Optional[float]:
    """The load's run-time bound: at least as long as the experiment can last.

    An explicit ``max_duration`` shorter than that is kept (it is the operator's cap) but
    warned about: the load would stop in the middle of a slow failover.
    """
    longest = _state["experiment_seconds"]
    if longest is None:
        return None if arguments.get("max_duration") in (None, "auto") else \
            arguments["max_duration"]
    needed = longest + float(arguments.get("warmup") or 0) + BOUND_MARGIN
    given = arguments.get("max_duration")
    if given in (None, "auto"):
        return needed
    try:
        if float(given) < needed:
            logger.warning("load: max_duration %s s is shorter than this experiment can last "
                           "(%.0f s when every wait uses its timeout); the load may stop before "
                           "the experiment ends: remove it to let the pack size it", given, needed)
    except (TypeError, ValueError):
        pass  # LoadSettings refuses it with a clear message
    return given


def _fail(message: str, run_dir: Optional[str]) -> None:
    """Record a load that could not even be set up, then interrupt the experiment."""
    logger.error(message)
    _state["summary"] = {"status": "failed", "error": message, "requests": 0, "failures": 0,
                         "carts_lost": 0, "orders_acknowledged": 0, "problems": [message]}
    if run_dir:
        write_json(os.path.join(os.path.abspath(run_dir), run_files.LOAD_SUMMARY), _state["summary"])
    raise InterruptExecution(message)


def _stop(reason: str) -> None:
    load = _state["load"]
    if load is None:
        return
    _state["load"] = None
    summary = load.stop(reason)
    _state["summary"] = summary
    for problem in summary["problems"]:
        logger.warning("load: %s", problem)
    logger.info("load: %d requests, %d failures, %d carts lost, %d orders acknowledged",
                summary["requests"], summary["failures"], summary["carts_lost"],
                summary["orders_acknowledged"])

