"""One relayed connection: two `Side`s, one per socket, each passing what it receives to the other.

Without an impairment a received chunk is sent straight on (no queue, no timer): the relay's
whole cost is one `recv` and one `send`. With one, each chunk gets a delivery time (delay, jitter,
a retransmission stall for "loss", the bandwidth's transmission time) and waits in order in a
small queue; a held flow (black hole, partition) stops reading, so TCP's own flow control makes
the sender wait, and delivers what waited once the hold ends. Back-pressure: a side whose peer
cannot take more (its send buffer is full) stops reading until the peer has drained.
"""
import random
import socket
import struct
import time
from collections import deque
from typing import Optional

from .eventloop import READ, TROUBLE, WRITE, EventLoop, Timer
from .impairments import Effect

MIN_RTO = 0.2  # Linux's minimum retransmission timeout (TCP_RTO_MIN), doubled per loss in a row
QUEUE_LIMIT = 64  # chunks waiting for delivery before the side stops reading
CHUNK = 65536


class Side:
    """One socket of a relayed connection; `direction` is where what it receives goes:
    "to" (client side: toward the node) or "from" (upstream side: from the node)."""

    def __init__(self, relay, loop: EventLoop, sock: socket.socket, flow, direction: str):
        self.relay, self.loop, self.sock, self.flow, self.direction = relay, loop, sock, flow, direction
        self.fd = sock.fileno()
        self.peer: Optional["Side"] = None
        self.queue: deque = deque()  # (due, chunk) received here, waiting for delivery to the peer
        self.unsent = bytearray()  # delivered to this side, not yet taken by its socket
        self.timer: Optional[Timer] = None
        self.link_free_at = self.last_due = 0.0
        self.losses = 0
        self.held = False
        self.eof = False  # this socket's far end has finished sending
        self.eof_passed = False  # ... and that end was passed on to the peer
        self.closed = False

    def link(self, peer: "Side") -> None:
        self.peer = peer
        self._update()

    # watching --------------------------------------------------------------------------------
    def _update(self) -> None:
        """Watch for what this side can do now: read while it may, write while bytes wait."""
        if self.closed:
            return
        peer = self.peer
        reading = (peer is not None and not self.eof and not self.held and len(self.queue) < QUEUE_LIMIT
                   and not peer.unsent)
        self.loop.watch(self.fd, (READ if reading else 0) | (WRITE if self.unsent else 0), self._ready)

    def _ready(self, events: int) -> None:
        if events & WRITE:
            self._send_unsent()
        if events & (READ | TROUBLE) and not self.closed:
            self._read()

    # receiving -------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.lost(reset_peer=True)
            return
        if not data:
            self.eof = True
            self.flush()
            return
        if not self.queue and self.relay.quiet:  # nothing impaired anywhere: the fast path
            self.peer.write(data)
            return
        effect = self.flow.effect(self.direction)
        if effect is None and not self.queue:
            self.peer.write(data)
            return
        self.queue.append((self._due(len(data), effect or Effect()), data))
        self.flush()

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

    # delivering ------------------------------------------------------------------------------
    def flush(self) -> None:
        """Deliver what is due unless the flow is held; come back when the next chunk is due or
        the impairments change. Passes an end of stream on once everything before it went."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.peer is None or self.closed:
            return
        effect = self.flow.effect(self.direction) if self.queue or not self.relay.quiet else None
        self.held = effect is not None and (effect.hold or effect.loss >= 1.0)
        if self.held:
            self.relay.waiting.add(self)
            self._update()
            return
        self.relay.waiting.discard(self)
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            self.peer.write(self.queue.popleft()[1])
        if self.queue:
            self.timer = self.loop.call_later(self.queue[0][0] - now, self.flush)
        elif self.eof and not self.eof_passed:
            self.eof_passed = True
            self.peer.end_when_sent()
        self._update()

    def write(self, data: bytes) -> None:
        """Send `data` on this socket; what the socket cannot take now waits (and the peer,
        its source, stops reading until it has gone)."""
        if self.closed:
            return
        if not self.unsent:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.lost(reset_peer=True)
                return
            if sent == len(data):
                return
            data = data[sent:]
        self.unsent += data
        self._update()
        if self.peer is not None:
            self.peer._update()

    def _send_unsent(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.lost(reset_peer=True)
            return
        del self.unsent[:sent]
        if self.unsent:
            return
        self._update()
        if self.peer is not None:
            self.peer._update()
        if self.peer is not None and self.peer.eof_passed:
            self._shut_write()

    def end_when_sent(self) -> None:
        """The peer's far end finished sending: finish ours once what waits has gone."""
        if not self.unsent:
            self._shut_write()

    def _shut_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if self.eof_passed and not self.unsent:  # both directions ended: the connection is done
            self.close()
            if self.peer is not None:
                self.peer.close()

    # ending ----------------------------------------------------------------------------------
    def lost(self, reset_peer: bool) -> None:
        """This socket failed (reset, refused): close it, and reset the peer (a reset passed on)."""
        self.close()
        peer = self.peer
        if peer is not None and not peer.closed:
            if reset_peer:
                reset(peer.sock)
            peer.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.relay.waiting.discard(self)
        self.relay.sides.discard(self)
        self.loop.forget(self.fd)
        self.sock.close()


def reset(sock: socket.socket) -> None:
    """Make the close send RST instead of FIN (SO_LINGER 0): a reset passed on."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
