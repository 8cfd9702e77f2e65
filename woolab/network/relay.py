"""A TCP relay in one asyncio thread: a listener on every node's public (and peer) address that
forwards to the node's server, applying the effects its `Flow` reports for each chunk.

Without an impairment a chunk is written as soon as it is read (no queue, no timer); with one
it gets a delivery time (delay, jitter, a retransmission stall for "loss", the bandwidth's
transmission time) and a writer task delivers it in order. A held flow (black hole, partition)
reads nothing more and delivers nothing until the hold ends: nothing is reset, and TCP's own
flow control makes the sender wait. A listener opens once its server accepts connections and
closes when the server refuses one, so a stopped server's address refuses connections again
(the first client after the stop gets a reset instead).
"""
import asyncio
import logging
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from .impairments import Effect

log = logging.getLogger("woolab")
CHUNK = 65536
MIN_RTO = 0.2  # Linux's minimum retransmission timeout (TCP_RTO_MIN), doubled per loss in a row
Address = Tuple[str, int]


@dataclass
class Flow:
    """One relayed connection: where it goes, who opened it; `effect(direction)` is asked for
    every chunk ("to" = toward the node, "from" = from the node), None when nothing applies."""
    listen: Address
    upstream: Address
    source: str
    effect: Callable[[str], Optional[Effect]] = lambda direction: None


class Relay:
    """Listeners `listen -> upstream`; `classify(listen, upstream, peer_ip)` makes each Flow."""

    def __init__(self, classify: Callable[[Address, Address, str], Flow], check_every: float = 0.05):
        self.classify = classify
        self.check_every = check_every
        self.routes: Dict[Address, Address] = {}
        self.loop = asyncio.new_event_loop()
        self._servers: Dict[Address, asyncio.AbstractServer] = {}
        self._changed = asyncio.Event()
        self._thread: Optional[threading.Thread] = None
        self._conns: set = set()
        self._stopping = False

    # life cycle (any thread) -----------------------------------------------------------------
    def start(self, routes: Dict[Address, Address]) -> "Relay":
        self.routes = dict(routes)
        self._thread = threading.Thread(target=self.loop.run_forever, name="lab-relay", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._first_look(), self.loop).result(30)
        return self

    def stop(self) -> None:
        """Close every listener and every relayed connection; the thread ends."""
        if self._thread is None:
            return
        self._stopping = True
        asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None

    def changed(self) -> None:
        """The impairments changed: held flows look again (thread-safe)."""
        self.loop.call_soon_threadsafe(self._wake)

    def open_listeners(self) -> list:
        return sorted(self._servers)

    # inside the loop ---------------------------------------------------------------------------
    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float = 0.5) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _try_open(self, listen: Address) -> bool:
        """Open the listener if its server accepts a connection now."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*self.routes[listen]), 1.0)
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        await self._open(listen)
        return True

    async def _await_server(self, listen: Address) -> None:
        """Open the listener once its server accepts connections (probed every `check_every`)."""
        while not self._stopping and listen not in self._servers and not await self._try_open(listen):
            await asyncio.sleep(self.check_every)

    async def _first_look(self) -> None:
        """Open the listeners of the servers already up; wait for the others in the background."""
        for listen in self.routes:
            if not await self._try_open(listen):
                asyncio.ensure_future(self._await_server(listen))

    def _server_gone(self, listen: Address) -> None:
        """Its server refused: close the listener (the address refuses again) and wait for it."""
        server = self._servers.pop(listen, None)
        if server is not None:
            server.close()
            asyncio.ensure_future(self._await_server(listen))

    async def _open(self, listen: Address) -> None:
        try:
            self._servers[listen] = await asyncio.start_server(
                lambda r, w: self._serve(listen, r, w), listen[0], listen[1], reuse_address=True, backlog=512)
        except OSError as exc:
            log.warning("relay cannot listen on %s:%s: %s", listen[0], listen[1], exc)

    async def _close_all(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # relayed connections and servers still awaited
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _serve(self, listen: Address, client_r, client_w) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        peer = client_w.get_extra_info("peername") or ("", 0)
        flow = self.classify(listen, self.routes[listen], peer[0])
        upstream_w = None
        try:
            await self._hold_while(flow, "to")
            try:
                upstream_r, upstream_w = await asyncio.open_connection(*flow.upstream)
            except ConnectionRefusedError:
                self._server_gone(listen)
                raise
            await asyncio.gather(self._pump(flow, "to", client_r, upstream_w),
                                 self._pump(flow, "from", upstream_r, client_w))
        except (OSError, asyncio.IncompleteReadError):
            _reset(client_w)
        except asyncio.CancelledError:
            pass
        finally:
            for w in (client_w, upstream_w):
                if w is not None:
                    w.close()
            self._conns.discard(task)

    async def _hold_while(self, flow: Flow, direction: str) -> None:
        while True:
            effect = flow.effect(direction)
            if effect is None or not (effect.hold or effect.loss >= 1.0):
                return
            await self._wait_change()

    async def _pump(self, flow: Flow, direction: str, reader, writer) -> None:
        """Copy one direction until EOF; impaired chunks go through `Delivery`."""
        delivery = Delivery(self, flow, direction, writer)
        try:
            while True:
                await self._hold_while(flow, direction)
                data = await reader.read(CHUNK)
                if not data:
                    break
                effect = flow.effect(direction)
                if effect is None and delivery.idle():
                    writer.write(data)
                    await writer.drain()
                else:
                    await delivery.put(data, effect or Effect())
            await delivery.finish()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, asyncio.IncompleteReadError):
            _reset(writer)
            delivery.cancel()


class Delivery:
    """In-order delivery of impaired chunks at their due times (one writer task per direction)."""

    def __init__(self, relay: Relay, flow: Flow, direction: str, writer):
        self.relay, self.flow, self.direction, self.writer = relay, flow, direction, writer
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=32)  # back-pressure on a fast sender
        self.pending = 0
        self.link_free_at = 0.0
        self.last_due = 0.0
        self.losses = 0
        self.task: Optional[asyncio.Task] = None

    def idle(self) -> bool:
        return self.pending == 0

    def _due(self, size: int, effect: Effect) -> float:
        now = time.monotonic()
        delay = effect.delay_s + (random.uniform(-effect.jitter_s, effect.jitter_s) if effect.jitter_s else 0.0)
        if effect.loss and random.random() < effect.loss:
            delay += MIN_RTO * (2 ** min(self.losses, 6))  # the segment is resent after the RTO
            self.losses += 1
        else:
            self.losses = 0
        start = max(now, self.link_free_at)
        if effect.bytes_per_s:
            self.link_free_at = start + size / effect.bytes_per_s
            start = self.link_free_at
        self.last_due = max(self.last_due, start + max(0.0, delay))  # TCP delivers in order
        return self.last_due

    async def put(self, data: bytes, effect: Effect) -> None:
        if self.task is None:
            self.task = asyncio.ensure_future(self._deliver())
        self.pending += 1
        await self.queue.put((self._due(len(data), effect), data))

    async def _deliver(self) -> None:
        while True:
            due, data = await self.queue.get()
            if data is None:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.relay._hold_while(self.flow, self.direction)
            try:
                self.writer.write(data)
                await self.writer.drain()
            except OSError:
                return
            finally:
                self.pending -= 1

    async def finish(self) -> None:
        if self.task is not None:
            await self.queue.put((0.0, None))
            await self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _reset(writer) -> None:
    """Pass a reset on: close with SO_LINGER 0, so the peer gets RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except OSError:
        pass
