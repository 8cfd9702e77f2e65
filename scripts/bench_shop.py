"""Benchmark section `shop`: browse req/s and checkout orders/s of the stand-in shop, with
percentiles and what limited them.

The client is deliberately lean because it shares the machine's cores with the shop: a
non-blocking HTTP/1.1 keep-alive loop (``selectors``) in a few processes, each driving many
connections, where every connection runs a small shopper script (a generator that yields
requests and receives responses). Closed loop: throughput is what the shop sustains at the
given concurrency; latency is measured per request from send to last byte.

    bench_browse("http://127.0.0.1:15301", seconds=10)   # -> dict with rps, p50/p95/p99 ms
"""
from __future__ import annotations

import json
import multiprocessing
import selectors
import socket
import time
from typing import Any, Callable, Dict, Generator, List, Optional, Tuple
from urllib.parse import urlsplit

from benchkit.core import Context, Section
from benchkit.machine import CpuShares
from woolab import manage

STORE = "/wp-json/wc/store/v1"
Response = Tuple[int, Dict[str, str], bytes]
Script = Generator[Tuple[str, bytes], Response, None]  # yields (step, raw request)


def _request(host: str, method: str, path: str, body: Optional[dict] = None,
             headers: Optional[Dict[str, str]] = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def browse_script(host: str, per_page: int = 10, pages: int = 5) -> Callable[[int], Script]:
    """Shoppers paging through the (cached) product list."""
    def script(n: int) -> Script:
        i = n
        while True:
            i += 1
            yield "browse", _request(host, "GET", f"{STORE}/products?per_page={per_page}&page={i % pages + 1}")
    return script


def checkout_script(host: str, products: int = 200, items: int = 1) -> Callable[[int], Script]:
    """Guest shoppers: add ``items`` products to the cart, check out with cod, repeat."""
    def script(n: int) -> Script:
        _status, headers, _ = yield "cart", _request(host, "GET", f"{STORE}/cart")
        auth = {"Cart-Token": headers.get("cart-token", ""), "Nonce": headers.get("nonce", "")}
        k = n * 7919
        billing = {"first_name": "Bench", "last_name": f"User{n}", "email": f"bench{n}@example.com",
                   "address_1": "1 Main St", "city": "Springfield", "postcode": "12345", "country": "US"}
        while True:
            for _ in range(items):
                k += 1
                pid = k % products + 1
                if pid % 50 == 0:  # the nearly sold-out products would only measure 409s
                    pid -= 1
                yield "add-item", _request(host, "POST", f"{STORE}/cart/add-item",
                                           {"id": pid, "quantity": 1}, auth)
            yield "checkout", _request(host, "POST", f"{STORE}/checkout",
                                       {"billing_address": billing, "payment_method": "cod"}, auth)
    return script


class _Conn:
    __slots__ = ("sock", "script", "out", "buf", "step", "sent_at", "need")

    def __init__(self, script: Script) -> None:
        self.sock: Optional[socket.socket] = None
        self.script = script
        self.out = b""
        self.buf = b""
        self.step = ""
        self.sent_at = 0.0
        self.need: Optional[int] = None


def _parse(buf: bytes) -> Optional[Tuple[Response, int, bool]]:
    """(response, bytes consumed, server wants close) once a whole response is buffered."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    total = end + 4 + int(headers.get("content-length", 0))
    if len(buf) < total:
        return None
    close = headers.get("connection", "").lower() == "close"
    return (status, headers, buf[end + 4:total]), total, close


SCRIPTS = {"browse": browse_script, "checkout": checkout_script}


class _Worker:
    """One process's connections, driven by a selector: each connection plays its script,
    one request at a time, and every answer is timed and counted by step."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sel = selectors.DefaultSelector()
        self.lat: Dict[str, List[float]] = {}
        self.codes: Dict[str, Dict[int, int]] = {}
        self.errors = 0

    def connect(self, c: _Conn) -> None:
        c.sock = socket.create_connection((self.host, self.port))
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock.setblocking(False)
        self.sel.register(c.sock, selectors.EVENT_WRITE, c)

    def reconnect(self, c: _Conn) -> None:
        self.sel.unregister(c.sock)
        c.sock.close()
        c.buf = b""
        self.connect(c)

    def next_request(self, c: _Conn, response: Optional[Response]) -> None:
        c.step, c.out = c.script.send(response) if response else next(c.script)
        c.sent_at = time.perf_counter()
        self.sel.modify(c.sock, selectors.EVENT_WRITE, c)

    def on_writable(self, c: _Conn) -> None:
        c.out = c.out[c.sock.send(c.out):]
        if not c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def on_readable(self, c: _Conn) -> None:
        chunk = c.sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed by server")
        c.buf += chunk
        parsed = _parse(c.buf)
        if parsed is None:
            return
        response, used, close = parsed
        c.buf = c.buf[used:]
        self.lat.setdefault(c.step, []).append((time.perf_counter() - c.sent_at) * 1000)
        step_codes = self.codes.setdefault(c.step, {})
        step_codes[response[0]] = step_codes.get(response[0], 0) + 1
        if close:
            self.reconnect(c)
        self.next_request(c, response)

    def run(self, scripts: List[Script], seconds: float) -> Dict[str, Any]:
        for script in scripts:
            c = _Conn(script)
            self.connect(c)
            c.step, c.out = next(c.script)
            c.sent_at = time.perf_counter()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for key, events in self.sel.select(timeout=0.5):
                c = key.data
                try:
                    self.on_writable(c) if events & selectors.EVENT_WRITE else self.on_readable(c)
                except (OSError, ConnectionError):
                    self.errors += 1
                    self.reconnect(c)  # the same request is sent again on the new connection
                    c.sent_at = time.perf_counter()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        return {"latencies": self.lat, "codes": self.codes, "errors": self.errors}


def _run_worker(args: Tuple[str, int, str, Dict[str, Any], int, float, int]) -> Dict[str, Any]:
    host, port, kind, options, conns, seconds, first = args
    make_script = SCRIPTS[kind](f"{host}:{port}", **options)
    return _Worker(host, port).run([make_script(first + i) for i in range(conns)], seconds)


def _percentile(sorted_values: List[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(url: str, kind: str, options: Dict[str, Any], *, seconds: float = 10.0,
        concurrency: int = 32, processes: int = 2) -> Dict[str, Any]:
    """Drive ``concurrency`` connections running the ``kind`` script over ``processes``
    client processes; returns request counts, rps, p50/p95/p99 and status codes per step."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    per = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    jobs = [(host, port, kind, options, n, seconds, i * 100000) for i, n in enumerate(per) if n]
    # spawn, not fork: this process may have threads (samplers, earlier sections' probes), and
    # a child forked while one of them holds a lock can hang for ever; spawned children are
    # still this process's children, so their CPU counts as the load generator's (CpuShares)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        results = pool.map(_run_worker, jobs)
    steps: Dict[str, Dict[str, Any]] = {}
    for step in {s for r in results for s in r["latencies"]}:
        values = sorted(v for r in results for v in r["latencies"].get(step, []))
        codes: Dict[str, int] = {}
        for r in results:
            for code, n in r["codes"].get(step, {}).items():
                codes[str(code)] = codes.get(str(code), 0) + n
        steps[step] = {"requests": len(values), "rps": round(len(values) / seconds, 1),
                       "p50_ms": round(_percentile(values, 0.50), 2),
                       "p95_ms": round(_percentile(values, 0.95), 2),
                       "p99_ms": round(_percentile(values, 0.99), 2), "status": codes}
    return {"url": url, "seconds": seconds, "concurrency": concurrency, "processes": processes,
            "socket_errors": sum(r["errors"] for r in results), "steps": steps}


def bench_browse(url: str, seconds: float = 10.0, concurrency: int = 32, processes: int = 2,
                 per_page: int = 10) -> Dict[str, Any]:
    """Cached product-list throughput: ``steps["browse"]`` has rps and p95_ms."""
    return run(url, "browse", {"per_page": per_page}, seconds=seconds,
               concurrency=concurrency, processes=processes)


def bench_checkout(url: str, seconds: float = 10.0, concurrency: int = 12, processes: int = 2,
                   items: int = 1) -> Dict[str, Any]:
    """Order throughput: ``steps["checkout"]["status"]["200"] / seconds`` orders/s, p95_ms."""
    result = run(url, "checkout", {"items": items}, seconds=seconds,
                 concurrency=concurrency, processes=processes)
    placed = result["steps"].get("checkout", {}).get("status", {}).get("200", 0)
    result["orders_per_second"] = round(placed / seconds, 1)
    return result


def _not_ok(result: Dict[str, Any], step: str) -> int:
    codes = result["steps"].get(step, {}).get("status", {})
    return sum(n for code, n in codes.items() if code != "200") + result["socket_errors"]


def _limit(ctx: Context, step: str, cpu: CpuShares) -> None:
    ctx.figure(f"{step}: what limits it", cpu.verdict(), cpu.text)
    ctx.note(f"{step}: CPU shares", cpu.text)


def run_section(ctx: Context) -> None:
    url = manage.env(ctx.config.state_dir)["GAMEDAY_SHOP_URL"]
    with CpuShares(ctx.config.state_dir) as cpu:
        browse = bench_browse(url, seconds=ctx.args.seconds)
    step = browse["steps"].get("browse", {})
    ctx.figure(f"browse req/s ({browse['concurrency']} conns, cached list)", float(step.get("rps", 0.0)),
               "target >= 2,000")
    ctx.figure("browse p95 ms", float(step.get("p95_ms", 0.0)), "target <= 50 ms")
    ctx.figure("browse non-200 responses + socket errors", _not_ok(browse, "browse"))
    _limit(ctx, "browse", cpu)
    with CpuShares(ctx.config.state_dir) as cpu:
        checkout = bench_checkout(url, seconds=ctx.args.seconds)
    step = checkout["steps"].get("checkout", {})
    ctx.figure(f"checkout orders/s ({checkout['concurrency']} conns, 1 item, cod)",
               float(checkout["orders_per_second"]), "target >= 300")
    ctx.figure("checkout p95 ms", float(step.get("p95_ms", 0.0)), "target <= 100 ms")
    ctx.figure("checkout non-200 responses + socket errors", _not_ok(checkout, "checkout"))
    _limit(ctx, "checkout", cpu)


SECTION = Section("shop", run_section, lambda args: 2 * (args.seconds + 60), needs_lab=True,
                  about="browse and checkout throughput of the stand-in shop")

if __name__ == "__main__":  # python scripts/bench_shop.py URL [seconds]
    import sys
    target = sys.argv[1]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    print(json.dumps({"browse": bench_browse(target, secs), "checkout": bench_checkout(target, secs)},
                     indent=1))
