"""A TCP relay in one thread: a listener on every node's public (and peer) address that forwards
to the node's server, applying the effects its `Flow` reports for each chunk (how one connection
is relayed: `pipe.Side`; the loop: `eventloop.EventLoop`).

A new connection waits while its flow is held (a black hole: accepted, then nothing, no reset),
then connects upstream. A listener opens once its server accepts connections and closes when the
server refuses one, so a stopped server's address refuses connections again (the first client
after the stop gets a reset instead).
"""
import errno
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from .eventloop import READ, WRITE, EventLoop
from .impairments import Effect
from .pipe import Side, reset

log = logging.getLogger("woolab")
Address = Tuple[str, int]
PROBE_TIMEOUT = 1.0  # a server that neither accepts nor refuses within this is not up


@dataclass
class Flow:
    """One relayed connection: where it goes, who opened it; `effect(direction)` is asked for
    every chunk ("to" = toward the node, "from" = from the node), None when nothing applies."""
    listen: Address
    upstream: Address
    source: str
    effect: Callable[[str], Optional[Effect]] = lambda direction: None


def _held(flow: Flow) -> bool:
    effect = flow.effect("to")
    return effect is not None and (effect.hold or effect.loss >= 1.0)


def _nonblocking(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes go at once, as asyncio's do
    return sock


class Relay:
    """Listeners `listen -> upstream`; `classify(listen, upstream, peer)` makes each Flow (`peer`:
    the connecting side's (address, port))."""

    def __init__(self, classify: Callable[[Address, Address, Address], Flow], check_every: float = 0.05):
        self.classify = classify
        self.check_every = check_every
        self.routes: Dict[Address, Address] = {}
        self.loop = EventLoop()
        self._listeners: Dict[Address, socket.socket] = {}
        self._thread: Optional[threading.Thread] = None
        self.quiet = True  # no impairment in force anywhere (set by the owner with `changed`)
        self.waiting: set = set()  # sides whose flow is held, looked at again on every change
        self._held_new: set = set()  # accepted client sides not yet connected upstream (held)
        self.sides: set = set()  # every open side (a side leaves it when it closes), closed on stop
        self._stopping = False

    # life cycle (any thread) -----------------------------------------------------------------
    def start(self, routes: Dict[Address, Address]) -> "Relay":
        """Listen for every server that is up now; the others are awaited in the background."""
        self.routes = dict(routes)
        first_look = threading.Event()
        pending = set(self.routes)

        def looked(listen: Address) -> None:
            pending.discard(listen)
            if not pending:
                first_look.set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lab-relay", daemon=True)
        self._thread.start()
        self.loop.call_soon_threadsafe(lambda: [self._probe(listen, looked) for listen in self.routes])
        if not self.routes:
            first_look.set()
        first_look.wait(30)
        return self

    def stop(self) -> None:
        """Close every listener and every relayed connection; the thread ends."""
        if self._thread is None:
            return
        self.loop.call_soon_threadsafe(self._close_all)
        self._thread.join(10)
        self._thread = None

    def changed(self, quiet: bool = False) -> None:
        """The impairments changed (`quiet`: none is left): held flows look again (thread-safe)."""
        self.quiet = quiet
        self.loop.call_soon_threadsafe(self._look_again)

    def open_listeners(self) -> list:
        return sorted(self._listeners)

    # inside the loop ---------------------------------------------------------------------------
    def _look_again(self) -> None:
        for side in list(self.waiting):
            side.flush()
        for client in list(self._held_new):
            if not _held(client.flow):
                self._held_new.discard(client)
                self._connect(client)

    def _close_all(self) -> None:
        self._stopping = True
        for listen in list(self._listeners):
            self._close_listener(listen)
        for side in list(self.sides):
            side.close()
        self.loop.stop()

    # listeners ---------------------------------------------------------------------------------
    def _probe(self, listen: Address, done: Optional[Callable[[Address], None]] = None) -> None:
        """Open the listener if its server accepts a connection now; otherwise try again in
        `check_every`. `done(listen)` after the first answer either way."""
        if self._stopping or listen in self._listeners:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        outcome = {"timer": None}

        def answered(_events: int = 0) -> None:
            if outcome["timer"] is not None:
                outcome["timer"].cancel()
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if _events else errno.ETIMEDOUT
            self.loop.forget(sock.fileno())
            sock.close()
            if error == 0 and not self._stopping:
                self._open(listen)
            elif not self._stopping:
                self.loop.call_later(self.check_every, lambda: self._probe(listen))
            if done is not None:
                done(listen)

        code = sock.connect_ex(self.routes[listen])
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            if done is not None:
                done(listen)
            self.loop.call_later(self.check_every, lambda: self._probe(listen))
            return
        outcome["timer"] = self.loop.call_later(PROBE_TIMEOUT, answered)
        self.loop.watch(sock.fileno(), WRITE, answered)

    def _open(self, listen: Address) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(listen)
            sock.listen(512)
        except OSError as exc:
            sock.close()
            log.warning("relay cannot listen on %s:%s: %s", listen[0], listen[1], exc)
            return
        sock.setblocking(False)
        self._listeners[listen] = sock
        self.loop.watch(sock.fileno(), READ, lambda _events: self._accept(listen, sock))

    def _close_listener(self, listen: Address) -> None:
        sock = self._listeners.pop(listen, None)
        if sock is not None:
            self.loop.forget(sock.fileno())
            sock.close()

    def _server_gone(self, listen: Address) -> None:
        """Its server refused: close the listener (the address refuses again) and wait for it."""
        if listen in self._listeners:
            self._close_listener(listen)
            self._probe(listen)

    # connections -------------------------------------------------------------------------------
    def _accept(self, listen: Address, listener: socket.socket) -> None:
        """Every waiting client: its side reads nothing until the upstream side is connected."""
        while True:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("relay accept on %s:%s failed: %s", listen[0], listen[1], exc)
                return
            client = Side(self, self.loop, _nonblocking(sock), self.classify(listen, self.routes[listen], peer[:2]), "to")
            self.sides.add(client)
            if _held(client.flow):
                self._held_new.add(client)
            else:
                self._connect(client)

    def _connect(self, client: Side) -> None:
        """Connect the upstream side, then let data flow both ways."""
        if client.closed:
            return
        listen = client.flow.listen
        sock = _nonblocking(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        code = sock.connect_ex(client.flow.upstream)

        def connected(_events: int = 0) -> None:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if code == errno.EINPROGRESS else code
            self.loop.forget(sock.fileno())
            if error:
                sock.close()
                if error == errno.ECONNREFUSED:
                    self._server_gone(listen)
                reset(client.sock)
                client.close()
                return
            upstream = Side(self, self.loop, sock, client.flow, "from")
            self.sides.add(upstream)
            client.link(upstream)
            upstream.link(client)
        if code == errno.EINPROGRESS:
            self.loop.watch(sock.fileno(), WRITE, connected)
        else:
            connected()
