"""Locust as a headless child process that never outlives the process that started it.

Locust monkey-patches the interpreter with gevent on import, so it always runs in its own process
(``python -m locust``). Four layers keep it from outliving a run:

1. :meth:`LoadProcess.stop`: SIGINT to Locust (it writes its CSV/HTML and flushes the timeline),
   then SIGTERM and SIGKILL to its whole process group (``--processes`` workers included);
2. an ``atexit`` hook and a SIGTERM handler in this process that stop every live load;
3. the recorder inside Locust quits when this process disappears (``GAMEDAY_LOAD_PARENT_PID``),
   which covers a SIGKILL or crash of this process;
4. ``--run-time`` set to ``max_duration`` on Locust's own command line, the last line of defence.
"""
from __future__ import annotations

import atexit
import dataclasses
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import urlsplit

from chaosext.errors import GamedayError
from chaosext.load.timeline import read_orders, totals

__all__ = ["LoadError", "LoadSettings", "LoadProcess", "DEFAULT_LOCUSTFILE", "stop_all",
           "check_host", "diagnose", "read_json", "write_json"]

logger = logging.getLogger("chaostoolkit")

# shipped as package data (chaosext/loadtests/), so an installed wheel finds it like a checkout does
DEFAULT_LOCUSTFILE = str(Path(__file__).resolve().parents[1] / "loadtests" / "shopper.py")
MAX_DURATION_LIMIT = 24 * 3600
PID_FILE = "load.pid"


class LoadError(GamedayError):
    """The load could not start or was set up wrongly; the message names the cause."""


