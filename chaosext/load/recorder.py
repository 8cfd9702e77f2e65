"""Locust event listeners that write a run directory: timeline, order ledger, error samples.

Importing this module from a locustfile is enough: it registers on ``locust.events``. Tasks stay
free of measurement; they only fire ``order_acknowledged`` and mark journey-check failures with
:class:`StepFailed` / :class:`CartLost`, which the listeners classify.

Distributed mode (``--master``/``--worker``, or Locust's ``--processes N``): every worker
aggregates its own seconds and ships each completed second to the master with Locust's custom
messages (``gameday_timeline``; the final partial second rides on ``report_to_master``); orders go
to the master the moment they are acknowledged (``gameday_order``). Every payload names the
worker (``$GAMEDAY_WORKER_ID``, else ``<hostname>-<pid>``), and so does every line the master
writes. Only the master (or the single local process) writes files, so the run directory has one
timeline and one ledger whatever the number of workers. The master writes a second 3 s after it
ended (the local runner: as soon as it ended), and ``load-workers.json`` every second: which
workers joined, their users, and which were lost mid-run (see :mod:`chaosext.load.workers`).

Files written in ``RUN_DIR`` (``--run-dir`` or ``$GAMEDAY_RUN_DIR``):
``timeline.jsonl`` (see :mod:`chaosext.load.timeline`), ``orders.jsonl``
(``{"order_id", "order_key", "status", "t"}``, flushed per order), ``load-errors.json`` (one sample
message per step and error class) and ``load-started.json`` (written when the test starts).

Importing it has one side effect: Locust (and so gevent's monkey-patching) is imported. Never
import it from the Chaos Toolkit process; it belongs to locustfiles.
"""
from __future__ import annotations

import json
import re
import logging
import math
import os
import socket
import time
from typing import Any, Dict, Optional, Tuple

import gevent
from locust import events
from locust.event import EventHook
from locust.runners import MasterRunner, WorkerRunner

from chaosext.load.config import RUN_DIR_ENV, new_run_dir
from chaosext.load.settings import WORKER_ID_ENV
from chaosext.load.timeline import StepSecond, TimelineAggregator
from chaosext.load.workers import LOCAL, WorkerWatch
from groundfloor import run_files

__all__ = ["StepFailed", "CartLost", "order_acknowledged", "error_key", "Recorder"]

logger = logging.getLogger("gameday.load")

PARENT_PID_ENV = "GAMEDAY_LOAD_PARENT_PID"
MSG_TIMELINE = "gameday_timeline"
MSG_ORDER = "gameday_order"
MASTER_GRACE_SECONDS = 3.0
MAX_SAMPLES = 200

order_acknowledged = EventHook()
"""Fired by shoppers when the store acknowledged an order: ``order_id``, ``order_key``, ``status``."""


class StepFailed(Exception):
    """A journey check failed on an HTTP success (e.g. no order id); ``label`` is its error class."""

    label = "bad_response"

    def __init__(self, message: str, label: Optional[str] = None) -> None:
        super().__init__(message)
        if label:
            self.label = label


class CartLost(StepFailed):
    """The cart this shopper built came back without its items: the session was lost."""

    label = "cart_lost"


# The shop names the client error behind a 503 (`data.cause`); an exception class such as
# ReadOnlyError or TimeoutError is kept in the error class so reports can tell READONLY apart.
CLIENT_ERROR_CLASS = re.compile(r"^[A-Za-z]+(Error|Exception)$")
ERROR_BODY_LIMIT = 262144  # WooCommerce refusals carry the whole cart; bigger bodies are not errors


def _wp_error(response: Any) -> Tuple[Optional[str], Optional[str]]:
    """The ``code`` and ``message`` of a WP REST error body, if the response is one."""
    try:
        body = response.content
    except Exception:  # a broken connection has no body to read
        return None, None
    if not body or len(body) > ERROR_BODY_LIMIT or not body.lstrip().startswith(b"{"):
        return None, None
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        cause = (data.get("data") or {}).get("cause") if isinstance(data.get("data"), dict) else None
        code = data["code"]
        if isinstance(cause, str) and CLIENT_ERROR_CLASS.match(cause):  # e.g. ReadOnlyError: a demoted primary
            code = f"{code} ({cause})"
        return code, str(data.get("message", ""))[:300]
    return None, None


def error_key(response: Any, exception: Optional[BaseException]) -> Tuple[str, str]:
    """The error class of a failed request and a sample message.

    HTTP errors are keyed by status, plus the WP REST error code when the body carries one
    (``"503"``, ``"403 woocommerce_rest_missing_nonce"``); transport errors by exception class
    (``"ConnectionRefusedError"``); journey checks by their label (``"cart_lost"``).
    """
    if isinstance(exception, StepFailed):
        return exception.label, str(exception)[:300]
    status = getattr(response, "status_code", 0) or 0
    if status >= 400:
        code, message = _wp_error(response)
        return (f"{status} {code}" if code else str(status)), (message or str(exception)[:300])
    return type(exception).__name__, str(exception)[:300]


