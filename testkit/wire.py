"""Raw TCP exchanges with a server under test: bytes in chosen segments, bytes back.

For wire-level tests of the twin's endpoints (HTTP, Modbus TCP): what a client sends is
exactly ``chunks`` (each its own segment, so a request can be cut anywhere), and what comes
back is read until a length, the server's close, or a pause.
"""
from __future__ import annotations

import asyncio

__all__ = ["exchange", "run_bounded"]


async def exchange(port: int, chunks: list[bytes], *, want: int | None = None, idle_s: float = 0.5,
                   eof: bool = False, host: str = "127.0.0.1") -> tuple[bytes, bool]:
    """Send ``chunks``, optionally half-close (``eof``), read until ``want`` bytes, the server's
    close, or ``idle_s`` of silence.  Returns (bytes received, whether the server closed)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
            await asyncio.sleep(0.01)
        if eof:
            writer.write_eof()
    except OSError:
        pass  # the server closed first (a refused request): what it sent is still read below
    out = b""
    closed = False
    try:
        while want is None or len(out) < want:
            data = await asyncio.wait_for(reader.read(65536), idle_s)
            if not data:
                closed = True
                break
            out += data
    except asyncio.TimeoutError:
        pass
    except ConnectionError:
        closed = True
    writer.close()
    return out, closed


def run_bounded(coro, timeout_s: float = 60.0):
    """``asyncio.run`` of ``coro``, bounded: a server that stops answering fails the test, not CI."""
    return asyncio.run(asyncio.wait_for(coro, timeout_s))
