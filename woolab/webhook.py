"""A loopback webhook receiver: the lab's stand-in for Slack and any JSON webhook.

Every POST (any path) is stored as one JSON line in ``<dir>/received.jsonl``:
``{"received_at": epoch, "path": "/slack", "content_type": ..., "body": <parsed JSON or text>}``.
``GET /received`` lists them (``?path=/slack`` filters), ``DELETE /received`` forgets them,
``GET /health`` answers ``{"ok": true}``. Tests and the demo assert on what arrived.

    python -m woolab.webhook --port 15302 --dir /tmp/lab/webhook
"""
import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional
from urllib.parse import parse_qs, urlsplit

from woolab.errors import LabStartError

__all__ = ["WebhookReceiver", "read_received", "RECEIVED_FILE"]

RECEIVED_FILE = "received.jsonl"
MAX_BODY = 1 << 20  # a notification is a few KB; refuse anything absurd


def read_received(directory: Path, path: Optional[str] = None) -> List[dict]:
    """What a receiver stored in `directory` (readable without the server running)."""
    file = Path(directory) / RECEIVED_FILE
    if not file.exists():
        return []
    items = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    return [i for i in items if path is None or i.get("path") == path]


class _Handler(BaseHTTPRequestHandler):
    server_version = "woolab-webhook"

    def log_message(self, format, *args):  # quiet: the lab logs elsewhere
        pass

    def _answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"ok": False, "error": f"body over {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.server.receiver._store({"received_at": time.time(), "path": urlsplit(self.path).path,
                                     "content_type": self.headers.get("Content-Type"),
                                     "body": body})
        self._answer(200, {"ok": True})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/health":
            self._answer(200, {"ok": True})
        elif url.path == "/received":
            wanted = parse_qs(url.query).get("path", [None])[0]
            self._answer(200, read_received(self.server.receiver.directory, wanted))
        else:
            self._answer(404, {"ok": False, "error": "GET /received or /health"})

    def do_DELETE(self):
        if urlsplit(self.path).path != "/received":
            self._answer(404, {"ok": False, "error": "DELETE /received"})
            return
        self.server.receiver.clear()
        self._answer(200, {"ok": True})


class WebhookReceiver:
    """A ThreadingHTTPServer on 127.0.0.1:`port` (0: any free port) storing POSTs in `directory`."""

    def __init__(self, port: int, directory, host: str = "127.0.0.1"):
        self.host, self.port = host, int(port)
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "WebhookReceiver":
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        except OSError as error:
            raise LabStartError(f"webhook receiver cannot listen on {self.host}:{self.port}: "
                                f"{error.strerror or error} (port in use? choose another "
                                "base port)") from None
        self._server.daemon_threads = True
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def serve_forever(self) -> None:
        """Run in the foreground until SIGTERM/SIGINT (the `python -m` entry point)."""
        self.start()
        print(f"webhook receiver on {self.url} -> {self.directory / RECEIVED_FILE}", flush=True)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        self.stop()

    def received(self, path: Optional[str] = None) -> List[dict]:
        with self._lock:
            return read_received(self.directory, path)

    def clear(self) -> None:
        with self._lock:
            (self.directory / RECEIVED_FILE).write_text("")

    def _store(self, item: dict) -> None:
        line = json.dumps(item) + "\n"
        with self._lock, (self.directory / RECEIVED_FILE).open("a") as f:
            f.write(line)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m woolab.webhook",
                                     description="Loopback webhook receiver for the lab.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where received.jsonl is written")
    args = parser.parse_args(argv)
    try:
        WebhookReceiver(args.port, args.dir).serve_forever()
    except LabStartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
