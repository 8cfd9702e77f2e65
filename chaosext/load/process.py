"""Locust as headless child processes (one, or a master plus workers) that never outlive the
process that started them.

Locust monkey-patches the interpreter with gevent on import, so it always runs in its own
processes (``python -m locust``). In distributed mode the master and every local worker are
separate children of this process, each in its own session. Four layers keep them from
outliving a run:

1. :meth:`LoadProcess.stop`: SIGINT to the master (it quits its workers, writes its CSV/HTML and
   flushes the timeline), then SIGTERM and SIGKILL to the process group of every Locust process;
2. an ``atexit`` hook and a SIGTERM handler in this process that stop every live load;
3. the recorder inside every Locust process (master and workers) quits when this process
   disappears (``GAMEDAY_LOAD_PARENT_PID``), which covers a SIGKILL or crash of this process;
4. ``--run-time`` set to ``max_duration`` on the master's command line, the last line of defence.
"""
from __future__ import annotations

import atexit
import json
import logging
import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext import stopsignals
from chaosext.load.diagnose import diagnose
from chaosext.load.settings import (DEFAULT_LOCUSTFILE, LoadError, LoadSettings, check_host,
                                    free_port)
from chaosext.load.timeline import read_orders, totals
from chaosext.load.workers import (WORKERS_FILE, fleet, read_registry, users_problems,
                                   worker_problems)
from groundfloor.supervisor import poll_until, spawn
from groundfloor.timefmt import iso
from groundfloor import run_files

__all__ = ["LoadError", "LoadSettings", "LoadProcess", "DEFAULT_LOCUSTFILE", "stop_all",
           "check_host", "diagnose", "read_json", "write_json"]

logger = logging.getLogger("chaostoolkit")

PID_FILE = "load.pid"
STALE_FILES = (run_files.LOAD_STARTED, PID_FILE, WORKERS_FILE)


