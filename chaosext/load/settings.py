"""What one load run is: Locust's knobs, the shopper's settings, and the distributed layout.

Distributed mode runs Locust as a master plus worker processes. ``workers`` local workers are
started by :class:`chaosext.load.process.LoadProcess` itself (each one a separate
``locust --worker`` process named ``w1`` … ``wN``); ``expect_workers`` more may join from other
machines with Locust's own ``locust -f loadtests/shopper.py --worker --master-host HOST
--master-port PORT``. The master binds ``master_bind_host:master_bind_port`` — loopback by
default, and a free port chosen at start when none is given, so two runs on one machine never
fight over Locust's fixed default (5557).
"""
from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from chaosext.addresses import Unresolvable, addresses_of
from chaosext.errors import GamedayError
from groundfloor import run_files

__all__ = ["LoadError", "LoadSettings", "DEFAULT_LOCUSTFILE", "check_host", "parse_bind",
           "check_master_port", "free_port", "WORKER_ID_ENV"]

# shipped as package data (chaosext/loadtests/), so an installed wheel finds it like a checkout does
DEFAULT_LOCUSTFILE = str(Path(__file__).resolve().parents[1] / "loadtests" / "shopper.py")
MAX_DURATION_LIMIT = 24 * 3600
WORKER_ID_ENV = "GAMEDAY_WORKER_ID"


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
    workers: Optional[int] = None  # local worker processes beside a master (None: one process)
    processes: Optional[int] = None  # older name of `workers` (-1 = one per core)
    master: bool = False  # run as --master even without local workers (remote ones only)
    expect_workers: Optional[int] = None  # workers joining from other machines
    master_bind_host: str = "127.0.0.1"
    master_bind_port: Optional[int] = None  # None: a free port, chosen at start
    worker_master_host: Optional[str] = None  # what local workers dial (default: the bind host)
    max_duration: float = 3600.0  # Locust's --run-time: it stops itself after this
    stop_grace: float = 15.0  # seconds Locust gets to stop after SIGINT before SIGTERM/SIGKILL
    start_timeout: float = 30.0  # also how long workers get to reach the master
    allow_remote_host: bool = False
    check_reachable: bool = True
    shopper: Dict[str, Any] = field(default_factory=dict)
    locust_args: Sequence[str] = ()
    web_host: str = "127.0.0.1"  # Locust's web UI (chaosext.load.web), loopback only
    web_port: Optional[int] = None  # None: headless

    @property
    def local_workers(self) -> int:
        """How many worker processes this machine starts (0 without distributed mode)."""
        count = self.workers if self.workers is not None else self.processes
        if count == -1:
            return os.cpu_count() or 1
        return count or 0

    @property
    def distributed(self) -> bool:
        return bool(self.local_workers) or self.master

    @property
    def expected_workers(self) -> int:
        return self.local_workers + (self.expect_workers or 0)

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
        self._validate_workers()
        check_host(self.host, self.allow_remote_host, self.check_reachable)
        if self.distributed and self.master_bind_port is not None:
            check_master_port(self.master_bind_host, self.master_bind_port)
        if self.web_port is not None:
            from chaosext.load.web import check_free, web_bind
            check_free(*web_bind(f"{self.web_host}:{self.web_port}"))

    def _validate_workers(self) -> None:
        for name in ("workers", "processes"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
                raise LoadError(f"load: {name} must be a whole number >= 1 (got {value!r}); "
                                "a master without workers generates no load")
        remote = self.expect_workers
        if remote is not None and (isinstance(remote, bool) or not isinstance(remote, int)
                                   or remote < 0):
            raise LoadError(f"load: expect_workers must be a whole number >= 0 (got {remote!r})")
        if self.master and not remote and not self.local_workers:
            raise LoadError("load: master mode needs expect_workers >= 1 (how many remote "
                            "`locust --worker` processes to wait for) or workers >= 1")
        port = self.master_bind_port
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 1 <= port <= 65535):
            raise LoadError(f"load: master_bind_port must be 1-65535 (got {port!r})")

    # ---------------------------------------------------------------- command lines
    def command(self) -> List[str]:
        """The master's (or the single local process's) command line."""
        rate = self.spawn_rate if self.spawn_rate is not None else self.users
        cmd = [sys.executable, "-m", "locust", "-f", self.locustfile, *self._ui_args(),
               "-u", str(self.users), "-r", _num(rate), "--host", self.host,
               "--run-time", f"{int(math.ceil(self.max_duration))}s", "--only-summary",
               "--csv", os.path.join(self.run_dir, "locust"),
               "--html", os.path.join(self.run_dir, "locust.html")]
        cmd += self._tag_args()
        if self.distributed:
            cmd += ["--master", "--expect-workers", str(self.expected_workers),
                    "--master-bind-host", self.master_bind_host,
                    "--master-bind-port", str(self.master_bind_port)]
        return cmd + [str(a) for a in self.locust_args]

    def _ui_args(self) -> List[str]:
        """``--headless``, or Locust's self-starting web UI (chaosext.load.web)."""
        if self.web_port is None:
            return ["--headless"]
        from chaosext.load.web import web_args
        return web_args(self.web_host, self.web_port)

    def worker_command(self) -> List[str]:
        """A local worker's command line (it names the run dir, so it can always be found)."""
        return [sys.executable, "-m", "locust", "-f", self.locustfile, "--worker",
                "--master-host", self.dial_host, "--master-port", str(self.master_bind_port),
                "--run-dir", self.run_dir, *self._tag_args()]

    @property
    def dial_host(self) -> str:
        """Where local workers find the master: a wildcard bind is reached over loopback."""
        if self.worker_master_host:
            return self.worker_master_host
        return {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1"}.get(
            self.master_bind_host, self.master_bind_host)

    def _tag_args(self) -> List[str]:
        args = []
        if self.tags:
            args += ["--tags", *self.tags]
        if self.exclude_tags:
            args += ["--exclude-tags", *self.exclude_tags]
        return args

    def environment(self, worker: Optional[str] = None) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({run_files.RUN_DIR_ENV: self.run_dir, "GAMEDAY_LOAD_PARENT_PID": str(os.getpid()),
                    "PYTHONUNBUFFERED": "1"})
        env.pop(WORKER_ID_ENV, None)
        if worker:
            env[WORKER_ID_ENV] = worker
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
        addresses = addresses_of(parts.hostname)
    except Unresolvable as exc:
        raise LoadError(f"load: shop host {parts.hostname!r} does not resolve ({exc.reason})") from None
    if not allow_remote and not all(a.is_loopback for a in addresses):
        raise LoadError(f"load: refusing to send shopper load to {parts.hostname} (not loopback); "
                        "set configuration load_allow_remote_host: true to load a remote store")
    if check_reachable:
        try:
            socket.create_connection((parts.hostname, port), timeout=3).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise LoadError(f"load: shop at {url} is unreachable ({reason})") from None


def parse_bind(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); LoadError naming what is wrong."""
    value = str(text or "").strip()
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise LoadError(f"load: master bind address must be HOST:PORT with a port 1-65535, "
                        f"e.g. 127.0.0.1:27150 (got {value!r})")
    return host, int(port)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_master_port(host: str, port: int) -> None:
    """Refuse a master address this machine cannot bind (the port is in use, or not ours)."""
    bind_host = {"*": "0.0.0.0"}.get(host, host)
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            reason = "in use" if exc.errno == 98 else (exc.strerror or type(exc).__name__)
            raise LoadError(f"load: the Locust master cannot listen on {host}:{port} "
                            f"({reason}); choose another master bind port") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on ``host`` (for the master when none was chosen)."""
    bind_host = {"*": "0.0.0.0"}.get(host, host)
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        sock.bind((bind_host, 0))
        return sock.getsockname()[1]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
