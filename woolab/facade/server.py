"""HTTP-server-independent entry point of the facade: one request in, one AWS reply out.

Why: the lab controller owns the HTTP server (a ThreadingHTTPServer that also serves
``/_lab/*``); it hands every other request to ``handle`` and writes back what it returns.

    status, headers, body = handle(lab, "POST", "/", request_headers, request_body)
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Mapping, Tuple
from urllib.parse import urlsplit

from woolab.facade import ec2, elasticache, fis, rds, sts, subnet_groups
from woolab.facade.protocol import (AwsError, decode_form, new_request_id, operation_for,
                                    parse_request, serialize_error, serialize_response,
                                    service_for, service_model)

log = logging.getLogger("woolab.facade")

HANDLERS: Dict[str, Dict[str, Callable]] = {
    "rds": {**rds.OPERATIONS, **subnet_groups.RDS_OPERATIONS},
    "elasticache": {**elasticache.OPERATIONS, **subnet_groups.ELASTICACHE_OPERATIONS},
    "sts": sts.OPERATIONS,
    "ec2": ec2.OPERATIONS,
}

Reply = Tuple[int, Dict[str, str], bytes]


def handle(lab, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
    """Answer one Query-protocol request (POST form body, or GET with a query string).

    FIS (rest-json: its own paths, JSON bodies, GET/POST/DELETE) goes to ``woolab.facade.fis``.
    """
    if fis.is_fis_request(path, headers or {}):
        return fis.handle(lab, method, path, dict(headers or {}), body)
    request_id = new_request_id()
    lowered = {k.lower(): v for k, v in dict(headers or {}).items()}
    namespace, service = "", ""
    try:
        if method not in ("GET", "POST"):
            raise AwsError("InvalidAction", f"Method {method} is not supported; use POST.")
        try:
            flat = decode_form(body if method == "POST" else b"", urlsplit(path).query)
        except UnicodeDecodeError:
            raise AwsError("MalformedQueryString", "The request is not valid UTF-8.", 404) from None
        service = service_for(flat, lowered)
        namespace = service_model(service).metadata.get("xmlNamespace", "")
        operation = operation_for(service, flat)
        handler = HANDLERS[service].get(operation.name)
        if handler is None:
            raise AwsError("InvalidAction",
                           f"The action {operation.name} is not implemented by the failover-gameday lab.")
        if service == "ec2":
            output = handler(lab, ec2.parse_request(operation, flat))
            status, text = 200, ec2.serialize_response(operation, output, request_id)
        else:
            output = handler(lab, parse_request(operation, flat))
            status, text = 200, serialize_response(operation, output, request_id)
    except AwsError as error:
        status = error.status
        text = (ec2.serialize_error(error, request_id) if service == "ec2"
                else serialize_error(error, request_id, namespace))
    except Exception:  # a bug in the facade or the lab: answer like AWS, keep the traceback in the log
        log.exception("facade request failed")
        error = AwsError("InternalFailure", "The request processing has failed because of an unknown "
                         "error, exception or failure.", 500, sender=False)
        status, text = 500, serialize_error(error, request_id, namespace)
    data = text.encode("utf-8")
    # No Content-Length: the HTTP server that writes the reply sets it.
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, data


def serve(lab, host: str = "127.0.0.1", port: int = 0) -> Any:
    """A stand-alone ThreadingHTTPServer around ``handle`` (tests, benchmarks); caller runs it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class FacadeRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms per call on loopback).
        disable_nagle_algorithm = True

        def _reply(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, data = handle(lab, self.command, self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _reply

        def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
            log.debug("facade %s", format % args)

    server = ThreadingHTTPServer((host, port), FacadeRequestHandler)
    server.daemon_threads = True
    return server
