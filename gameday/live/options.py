"""`gameday run --web` and `--pause-between-faults`: checked before anything starts, then
written into the run's experiment (the load control's ``web`` argument, the progress and pause
controls), so `chaos run` gets them like every other run option."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional, Tuple

from chaosext.errors import GamedayError
from chaosext.load.settings import LoadError
from chaosext.load.web import check_free, web_bind
from chaosext.pause import is_fault

__all__ = ["LiveOptions", "parse_web", "apply", "DEFAULT_WEB_PORT"]

DEFAULT_WEB_PORT = 8089  # Locust's own default; the phases page takes the next port
PORT_SCAN = 100
LOAD_CONTROL, PROGRESS_CONTROL = "chaosext.load.control", "chaosext.progress"


@dataclass
class LiveOptions:
    web: Optional[Tuple[str, int]] = None  # Locust's web UI; the phases page is on port + 1
    pause: bool = False
    pause_timeout: float = 600.0

    @property
    def wanted(self) -> bool:
        return self.web is not None or self.pause


def parse_web(text: Optional[str]) -> Tuple[str, int]:
    """`--web [HOST:PORT]` → (host, port of Locust's UI); the phases page gets port + 1.

    Without an address: 127.0.0.1 and the first pair of free ports from 8089 up. A non-loopback
    host is refused (neither page has a login, and Locust's can change the load)."""
    if text:
        try:
            host, port = web_bind(text)
            if port >= 65535:
                raise LoadError(f"port must be at most 65534 (the live view takes {port} + 1)")
            check_free(host, port)
            check_free(host, port + 1, "the live view")
        except LoadError as exc:
            raise GamedayError("--web: " + str(exc).removeprefix("load: ")) from None
        return host, port
    for port in range(DEFAULT_WEB_PORT, DEFAULT_WEB_PORT + PORT_SCAN, 2):
        try:
            check_free("127.0.0.1", port)
            check_free("127.0.0.1", port + 1)
        except GamedayError:
            continue
        return "127.0.0.1", port
    raise GamedayError(f"--web found no two free ports on 127.0.0.1 from {DEFAULT_WEB_PORT} to "
                       f"{DEFAULT_WEB_PORT + PORT_SCAN}; give one: --web 127.0.0.1:PORT")


def _control(module: str, **arguments) -> dict:
    return {"name": module.rsplit(".", 1)[-1], "provider": {
        "type": "python", "module": module, **({"arguments": arguments} if arguments else {})}}


def apply(spec: dict, options: LiveOptions) -> dict:
    """Point the load control at the web address and add the pause and progress controls first
    (the run-directory control stays last: chaosext.rundir)."""
    if not options.wanted:
        return spec
    if options.pause_timeout <= 0:
        raise GamedayError(f"--pause-timeout must be > 0 seconds (got {options.pause_timeout:g})")
    controls = spec.setdefault("controls", [])
    if options.web is not None:
        load = [c for c in controls if (c.get("provider") or {}).get("module") == LOAD_CONTROL]
        if not load:
            raise GamedayError("--web shows the shopper load's Locust UI, but this experiment has "
                               "no load control (chaosext.load.control)")
        host, port = options.web
        for control in load:
            control["provider"].setdefault("arguments", {})["web"] = \
                f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if options.pause and sum(is_fault(a) for a in spec.get("method") or []) < 2:
        print("gameday: --pause-between-faults: this experiment injects fewer than two faults, "
              "so there is nothing to pause between", file=sys.stderr, flush=True)
    present = {(c.get("provider") or {}).get("module") for c in controls}
    added = ([_control("chaosext.pause", timeout=options.pause_timeout)] if options.pause else []) \
        + ([] if PROGRESS_CONTROL in present else [_control(PROGRESS_CONTROL)])
    # first, pause before progress: a fault is recorded as started once the pause is over, and a
    # phase is on record before the other controls' hooks for it (the load's warm-up)
    controls[0:0] = added
    return spec