@dataclass
class LoadSettings:
    """What to run: Locust's own knobs plus the shopper's settings (sent as ``SHOPPER_*``)."""

    host: str
    run_dir: str
    users: int = 10
    spawn_rate: Optional[float] = None  # users started per second; default: all within ~1 s
    locustfile: str = DEFAULT_LOCUSTFILE
    tags: Sequence[str] = ()
    exclude_tags: Sequence[str] = ()
    processes: Optional[int] = None  # local worker processes (Locust --processes; -1 = per core)
    master: bool = False  # run as --master and wait for remote --worker processes
    expect_workers: Optional[int] = None
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    max_duration: float = 3600.0  # Locust's --run-time: it stops itself after this
    stop_grace: float = 15.0  # seconds Locust gets to stop after SIGINT before SIGTERM/SIGKILL
    start_timeout: float = 30.0
    allow_remote_host: bool = False
    check_reachable: bool = True
    shopper: Dict[str, Any] = field(default_factory=dict)
    locust_args: Sequence[str] = ()

    def validate(self) -> None:
        """Raise :class:`LoadError` naming the first thing that cannot work."""
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 1:
            raise LoadError(f"load: users must be a whole number >= 1 (got {self.users!r}); "
                            "with no users there is no load to measure")
        if self.spawn_rate is not None and not (_number(self.spawn_rate) and self.spawn_rate > 0):
            raise LoadError(f"load: spawn_rate must be > 0 users per second (got {self.spawn_rate!r})")
        if not (_number(self.max_duration) and 0 < self.max_duration <= MAX_DURATION_LIMIT):
            raise LoadError(f"load: max_duration must be between 1 and {MAX_DURATION_LIMIT} "
                            f"seconds (got {self.max_duration!r}); it bounds the Locust run")
        if not os.path.isfile(self.locustfile):
            raise LoadError(f"load: locust file not found: {self.locustfile}")
        if self.processes is not None and self.master:
            raise LoadError("load: choose processes (local workers) or master (remote workers), "
                            "not both")
        if self.processes is not None and (not isinstance(self.processes, int)
                                           or self.processes == 0 or self.processes < -1):
            raise LoadError(f"load: processes must be >= 1 or -1 (one per core), "
                            f"got {self.processes!r}")
        if self.master and not (isinstance(self.expect_workers, int) and self.expect_workers >= 1):
            raise LoadError("load: master mode needs expect_workers >= 1 (how many remote "
                            "`locust --worker` processes to wait for)")
        check_host(self.host, self.allow_remote_host, self.check_reachable)

    def command(self) -> List[str]:
        rate = self.spawn_rate if self.spawn_rate is not None else self.users
        cmd = [sys.executable, "-m", "locust", "-f", self.locustfile, "--headless",
               "-u", str(self.users), "-r", _num(rate), "--host", self.host,
               "--run-time", f"{int(math.ceil(self.max_duration))}s", "--only-summary",
               "--csv", os.path.join(self.run_dir, "locust"),
               "--html", os.path.join(self.run_dir, "locust.html")]
        if self.tags:
            cmd += ["--tags", *self.tags]
        if self.exclude_tags:
            cmd += ["--exclude-tags", *self.exclude_tags]
        if self.processes is not None:
            cmd += ["--processes", str(self.processes)]
        if self.master:
            cmd += ["--master", "--expect-workers", str(self.expect_workers),
                    "--master-bind-host", self.master_bind_host,
                    "--master-bind-port", str(self.master_bind_port)]
        return cmd + [str(a) for a in self.locust_args]

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({"GAMEDAY_RUN_DIR": self.run_dir, "GAMEDAY_LOAD_PARENT_PID": str(os.getpid()),
                    "PYTHONUNBUFFERED": "1"})
        for key, value in self.shopper.items():
            env["SHOPPER_" + key.upper()] = str(value)
        return env

    def public(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tags"], data["exclude_tags"] = list(self.tags), list(self.exclude_tags)
        data["locust_args"] = list(self.locust_args)
        return data


def check_host(url: str, allow_remote: bool, check_reachable: bool = True) -> None:
    """Refuse a malformed URL, a non-loopback target (unless allowed) and an unreachable one."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadError(f"load: host must be a URL like http://127.0.0.1:8080 (got {url!r})")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = {ai[4][0] for ai in socket.getaddrinfo(parts.hostname, port,
                                                             type=socket.SOCK_STREAM)}
    except socket.gaierror as exc:
        raise LoadError(f"load: shop host {parts.hostname!r} does not resolve ({exc.strerror})") \
            from None
    if not allow_remote and not all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                    for a in addresses):
        raise LoadError(f"load: refusing to send shopper load to {parts.hostname} (not loopback); "
                        "set configuration load_allow_remote_host: true to load a remote store")
    if check_reachable:
        try:
            socket.create_connection((parts.hostname, port), timeout=3).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise LoadError(f"load: shop at {url} is unreachable ({reason})") from None


class LoadProcess:
    """One Locust run: start it, watch it, stop it, summarise what it measured."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self.proc: Optional[subprocess.Popen] = None
        self.started_at: Optional[float] = None
        self.stopped_at: Optional[float] = None
        self.stopped_by: Optional[str] = None
        self.error: Optional[str] = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- paths
    def path(self, name: str) -> str:
        return os.path.join(self.settings.run_dir, name)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ---------------------------------------------------------------- start
    def start(self) -> "LoadProcess":
        """Validate, launch Locust, and wait until its test started (or say why it did not)."""
        s = self.settings
        try:
            s.validate()
        except LoadError as exc:
            self.error = str(exc)
            raise
        os.makedirs(s.run_dir, exist_ok=True)
        for stale in ("load-started.json", PID_FILE):
            if os.path.exists(self.path(stale)):
                os.remove(self.path(stale))
        log = open(self.path("locust.log"), "ab")
        try:
            self.proc = subprocess.Popen(s.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=s.environment(),
                                         start_new_session=True)
        finally:
            log.close()
        self.started_at = time.time()
        _register(self)
        with open(self.path(PID_FILE), "w") as fh:
            fh.write(str(self.proc.pid))
        logger.info("load: %d users on %s (Locust pid %d, run dir %s)",
                    s.users, s.host, self.proc.pid, s.run_dir)
        deadline = time.monotonic() + s.start_timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.path("load-started.json")):
                return self
            if self.proc.poll() is not None:
                self.error = (f"load: Locust exited during start-up (exit code "
                              f"{self.proc.returncode}): {self.log_cause()}")
                self.stop("start-up failed")
                raise LoadError(self.error)
            time.sleep(0.1)
        self.error = (f"load: Locust did not start its test within {s.start_timeout:g} s"
                      + (" (are the remote workers running?)" if s.master else "")
                      + f"; last log line: {self.log_cause()}")
        self.stop("start-up timed out")
        raise LoadError(self.error)

    def log_cause(self) -> str:
        """The most telling line of Locust's log (its last error, else its last line)."""
        try:
            lines = Path(self.path("locust.log")).read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        lines = [ln.strip() for ln in lines if ln.strip()]
        for ln in reversed(lines):
            if "Error" in ln or "error" in ln or ln.startswith("shopper:"):
                return ln[-400:]
        return lines[-1][-400:] if lines else "no output"

    # ---------------------------------------------------------------- stop
    def stop(self, reason: str = "stopped", grace: Optional[float] = None) -> Dict[str, Any]:
        """Stop Locust gracefully, then by force; write and return the load summary."""
        with self._lock:
            if self.proc is not None and self.stopped_at is None:
                self.stopped_by = self._terminate(self.settings.stop_grace if grace is None
                                                  else grace)
                self.stopped_at = time.time()
                _unregister(self)
                try:
                    os.remove(self.path(PID_FILE))
                except OSError:
                    pass
                logger.info("load: stopped (%s; %s, exit code %s)", reason, self.stopped_by,
                            self.proc.returncode)
            summary = self.summary(reason)
            write_json(self.path("load-summary.json"), summary)
            return summary

    def _terminate(self, grace: float) -> str:
        proc = self.proc
        how = "exited" if proc.poll() is not None else "SIGINT"
        if how == "SIGINT":
            _signal(proc.pid, signal.SIGINT, group=False)  # Locust quits its workers itself
            how = self._wait(grace, "SIGINT")
        if how is None:
            _signal(proc.pid, signal.SIGTERM, group=True)
            how = self._wait(5.0, "SIGTERM")
        if how is None:
            _signal(proc.pid, signal.SIGKILL, group=True)
            proc.wait()
            how = "SIGKILL"
        # workers of --processes left behind by a killed master share its process group
        if _group_alive(proc.pid):
            _signal(proc.pid, signal.SIGTERM, group=True)
            deadline = time.monotonic() + 3
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal(proc.pid, signal.SIGKILL, group=True)
        return how

    def _wait(self, seconds: float, how: str) -> Optional[str]:
        try:
            self.proc.wait(timeout=seconds)
            return how
        except subprocess.TimeoutExpired:
            return None

    # ---------------------------------------------------------------- summary
    def summary(self, reason: str) -> Dict[str, Any]:
        timeline = totals(self.path("timeline.jsonl"))
        orders = read_orders(self.path("orders.jsonl"))
        errors = list(read_json(self.path("load-errors.json"), []))
        end = self.stopped_at or time.time()
        return {
            "status": "failed" if self.error else ("running" if self.alive else "stopped"),
            "reason": reason,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "stopped_at": _iso(self.stopped_at),
            "duration_seconds": round(end - self.started_at, 3) if self.started_at else 0.0,
            "stopped_by": self.stopped_by,
            "exit_code": self.proc.returncode if self.proc else None,
            "pid": self.proc.pid if self.proc else None,
            "requests": timeline["requests"],
            "failures": timeline["failures"],
            "carts_lost": timeline["carts_lost"],
            "orders_acknowledged": len(orders),
            "steps": timeline["steps"],
            "error_samples": errors,
            "problems": diagnose(timeline, len(orders), errors, self.settings.host),
            "settings": self.settings.public(),
            "files": {name: self.path(name) for name in (
                "timeline.jsonl", "orders.jsonl", "locust.log", "locust.html",
                "locust_stats.csv", "locust_stats_history.csv", "load-errors.json")},
        }


