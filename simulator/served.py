"""What the twin's TCP endpoints (HTTP, Modbus TCP) share per client connection.

Each endpoint keeps its open connections in a set, so that stopping it closes the keep-alive
clients too (or their transports outlive the event loop), and each connection has at most one
timer pending: the late answer of a ``slow`` fault, cancelled when the connection goes.
"""
from __future__ import annotations

import asyncio

__all__ = ["ServedConnection", "stop_serving"]


class ServedConnection(asyncio.Protocol):
    """Registers itself in ``open_set`` while connected; ``close()`` cancels the timer and closes."""

    __slots__ = ("_open_set", "transport", "_timer")

    def __init__(self, open_set: set) -> None:
        self._open_set = open_set
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._open_set.add(self)

    def connection_lost(self, exc) -> None:
        self._open_set.discard(self)
        self._cancel_timer()

    def close(self) -> None:
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def stop_serving(server: asyncio.AbstractServer | None, open_set: set) -> None:
    """Stop accepting and close every open client connection too (a keep-alive client's
    transport would otherwise outlive the event loop)."""
    if server:
        server.close()
        for conn in list(open_set):
            conn.close()
        await server.wait_closed()
        await asyncio.sleep(0)
