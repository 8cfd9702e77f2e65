"""The relay's event loop: epoll, a timer heap and a wake-up pipe, in one thread.

Why not asyncio: the relay forwards every byte of the lab's data path, and at the shop's capacity
its CPU is taken from the shop. asyncio's transports and protocols cost a relayed round trip a
few times the CPU of a plain epoll loop (docs/lab-network.md, "What the relay costs"), so the
loop is this small one: level-triggered epoll, callbacks per file descriptor, timers, and
`call_soon_threadsafe` for the lab's other threads.
"""
import heapq
import itertools
import logging
import os
import select
import time
from collections import deque
from typing import Callable, Dict, List

log = logging.getLogger("woolab")
READ, WRITE = select.EPOLLIN, select.EPOLLOUT
TROUBLE = select.EPOLLERR | select.EPOLLHUP


class Timer:
    """A call planned for later; `cancel()` keeps it from running."""
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """Callbacks on file descriptors (`watch`), timers (`call_later`) and calls from other
    threads (`call_soon_threadsafe`). A callback that raises is logged; the loop goes on."""

    def __init__(self):
        self._epoll = select.epoll()
        self._handlers: Dict[int, Callable[[int], None]] = {}
        self._masks: Dict[int, int] = {}
        self._timers: List[tuple] = []
        self._order = itertools.count()
        self._calls: deque = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.watch(self._wake_read, READ, self._drain_wake)
        self._running = False
        self._closed = False

    # file descriptors -----------------------------------------------------------------------
    def watch(self, fd: int, mask: int, handler: Callable[[int], None]) -> None:
        """Call `handler(events)` while `fd` is ready for `mask`; a mask of 0 stops watching it
        (epoll would report a hang-up even then, so the descriptor leaves epoll)."""
        self._handlers[fd] = handler
        old = self._masks.get(fd)
        if mask == old:
            return
        if not mask:
            self.forget(fd)
            self._handlers[fd] = handler
        elif old is None:
            self._epoll.register(fd, mask)
            self._masks[fd] = mask
        else:
            self._epoll.modify(fd, mask)
            self._masks[fd] = mask

    def forget(self, fd: int) -> None:
        self._handlers.pop(fd, None)
        if self._masks.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    # timers and calls ------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(callback)
        heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay), next(self._order), timer))
        return timer

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        if self._closed:
            return  # the loop has ended: its wake-up pipe is gone
        self._calls.append(callback)
        try:
            os.write(self._wake_write, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (the loop wakes anyway) or closed (the loop has ended)

    def _drain_wake(self, _events: int) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # running ---------------------------------------------------------------------------------
    def run_forever(self) -> None:
        self._running = True
        try:
            while self._running:
                self._once()
        finally:
            self._closed = True
            self._epoll.close()
            os.close(self._wake_read)
            os.close(self._wake_write)

    def stop(self) -> None:
        """Ends `run_forever` after the current round (call it inside the loop)."""
        self._running = False

    def _once(self) -> None:
        timeout = -1.0
        if self._calls:
            timeout = 0.0
        elif self._timers:
            timeout = max(0.0, self._timers[0][0] - time.monotonic())
        try:
            ready = self._epoll.poll(timeout)
        except InterruptedError:
            ready = []
        for fd, events in ready:
            handler = self._handlers.get(fd)
            if handler is not None:
                self._call(handler, events)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._call(timer.callback)
        while self._calls:
            self._call(self._calls.popleft())

    @staticmethod
    def _call(callback, *args) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - one connection's bug must not stop the lab's data path
            log.exception("relay callback failed")