# Known WooCommerce refusals → what to change on the store.
HINTS = {
    "nonce": "the store refused the session headers: the Store API needs the Nonce (or a "
             "Cart-Token) from a previous response; check that no cache or proxy strips the "
             "Nonce/Cart-Token headers",
    "payment_method": "enable Cash on delivery (WooCommerce > Settings > Payments) for the "
                      "shipping method in use",
    "rest_no_route": "the Store API route is missing: WooCommerce must be active and "
                     "permalinks must not be 'Plain' (/wp-json/ needs pretty permalinks)",
    "cart_empty": "the cart was empty at checkout: carts are not kept between requests",
    "shipping": "no shipping method covers the checkout address: add a shipping zone for "
                "SHOPPER_COUNTRY/SHOPPER_POSTCODE or use virtual products",
    "account": "guest checkout is disabled: allow customers to place orders without an account "
               "(WooCommerce > Settings > Accounts & Privacy)",
}


def diagnose(timeline: Dict[str, Any], orders: int, samples: List[dict], host: str) -> List[str]:
    """Sentences naming why the load measured little: steps that always failed, no orders."""
    problems = []
    if timeline["requests"] == 0:
        problems.append(f"no request to {host} completed (see locust.log)")
    for step, s in timeline["steps"].items():
        if s["requests"] and s["failures"] == s["requests"]:
            top, count = max(s["errors"].items(), key=lambda kv: kv[1])
            message = next((x["message"] for x in samples
                            if x["step"] == step and x["error"] == top), "")
            hint = next((h for k, h in HINTS.items() if k in top or k in message.lower()), "")
            problems.append(f"every {step} request failed ({s['requests']}x), mostly {top!r}"
                            + (f": {message}" if message else "") + (f" -- {hint}" if hint else ""))
    checkout = timeline["steps"].get("checkout", {})
    if checkout.get("requests") and not orders:
        problems.append("the store acknowledged no order: the RPO check has nothing to verify")
    return problems


# ---------------------------------------------------------------- process-wide safety nets
_live: List[LoadProcess] = []
_live_lock = threading.Lock()
_hooks_installed = False
_previous_sigterm: Any = None


def _register(load: LoadProcess) -> None:
    global _hooks_installed, _previous_sigterm
    with _live_lock:
        _live.append(load)
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(stop_all, "interpreter exit", 5.0)
    # re-installed per load: chaoslib restores its own SIGTERM handler after each run
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(load: LoadProcess) -> None:
    with _live_lock:
        if load in _live:
            _live.remove(load)


def stop_all(reason: str = "stopped", grace: float = 5.0) -> None:
    """Stop every load this process started (atexit, SIGTERM, test teardown)."""
    with _live_lock:
        loads = list(_live)
    for load in loads:
        try:
            load.stop(reason, grace=grace)
        except Exception:  # keep stopping the others; this runs at exit
            logger.exception("load: could not stop Locust pid %s", load.proc and load.proc.pid)


def _on_sigterm(signum: int, frame: Any) -> None:
    stop_all("SIGTERM", 5.0)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)  # start_new_session made pid the group id
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # zombies of an exited group count as gone
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return not os.path.isdir("/proc")


def read_json(path: str, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
    os.replace(tmp, path)


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

