"""One relayed connection as two asyncio protocols, one per socket, each passing what it
receives to the other side.

Without an impairment `data_received` writes straight to the other transport (no queue, no
task, no timer): the relay's whole cost is one callback and one write per chunk. With one, each
chunk gets a delivery time (delay, jitter, a retransmission stall for "loss", the bandwidth's
transmission time) and waits in order in a small queue; a held flow (black hole, partition)
stops reading, so TCP's own flow control makes the sender wait, and delivers what waited once
the hold ends. Back-pressure: a side whose peer cannot write fast enough stops reading.
"""
import asyncio
import random
import socket
import struct
import time
from collections import deque
from typing import Optional

from .impairments import Effect

MIN_RTO = 0.2  # Linux's minimum retransmission timeout (TCP_RTO_MIN), doubled per loss in a row
QUEUE_LIMIT = 64  # chunks waiting for delivery before the side stops reading


class Side(asyncio.Protocol):
    """One socket of a relayed connection; `direction` is where what it receives goes:
    "to" (client side: toward the node) or "from" (upstream side: from the node)."""

    def __init__(self, relay, flow, direction: str):
        self.relay, self.flow, self.direction = relay, flow, direction
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Optional["Side"] = None
        self.queue: deque = deque()
        self.timer: Optional[asyncio.TimerHandle] = None
        self.link_free_at = self.last_due = 0.0
        self.losses = 0
        self.eof = False
        self.paused = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    # receiving ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.peer is None:  # one side spoke before both were linked (a MySQL greeting;
            # a client's first bytes, read before the pause took hold): delivered at the
            # link, impaired as if it had been read then
            effect = self.flow.effect(self.direction) if self.flow is not None else None
            self.queue.append((self._due(len(data), effect) if effect else 0.0, data))
            self._pause(True)
            return
        if not self.queue and self.relay.quiet:  # nothing impaired anywhere: the fast path
            self.peer.transport.write(data)
            return
        effect = self.flow.effect(self.direction)
        if effect is None and not self.queue:
            self.peer.transport.write(data)
            return
        self.queue.append((self._due(len(data), effect or Effect()), data))
        if len(self.queue) >= QUEUE_LIMIT:
            self._pause(True)
        self.flush()

    def eof_received(self) -> bool:
        self.eof = True
        self.flush()
        return True  # keep our side open until the peer closes (half-close passes through)

    def connection_lost(self, exc) -> None:
        self.relay.waiting.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return
        if exc is not None:
            reset(peer.transport)
        elif not self.queue:
            peer.transport.close()

    # delivering -----------------------------------------------------------------------------------
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

    def flush(self) -> None:
        """Deliver what is due unless the flow is held; come back when the next chunk is due or
        the impairments change."""
        self.timer = None
        if self.peer is None:
            return
        effect = self.flow.effect(self.direction)
        if effect is not None and (effect.hold or effect.loss >= 1.0):
            self.relay.waiting.add(self)
            self._pause(True)
            return
        self.relay.waiting.discard(self)
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            self.peer.transport.write(self.queue.popleft()[1])
        if self.queue:
            self.timer = asyncio.get_running_loop().call_later(self.queue[0][0] - now, self.flush)
            return
        self._pause(False)
        if self.eof and self.peer.transport.can_write_eof() and not self.peer.transport.is_closing():
            self.peer.transport.write_eof()

    def _pause(self, pause: bool) -> None:
        if pause != self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = pause
            (self.transport.pause_reading if pause else self.transport.resume_reading)()

    # back-pressure from the peer's transport ------------------------------------------------------
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._pause(True)

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.queue:
            self.peer._pause(False)


def reset(transport) -> None:
    """Close with SO_LINGER 0, so the other end gets RST instead of FIN (a reset passed on)."""
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    except OSError:
        pass