class Recorder:
    """Aggregates requests per second and step; writes (local/master) or ships (worker) them."""

    def __init__(self, environment: Any, run_dir: str) -> None:
        self.environment = environment
        self.run_dir = run_dir
        runner = environment.runner
        self.role = ("worker" if isinstance(runner, WorkerRunner)
                     else "master" if isinstance(runner, MasterRunner) else "local")
        self.worker = os.environ.get(WORKER_ID_ENV) or (
            LOCAL if self.role == "local" else f"{socket.gethostname()}-{os.getpid()}")
        self.aggregator = TimelineAggregator()
        self.samples: Dict[Tuple[str, str], Tuple[str, str]] = {}  # -> (message, worker)
        self.watch: Optional[WorkerWatch] = None
        self._unsent_samples: list = []
        self._samples_dirty = False
        self._final = False
        self._ending = False
        self._timeline = self._orders = None
        self.orders_written = 0
        self.late_lines = 0
        self._written_upto = -math.inf
        self._parent = int(os.environ.get(PARENT_PID_ENV, "0") or 0)
        if self.role != "worker":
            os.makedirs(run_dir, exist_ok=True)
            self._timeline = open(os.path.join(run_dir, run_files.TIMELINE), "a", encoding="utf-8")
            self._orders = open(os.path.join(run_dir, run_files.ORDERS), "a", encoding="utf-8")
        if self.role == "master":
            opts = environment.parsed_options
            self.watch = WorkerWatch(run_dir, getattr(opts, "expect_workers", None),
                                     getattr(opts, "num_users", None))
        self._register()
        self._loop = gevent.spawn(self._every_second)

    # ---------------------------------------------------------------- wiring
    def _register(self) -> None:
        ev = self.environment.events
        runner = self.environment.runner
        if self.role != "master":
            ev.request.add_listener(self.on_request)
            order_acknowledged.add_listener(self.on_order)
        if self.role == "worker":
            ev.report_to_master.add_listener(self._on_report_to_master)
            ev.test_stop.add_listener(self._on_worker_stop)
        if self.role == "master":
            ev.test_stopping.add_listener(self._on_master_ending)
            ev.quitting.add_listener(self._on_master_ending)
            runner.register_message(MSG_TIMELINE, self._on_timeline_message)
            runner.register_message(MSG_ORDER, self._on_order_message)
            ev.worker_report.add_listener(self._on_worker_report)
        if self.role != "worker":
            ev.test_start.add_listener(self._on_test_start)
            ev.quitting.add_listener(lambda **_: self.flush(self._complete_before()))
            ev.quit.add_listener(lambda **_: self.close())

    # ---------------------------------------------------------------- user-side events
    def on_request(self, request_type: str, name: str, response_time: float,
                   response_length: int, response: Any = None, context: Any = None,
                   exception: Optional[BaseException] = None, start_time: Optional[float] = None,
                   **_: Any) -> None:
        ms = float(response_time or 0.0)
        done = (start_time + ms / 1000.0) if start_time else time.time()
        if exception is None:
            self.aggregator.add(done, name, ms, worker=self.worker)
            return
        key, message = error_key(response, exception)
        self.aggregator.add(done, name, ms, key, isinstance(exception, CartLost), self.worker)
        self._sample(name, key, message, self.worker)

    def on_order(self, order_id: Any, order_key: Any = None, status: Any = None, **_: Any) -> None:
        line = {"order_id": order_id, "order_key": order_key, "status": status,
                "t": round(time.time(), 3), "worker": self.worker}
        if self.role == "worker":
            self.environment.runner.send_message(MSG_ORDER, line)
        else:
            self._write_order(line)

    def _sample(self, step: str, key: str, message: str, worker: str) -> None:
        if (step, key) in self.samples or len(self.samples) >= MAX_SAMPLES:
            return
        self.samples[(step, key)] = (message, worker)
        self._samples_dirty = True
        if self.role == "worker":
            self._unsent_samples.append([step, key, message])

    # ---------------------------------------------------------------- worker → master
    def _wire(self, before: Optional[float]) -> dict:
        rows = [[t, step, cell.to_wire()] for t, step, _, cell in self.aggregator.drain(before)]
        samples, self._unsent_samples = self._unsent_samples, []
        return {"worker": self.worker, "pid": os.getpid(), "host": socket.gethostname(),
                "rows": rows, "samples": samples}

    def _on_report_to_master(self, client_id: str, data: dict) -> None:
        data[MSG_TIMELINE] = self._wire(None if self._final else math.floor(time.time()))

    def _on_worker_stop(self, **_: Any) -> None:
        self._final = True

    def _on_master_ending(self, **_: Any) -> None:
        self._ending = True  # workers leaving from now on were told to

    def _on_timeline_message(self, environment: Any, msg: Any, **_: Any) -> None:
        self._merge(msg.data, getattr(msg, "node_id", None))

    def _on_worker_report(self, client_id: str, data: dict) -> None:
        if MSG_TIMELINE in data:
            self._merge(data[MSG_TIMELINE], client_id)

    def _merge(self, payload: dict, client_id: Optional[str]) -> None:
        worker = str(payload.get("worker") or client_id or "unknown")
        if self.watch is not None and client_id:
            self.watch.identify(client_id, worker, payload.get("pid"), payload.get("host"))
        for t, step, wire in payload.get("rows", []):
            self.aggregator.merge(int(t), step, StepSecond.from_wire(wire), worker)
        for step, key, message in payload.get("samples", []):
            self._sample(step, key, message, worker)

    def _on_order_message(self, environment: Any, msg: Any, **_: Any) -> None:
        self._write_order(msg.data)

    # ---------------------------------------------------------------- files
    def _write_order(self, line: dict) -> None:
        if self._orders is None:
            return
        self._orders.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._orders.flush()
        self.orders_written += 1

    def flush(self, before: Optional[float] = None) -> None:
        """Write every pending second < ``before`` (all when None) and the error samples."""
        if self._timeline is None:
            return
        lines = []
        for t, step, worker, cell in self.aggregator.drain(before):
            if t < self._written_upto:
                self.late_lines += 1
            lines.append(json.dumps(cell.to_line(t, step, worker), separators=(",", ":")))
            self._written_upto = max(self._written_upto, t)
        if lines:
            self._timeline.write("\n".join(lines) + "\n")
            self._timeline.flush()
        if self._samples_dirty:
            self._samples_dirty = False
            _write_json(os.path.join(self.run_dir, run_files.LOAD_ERRORS), [
                {"step": s, "error": k, "message": m, "worker": w}
                for (s, k), (m, w) in sorted(self.samples.items())])

    def close(self) -> None:
        self.flush(None)
        for fh in (self._timeline, self._orders):
            if fh is not None:
                fh.close()
        self._timeline = self._orders = None
        self._loop.kill(block=False)

    def _on_test_start(self, environment: Any, **_: Any) -> None:
        opts = environment.parsed_options
        _write_json(os.path.join(self.run_dir, run_files.LOAD_STARTED), {
            "pid": os.getpid(), "role": self.role, "t": round(time.time(), 3),
            "host": environment.host, "users": getattr(opts, "num_users", None)})

    # ---------------------------------------------------------------- clock
    def _every_second(self) -> None:
        while True:
            now = time.time()
            gevent.sleep(math.floor(now) + 1.05 - now)
            try:
                self._tick()
            except Exception:  # never let a disk hiccup kill the load; log and keep going
                logger.exception("timeline recorder tick failed")

    def _complete_before(self) -> int:
        """Seconds before this one are complete (the master waits for slower worker batches)."""
        grace = MASTER_GRACE_SECONDS if self.role == "master" else 0.0
        return math.floor(time.time() - grace)

    def _tick(self) -> None:
        now = time.time()
        if self.role == "worker":
            payload = self._wire(math.floor(now))
            if payload["rows"] or payload["samples"]:
                self.environment.runner.send_message(MSG_TIMELINE, payload)
        else:
            self.flush(self._complete_before())
        if self.watch is not None:
            self._watch_workers(now)
        if self._parent and os.getppid() != self._parent:
            logger.error("the process that started this load (pid %s) is gone; stopping",
                         self._parent)
            self._parent = 0
            self.environment.runner.quit()
            web_ui = getattr(self.environment, "web_ui", None)
            if web_ui is not None:  # with the web UI, the UI (not the runner) keeps Locust alive
                web_ui.stop()

    def _watch_workers(self, now: float) -> None:
        runner = self.environment.runner
        clients = [(c.id, c.state, c.user_count) for c in list(runner.clients.values())]
        running = runner.state in ("spawning", "running") and not self._ending
        self.watch.observe(clients, running, now)
        self.watch.write(runner.state, now)


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--run-dir", default="", env_var=RUN_DIR_ENV, include_in_web_ui=False,
        help="directory for timeline.jsonl, orders.jsonl, load-errors.json "
             "(default: $GAMEDAY_RUN_DIR, else reports/load-<UTC time>)")


@events.init.add_listener
def _install(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    run_dir = (getattr(opts, "run_dir", "") if opts else "") or os.environ.get(RUN_DIR_ENV) \
        or new_run_dir()
    environment.gameday_recorder = Recorder(environment, os.path.abspath(run_dir))
