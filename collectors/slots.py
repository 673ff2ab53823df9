"""A bound on polls in flight whose waiters cost O(1) to wake and to cancel.

Why not ``asyncio.Semaphore``: in Python 3.11 a waiter that leaves the queue,
granted or cancelled, is removed from the middle of a deque
(``_waiters.remove``, O(n)), and a release scans the queue from the front for
one not yet done.  With thousands of devices queued for a protocol's slots (a
loaded full-site shard) that is quadratic: at SIGTERM, cancelling the queued
devices spent 53 % of a shard's main thread for 9 s in ``Semaphore.acquire``
and ``_wake_up_next`` (py-spy), the time the stop was waiting for, and 5 % of
it while polling.

Here a released slot passes straight to the oldest waiter still waiting; a
cancelled waiter is not searched for but left in the queue, done, and skipped
when a release reaches it.  FIFO, like the semaphore: a device that has waited
longest polls first.
"""
from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """``async with slots:`` holds one of ``n`` slots while the body runs."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("at least one slot")
        self._free = n
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def free(self) -> int:
        return self._free

    def waiting(self) -> int:
        """Waiters still waiting (cancelled ones left in the queue not counted); O(n), for tests and stats."""
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self._free > 0:  # a free slot means no one is waiting (release hands slots to waiters first)
            self._free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a slot as it was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():  # skip the cancelled, left behind
                fut.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc) -> None:
        self.release()
