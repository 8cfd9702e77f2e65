"""What `gameday run --web/--pause-between-faults` runs beside `chaos run`: the live view server
and the pause stepper, started before the experiment and stopped after it, whatever happens."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Optional

from chaosext.errors import GamedayError
from gameday.live.options import LiveOptions
from gameday.live.server import LiveView
from gameday.live.stepper import Stepper

__all__ = ["live_session"]


@contextlib.contextmanager
def live_session(options: Optional[LiveOptions], run_dir: Path,
                 lab_events: Optional[Path] = None) -> Iterator[None]:
    """Serve the phases page on the web port + 1 and handle pauses while the block runs."""
    if options is None or not options.wanted:
        yield
        return
    view = stepper = None
    try:
        if options.web is not None:
            host, port = options.web
            locust = f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
            try:
                view = LiveView(run_dir, host, port + 1, locust, lab_events).start()
            except OSError as exc:
                raise GamedayError(f"the live view cannot listen on {host}:{port + 1} "
                                   f"({exc.strerror or exc}); choose another --web port") from None
            print(f"gameday: live view {view.url} (Locust web UI {locust} once the load runs)",
                  flush=True)
        if options.pause:
            stepper = Stepper(run_dir).start()
        yield
    finally:
        if stepper is not None:
            stepper.stop()
        if view is not None:
            view.stop()
