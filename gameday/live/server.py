"""A tiny HTTP server in the `gameday run` process: the phases page and ``/phases.json``.

It lives in the `gameday` process, not in Locust, so it answers from the first second of the run
(before the load starts) to the last (after Locust quit), and a run with Locust workers changes
nothing for it. It binds a loopback address only (gameday.live.options refuses others) and only
reads the run directory and the lab's event log.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

from gameday.live.phases import phases, read_state

__all__ = ["LabEvents", "LiveView"]

PAGE = Path(__file__).with_name("page.html")


class LabEvents:
    """The lab's ``events.jsonl`` followed from where it was when the run started: only the new
    bytes are read at each look, so a long-lived lab's large log costs nothing per poll."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self._offset = path.stat().st_size if path and path.exists() else 0
        self._events: List[Dict[str, Any]] = []
        self._lock = threading.Lock()

    def read(self) -> List[Dict[str, Any]]:
        if self.path is None:
            return []
        with self._lock:
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(self._offset)
                    chunk = fh.read()
            except OSError:
                return list(self._events)
            complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._offset += len(complete)
            for line in complete.splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "time" in event:
                    self._events.append(event)
            return list(self._events)


class LiveView:
    """Serves the page and the phases of ``run_dir`` on ``host:port`` from a daemon thread."""

    def __init__(self, run_dir: Path, host: str, port: int, locust_url: Optional[str] = None,
                 lab_events: Optional[Path] = None):
        self.run_dir, self.locust_url = run_dir, locust_url
        self.events = LabEvents(lab_events)
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="live-view", kwargs={"poll_interval": 0.2})

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"

    def start(self) -> "LiveView":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> Dict[str, Any]:
        state = read_state(str(self.run_dir), self.events.read())
        data = phases(state, time.time())
        data.update(run_id=self.run_dir.name, locust_url=self.locust_url)
        return data

    def _handler(self):
        view = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/phases.json":
                    self._send(200, "application/json", json.dumps(view.snapshot()).encode())
                elif path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", PAGE.read_bytes())
                else:
                    self._send(404, "text/plain", b"not found: try / or /phases.json\n")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # polls every 500 ms: keep stderr quiet
                pass

        return Handler
