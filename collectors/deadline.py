"""A poll's deadline that blames the device only for replies that did not come.

Why not ``asyncio.timeout``: on a loaded collector the event loop reaches a
timer late, often in the same turn in which it finds the device's reply
waiting in the socket.  asyncio runs that turn's I/O callbacks first (the
reply is read into the connection's buffer and the waiting task is woken,
for the *next* turn), then the expired timer, which cancels the task before
it can take the reply: a poll answered in time is reported as a timeout.  On
the full site at load average 8 that turned answered DCGM pages and SNMP
walks into "no complete reply" and down alerts for healthy devices.

:func:`deadline` defers the cancellation by one turn of the loop once the
timer fires.  A reply already received is taken first; a reply that has not
come is cancelled a few microseconds later than with ``asyncio.timeout``
when the loop is idle, so the bound holds.  Only a task woken directly by
what the I/O callback set (one hop, as the HTTP connection and the pollers
are written) gets the grace.

The cancellation is repeated (every :data:`RECANCEL_S`, at most
:data:`MAX_CANCELS` times) while the body runs on: Python 3.11's
``asyncio.wait_for`` (gufo-snmp waits for each reply with it) swallows a
cancellation that arrives just as its future completes, and a body cancelled
once would then go on to its next request with no deadline left.  On the full
site that left 810 SNMP device loops of one shard polling past their deadline.
"""
from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["Deadline", "deadline", "RECANCEL_S", "MAX_CANCELS"]

#: how soon a cancellation the body swallowed is sent again
RECANCEL_S = 0.05
#: cancellations sent before the body is left to finish (one that never yields cannot be stopped)
MAX_CANCELS = 20


class Deadline:
    """``async with deadline(s):`` raises :class:`TimeoutError` when the body runs past ``s`` seconds."""

    __slots__ = ("_delay", "_task", "_handle", "_cancels")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._task: asyncio.Task | None = None
        self._handle: asyncio.Handle | None = None
        self._cancels = 0

    async def __aenter__(self) -> "Deadline":
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("deadline() must be used inside a task")
        self._task = task
        self._handle = loop.call_at(loop.time() + self._delay, self._reached, loop)
        return self

    def _reached(self, loop: asyncio.AbstractEventLoop) -> None:
        # this turn's I/O callbacks ran before this timer: what they woke runs first in the next turn
        self._handle = loop.call_soon(self._cancel)

    def _cancel(self) -> None:
        assert self._task is not None
        self._handle = None
        if self._task.cancel():
            self._cancels += 1
            if self._cancels < MAX_CANCELS:  # sent again if the body swallows it and runs on
                self._handle = asyncio.get_running_loop().call_later(RECANCEL_S, self._cancel)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._cancels:
            assert self._task is not None
            left = 0
            for _ in range(self._cancels):  # take back this deadline's own cancellations
                left = self._task.uncancel()
            if left == 0 and exc_type is asyncio.CancelledError:
                raise TimeoutError
        return None

    def expired(self) -> bool:
        """Whether the deadline cancelled the body."""
        return self._cancels > 0


def deadline(delay: float) -> Deadline:
    """A deadline ``delay`` seconds from now (see the module docstring for how it differs from ``asyncio.timeout``)."""
    return Deadline(delay)
