"""The lab controller: one long-running process per state dir.

It owns the topology (the `Lab`), serves the AWS facade and the lab control routes on one
loopback port, and stops every server it started when it is told to (or receives SIGTERM).
`lab.json` in the state dir tells other processes whether it is starting, ready or failed.
"""
import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .config import DB_CLUSTER_ID, LabConfig, write_json_atomic
from .errors import LabError, LabInvalidState, LabNotFound
from .facade.server import handle as facade_handle
from .lab import Lab

log = logging.getLogger("woolab")

# The network relay (woolab/network/relay.py) is a thread of this process: while another thread
# holds the GIL (a health check, the facade answering), a chunk waiting to be relayed waits for
# the interpreter's switch interval, 5 ms by default. A shorter one bounds what the relay adds
# to a round trip under load.
SWITCH_INTERVAL_SECONDS = float(os.environ.get("GAMEDAY_LAB_SWITCH_INTERVAL", "0.0005"))


def write_status(config: LabConfig, status: str, **extra) -> None:
    data = {"status": status, "controller_pid": os.getpid(), "updated_at": time.time(), **extra}
    write_json_atomic(config.path("lab.json"), data)


def _seconds(query: dict) -> float:
    try:
        return float(query.get("seconds", ""))
    except ValueError:
        raise LabInvalidState(f"seconds must be a number, not {query.get('seconds')!r}") from None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def control_routes(lab: Lab) -> dict:
    """`POST /_lab/<route>?id=…`: the lab's own operations (failovers and failures by hand)."""
    return {
        "/_lab/db-failover": lambda q: lab.start_db_reboot(q["id"], force_failover=True),
        "/_lab/db-cluster-failover": lambda q: {"promoting": lab.start_db_cluster_failover(q["id"], q.get("target"))},
        "/_lab/db-reboot": lambda q: lab.start_db_reboot(q["id"], force_failover=False),
        "/_lab/cache-failover": lambda q: lab.start_cache_primary_loss(q["id"], q.get("node_group", "0001")),
        "/_lab/cache-delete": lambda q: lab.start_delete_cache_node(q["id"]),
        "/_lab/cache-add": lambda q: {"id": lab.start_add_cache_node(q["id"])},
        "/_lab/crash": lambda q: lab.crash_node(q["id"]),
        "/_lab/freeze": lambda q: lab.freeze_node(q["id"]),
        "/_lab/thaw": lambda q: lab.thaw_node(q["id"]),
        "/_lab/interrupt-az": lambda q: {"powered_off": lab.start_az_power_interruption(q["id"], _seconds(q))},
    }


class LabRequestHandler(BaseHTTPRequestHandler):
    """`/_lab/*` control routes, everything else to the AWS facade; `lab`, `shutdown` and
    `control` are set on the subclass `make_handler` builds for one lab."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall
    lab: Lab
    shutdown: threading.Event
    control: dict

    def log_message(self, fmt, *args):  # quiet: the facade is polled many times a second
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._reply(status, json.dumps(data).encode())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _lab_route(self, method: str) -> bool:
        """Answer a `/_lab/*` request; False when the path is not a lab route."""
        url = urlparse(self.path)
        if not url.path.startswith("/_lab/"):
            return False
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            status, body = self._control(url.path, method, query)
        except LabNotFound as exc:
            status, body = 404, {"error": str(exc)}
        except LabError as exc:
            status, body = 409, {"error": str(exc)}
        self._json(status, body)
        return True

    def _control(self, path: str, method: str, query: dict) -> tuple:
        lab = self.lab
        if path == "/_lab/status" and method == "GET":
            return 200, lab.snapshot()
        if path == "/_lab/wait-idle" and method == "POST":
            lab.wait_idle(float(query.get("timeout", 60)))
            return 200, {"errors": lab.take_background_errors()}
        if path == "/_lab/converged" and method == "GET":
            return 200, lab.wait_converged(float(query.get("timeout", 0)))
        if path == "/_lab/repair" and method == "POST":
            return 200, lab.repair(float(query.get("timeout", 120)))
        if path == "/_lab/shutdown" and method == "POST":
            self.shutdown.set()
            return 202, {"stopping": True}
        if path == "/_lab/shop-settings" and method == "POST":
            return 200, lab.configure_shop(query)
        if path == "/_lab/replica-lag":
            cluster = query.get("cluster") or DB_CLUSTER_ID
            if method == "GET":
                return 200, lab.replica_lag(cluster)
            if "id" not in query or "seconds" not in query:
                return 400, {"error": "give the reader (id) and the delay (seconds)"}
            return 200, lab.set_replica_delay(cluster, query["id"], query["seconds"])
        if path == "/_lab/network":
            if method == "GET":
                return 200, {"impairments": lab.network_impairments()}
            if query.get("clear"):
                return 200, {"cleared": lab.clear_network(query.get("az") or None)}
            return 201, {"impairment": lab.impair_network(query)}
        if path in self.control and method == "POST":
            if "id" not in query:
                return 400, {"error": "missing id"}
            return 202, self.control[path](query) or {"started": True}
        return 404, {"error": f"no route {method} {path}"}

    def _facade(self, method: str) -> None:
        body = self._body() if method in ("POST", "DELETE") else b""
        status, headers, payload = facade_handle(self.lab, method, self.path, dict(self.headers), body)
        self._reply(status, payload, headers.pop("Content-Type", "text/xml"), headers)

    def do_GET(self):
        if not self._lab_route("GET"):
            self._facade("GET")

    def do_POST(self):
        if not self._lab_route("POST"):
            self._facade("POST")

    def do_DELETE(self):  # FIS: StopExperiment, DeleteExperimentTemplate
        self._facade("DELETE")


def make_handler(lab: Lab, shutdown: threading.Event):
    """The handler class for one lab."""
    return type("Handler", (LabRequestHandler,), {"lab": lab, "shutdown": shutdown,
                                                  "control": control_routes(lab)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="woolab.controller")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    config = LabConfig.load(args.state_dir)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    shutdown = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    signal.signal(signal.SIGINT, lambda *_: shutdown.set())
    lab = Lab(config)
    write_status(config, "starting")
    try:
        server = _Server(("127.0.0.1", config.facade_port), make_handler(lab, shutdown))
    except OSError as exc:
        write_status(config, "failed", error=f"AWS facade port {config.facade_port}: {exc.strerror}")
        return 1
    try:
        lab.start()
    except (LabError, OSError) as exc:
        log.error("lab start failed: %s", exc)
        lab.stop()
        server.server_close()
        write_status(config, "failed", error=str(exc))
        return 1
    except Exception as exc:
        log.exception("lab start crashed")
        lab.stop()
        server.server_close()
        write_status(config, "failed", error=f"lab start crashed: {exc!r} (see controller.log)")
        return 1
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    write_status(config, "ready", processes=lab.processes())
    log.info("lab ready")
    shutdown.wait()
    log.info("lab stopping")
    server.shutdown()
    lab.stop()
    write_status(config, "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
