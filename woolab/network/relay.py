"""A TCP relay in one asyncio thread: a listener on every node's public (and peer) address that
forwards to the node's server, applying the effects its `Flow` reports for each chunk (how one
connection is relayed: `pipe.Side`).

A new connection waits while its flow is held (a black hole: accepted, then nothing, no
reset), then connects upstream. A listener opens once its server accepts connections and
closes when the server refuses one, so a stopped server's address refuses connections again
(the first client after the stop gets a reset instead).
"""
import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from .impairments import Effect
from .pipe import Side, reset

log = logging.getLogger("woolab")
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
        self.quiet = True  # no impairment in force anywhere (set by the owner with `changed`)
        self.waiting: set = set()  # sides whose flow is held, looked at again on every change
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

    def changed(self, quiet: bool = False) -> None:
        """The impairments changed (`quiet`: none is left): held flows look again (thread-safe)."""
        self.quiet = quiet
        self.loop.call_soon_threadsafe(self._wake)

    def open_listeners(self) -> list:
        return sorted(self._servers)

    # inside the loop ---------------------------------------------------------------------------
    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        for side in list(self.waiting):
            side.flush()

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
            self._servers[listen] = await asyncio.get_running_loop().create_server(
                lambda: self._accepted(listen), listen[0], listen[1], reuse_address=True, backlog=512)
        except OSError as exc:
            log.warning("relay cannot listen on %s:%s: %s", listen[0], listen[1], exc)

    async def _close_all(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        for side in list(self.waiting):
            side.transport.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # relayed connections and servers still awaited
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _accepted(self, listen: Address) -> Side:
        """A client connected: its side reads nothing until the upstream side is connected."""
        side = Side(self, None, "to")
        original = side.connection_made

        def made(transport) -> None:
            original(transport)
            peer = transport.get_extra_info("peername") or ("", 0)
            side.flow = self.classify(listen, self.routes[listen], peer[0])
            side._pause(True)
            asyncio.ensure_future(self._connect(listen, side))
        side.connection_made = made
        return side

    async def _connect(self, listen: Address, client: Side) -> None:
        """Connect the upstream side (after any hold on new connections), then let data flow."""
        flow = client.flow
        try:
            while (effect := flow.effect("to")) is not None and (effect.hold or effect.loss >= 1.0):
                await self._wait_change()
                if client.transport.is_closing():
                    return
            _, upstream = await asyncio.get_running_loop().create_connection(
                lambda: Side(self, flow, "from"), *flow.upstream)
        except ConnectionRefusedError:
            self._server_gone(listen)
            reset(client.transport)
            return
        except OSError:
            reset(client.transport)
            return
        if client.transport.is_closing():
            upstream.transport.close()
            return
        client.peer, upstream.peer = upstream, client
        client.flush()  # what the client sent before the link (read before the pause took hold)
        client._pause(False)
        upstream.flush()  # what the server said before the link (a MySQL greeting)
