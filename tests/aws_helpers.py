"""Stubbed boto3 clients for unit tests of AWS-only paths (botocore's Stubber checks parameters
against the real service model, unlike a MagicMock)."""
import contextlib
import socket
import threading

from botocore.stub import Stubber

from chaosext.aws import aws_client


@contextlib.contextmanager
def stubbed_client(monkeypatch, service: str, configuration: dict, *modules):
    """One real client of `service`, handed to every module's `aws_client`, under a Stubber that
    must be fully consumed by the test."""
    client = aws_client(service, configuration)
    for module in modules:
        monkeypatch.setattr(module, "aws_client", lambda *a, **k: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


class FakeAws:
    """A loopback HTTP endpoint that answers garbage, or accepts and never answers."""

    def __init__(self, mode: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url, self.mode, self.held = f"http://127.0.0.1:{self.sock.getsockname()[1]}", mode, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "hang":
                self.held.append(conn)
                continue
            conn.recv(65536)
            body = b"<html><body>Welcome to nginx!</body></html>"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.close()

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()