class LoadProcess:
    """One Locust run: start it, watch it, stop it, summarise what it measured."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self.proc: Optional[subprocess.Popen] = None  # the master (or the single process)
        self.workers: Dict[str, subprocess.Popen] = {}  # local workers by name (w1, w2, …)
        self.exited_at: Dict[str, float] = {}  # when each Locust process was first seen gone
        self._watching = threading.Event()
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

    @property
    def processes(self) -> List[subprocess.Popen]:
        return [p for p in (self.proc, *self.workers.values()) if p is not None]

    # ---------------------------------------------------------------- start
    def start(self) -> "LoadProcess":
        """Validate, launch Locust (and its workers), and wait until its test started."""
        s = self.settings
        try:
            s.validate()
        except LoadError as exc:
            self.error = str(exc)
            raise
        os.makedirs(s.run_dir, exist_ok=True)
        for stale in STALE_FILES:
            if os.path.exists(self.path(stale)):
                os.remove(self.path(stale))
        if s.distributed and s.master_bind_port is None:
            s.master_bind_port = free_port(s.master_bind_host)
        self.proc = spawn(s.command(), Path(self.path("locust.log")), s.environment())
        self.started_at = time.time()
        _register(self)
        with open(self.path(PID_FILE), "w") as fh:
            fh.write(str(self.proc.pid))
        for n in range(1, s.local_workers + 1):
            name = f"w{n}"
            self.workers[name] = spawn(s.worker_command(), Path(self.path(f"locust-{name}.log")),
                                       s.environment(worker=name))
        where = (f", master {s.master_bind_host}:{s.master_bind_port} with "
                 f"{s.expected_workers} workers" if s.distributed else "")
        logger.info("load: %d users on %s (Locust pid %d%s, run dir %s)",
                    s.users, s.host, self.proc.pid, where, s.run_dir)
        if s.web_port is not None:
            logger.info("load: Locust web UI at http://%s:%s/", s.web_host, s.web_port)
        failure = poll_until(self._start_outcome, s.start_timeout, interval=0.1)
        if failure is True:
            if self.workers:
                threading.Thread(target=self._watch, daemon=True, name="load-watch").start()
            return self
        self.error = failure or self._timeout_message()
        self.stop("start-up failed" if failure else "start-up timed out")
        raise LoadError(self.error)

    def _start_outcome(self):
        """True once the test started; a message when a Locust process died; None meanwhile."""
        if os.path.exists(self.path(run_files.LOAD_STARTED)):
            return True
        if self.proc.poll() is not None:
            return (f"load: Locust exited during start-up (exit code {self.proc.returncode}): "
                    f"{self.log_cause()}")
        for name, worker in self.workers.items():
            if worker.poll() is not None:
                return (f"load: Locust worker {name} exited during start-up (exit code "
                        f"{worker.returncode}): {self.log_cause(f'locust-{name}.log')}")
        return None

    def _timeout_message(self) -> str:
        s = self.settings
        if not s.distributed:
            return (f"load: Locust did not start its test within {s.start_timeout:g} s; "
                    f"last log line: {self.log_cause()}")
        joined = len(read_registry(s.run_dir).get("workers") or {})
        remote = " (are the remote workers running?)" if s.expect_workers else ""
        cause = self.log_cause(f"locust-{next(iter(self.workers))}.log") if self.workers \
            else self.log_cause()
        return (f"load: {joined} of {s.expected_workers} Locust workers reached the master at "
                f"{s.master_bind_host}:{s.master_bind_port} within {s.start_timeout:g} s"
                f"{remote}; last worker log line: {cause}")

    def _watch(self) -> None:
        """Note when each Locust process exits, so a worker that died before its master (or
        before the load was stopped) is told apart from one that ended with the run."""
        while not self._watching.wait(0.5):
            self._sweep()

    def _sweep(self) -> None:
        now = time.time()
        for name, proc in {"master": self.proc, **self.workers}.items():
            if proc is not None and name not in self.exited_at and proc.poll() is not None:
                self.exited_at[name] = now

    def exited_early(self) -> List[str]:
        """Workers that were gone while their master still ran and the load was not stopped."""
        end = min(self.exited_at.get("master", math.inf), self.stopped_at or math.inf)
        return [name for name in self.workers if self.exited_at.get(name, math.inf) < end]

    def log_cause(self, name: str = "locust.log") -> str:
        """The most telling line of a Locust log (its last error, else its last line)."""
        try:
            lines = Path(self.path(name)).read_text(errors="replace").splitlines()
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
                self._watching.set()
                self._sweep()  # what died since the watcher last looked
                self.stopped_by = self._terminate(self.settings.stop_grace if grace is None
                                                  else grace)
                self.stopped_at = time.time()
                self._watching.set()
                _unregister(self)
                try:
                    os.remove(self.path(PID_FILE))
                except OSError:
                    pass
                logger.info("load: stopped (%s; %s, exit code %s)", reason, self.stopped_by,
                            self.proc.returncode)
            summary = self.summary(reason)
            write_json(self.path(run_files.LOAD_SUMMARY), summary)
            return summary

    def _terminate(self, grace: float) -> str:
        """SIGINT to the master, which quits its workers; then force every group still alive."""
        proc = self.proc
        how = "exited" if proc.poll() is not None else "SIGINT"
        if how == "SIGINT":
            _signal(proc.pid, signal.SIGINT, group=False)
            how = "SIGINT" if _exited([proc], grace) else None
        if how is None:
            _signal(proc.pid, signal.SIGTERM, group=True)
            how = "SIGTERM" if _exited([proc], 5.0) else None
        if how is None:
            _signal(proc.pid, signal.SIGKILL, group=True)
            proc.wait()
            how = "SIGKILL"
        workers = list(self.workers.values())
        if not _exited(workers, 5.0):  # the master's quit message did not reach them all
            for w in workers:
                _signal(w.pid, signal.SIGTERM, group=True)
            _exited(workers, 3.0)
        for p in self.processes:  # anything a Locust process left in its group
            if p.poll() is None or _group_alive(p.pid):
                _signal(p.pid, signal.SIGKILL, group=True)
            if p.poll() is None:
                p.wait()
        return how

    # ---------------------------------------------------------------- summary
    def summary(self, reason: str) -> Dict[str, Any]:
        timeline = totals(self.path(run_files.TIMELINE))
        orders = read_orders(self.path(run_files.ORDERS))
        errors = list(read_json(self.path(run_files.LOAD_ERRORS), []))
        workers = fleet(self.settings.run_dir, self.local_workers()) \
            if self.settings.distributed else []
        end = self.stopped_at or time.time()
        return {
            "status": "failed" if self.error else ("running" if self.alive else "stopped"),
            "reason": reason,
            "error": self.error,
            "started_at": iso(self.started_at),
            "stopped_at": iso(self.stopped_at),
            "duration_seconds": round(end - self.started_at, 3) if self.started_at else 0.0,
            "stopped_by": self.stopped_by,
            "exit_code": self.proc.returncode if self.proc else None,
            "pid": self.proc.pid if self.proc else None,
            "requests": timeline["requests"],
            "failures": timeline["failures"],
            "carts_lost": timeline["carts_lost"],
            "orders_acknowledged": len(orders),
            "steps": timeline["steps"],
            "workers": workers,
            "error_samples": errors,
            "problems": (diagnose(timeline, len(orders), errors, self.settings.host)
                         + ([] if self.error or not self.settings.distributed
                            else worker_problems(workers) + users_problems(self.settings.run_dir))),
            "users_peak": read_registry(self.settings.run_dir).get("peak_users"),
            "all_users_at": iso(read_registry(self.settings.run_dir).get("all_users_at")),
            "settings": self.settings.public(),
            "files": {name: self.path(name) for name in (
                run_files.TIMELINE, run_files.ORDERS, "locust.log", "locust.html",
                "locust_stats.csv", "locust_stats_history.csv", run_files.LOAD_ERRORS,
                WORKERS_FILE)},
        }

    def local_workers(self) -> List[Dict[str, Any]]:
        """The local worker processes as facts for :func:`chaosext.load.workers.fleet`."""
        early = self.exited_early()
        return [{"name": name, "pid": w.pid, "exit_code": w.returncode,
                 "exited_before_stop": name in early}
                for name, w in self.workers.items()]


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
    # re-installed per load: chaoslib restores its own SIGTERM handler after each run. Ours
    # wrapped by chaosext.stopsignals is still ours: taking it for another's would chain
    # _on_sigterm to itself, and SIGTERM would recurse.
    if threading.current_thread() is threading.main_thread() \
            and stopsignals.unwrapped(signal.getsignal(signal.SIGTERM)) is not _on_sigterm:
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


def _exited(procs: List[subprocess.Popen], seconds: float) -> bool:
    """Whether every one of ``procs`` exited within ``seconds`` (reaping them)."""
    return bool(poll_until(lambda: all(p.poll() is not None for p in procs), seconds))


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

