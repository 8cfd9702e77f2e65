"""Locust's own web UI for a run, bound to loopback only.

Headless Locust shows nothing while it runs; with a web address the load runs with Locust's web
UI instead of ``--headless``, still starting by itself (``--autostart``), still bounded by
``--run-time`` and quitting as soon as the run time is over or it is stopped (``--autoquit 0``),
so the load's lifetime is the same as without the UI. The UI has no authentication and can
change the number of users, so it is refused on anything but a loopback address.
Locust's options: https://docs.locust.io/en/stable/configuration.html (``--autostart``,
``--autoquit``, ``--web-host``, ``--web-port``).
"""
from __future__ import annotations

import socket
from typing import List, Tuple

from chaosext.addresses import is_loopback
from chaosext.load.settings import LoadError, parse_bind

__all__ = ["web_bind", "web_args", "is_loopback", "check_free"]


def web_bind(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` of a web UI → (host, port); LoadError for a malformed or remote address."""
    try:
        host, port = parse_bind(text)
    except LoadError:
        raise LoadError(f"load: web address must be HOST:PORT with a port 1-65535, e.g. "
                        f"127.0.0.1:8089 (got {text!r})") from None
    if not is_loopback(host):
        raise LoadError(f"load: refusing to serve the web UI on {host} (not loopback): it has no "
                        "login and can change the load; use 127.0.0.1 and an SSH tunnel to share it")
    return host, port


def check_free(host: str, port: int, what: str = "the Locust web UI") -> None:
    """Refuse a port this machine cannot listen on now (in use, or not ours)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "in use" if exc.errno == 98 else (exc.strerror or type(exc).__name__)
            raise LoadError(f"load: {what} cannot listen on {host}:{port} ({reason}); "
                            "choose another port") from None


def web_args(host: str, port: int) -> List[str]:
    """Locust's flags for a self-starting web UI run (instead of ``--headless``)."""
    return ["--web-host", host, "--web-port", str(port), "--autostart", "--autoquit", "0"]
