"""collectors/deadline.py: a reply waiting in the socket when a late loop reaches the deadline is taken.

The loop is made late deterministically: the test blocks it (a thread event, then a
sleep past the deadline) while a server thread sends the reply, so the reply is in the
socket before the deadline and the loop finds both at once, as on a loaded collector.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from collectors.base import PollError
from collectors.deadline import deadline
from collectors.gpu.httpget import HttpGetter

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class _Server:
    """A loopback TCP server in a thread: reads one request, waits for ``go``, answers, sets ``sent``."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got, self.go, self.sent, self.done = (threading.Event() for _ in range(4))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.got.set()
            self.go.wait(10)
            if self.reply is not None:
                conn.sendall(self.reply)
            self.sent.set()
            self.done.wait(10)  # hold the connection open until the test is done

    def close(self) -> None:
        self.go.set()
        self.done.set()
        self.thread.join(5)
        self.sock.close()


async def _wait_for(event: threading.Event) -> None:
    for _ in range(1000):
        if event.is_set():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the server never got the request")


async def _read_reply(port: int, timeout_ctx, limit: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with timeout_ctx(limit):
            return await reader.readexactly(len(REPLY))
    finally:
        writer.close()


def _late_loop_run(timeout_ctx, reply: bytes | None = REPLY, limit: float = 0.3):
    """Send a request, block the loop until the reply is in the socket and the deadline has passed."""
    server = _Server(reply)

    async def go():
        task = asyncio.create_task(_read_reply(server.port, timeout_ctx, limit))
        await _wait_for(server.got)
        t0 = time.monotonic()
        server.go.set()
        assert server.sent.wait(10)
        time.sleep(max(0.0, limit + 0.2 - (time.monotonic() - t0)))  # the loop is late: past the deadline
        try:
            return await task
        except TimeoutError as exc:
            return exc

    try:
        return asyncio.run(asyncio.wait_for(go(), 20))
    finally:
        server.close()


def test_asyncio_timeout_throws_away_a_reply_that_came_in_time():
    """Why the module exists: the timer and the reply meet in one turn, and the timer wins."""
    assert isinstance(_late_loop_run(asyncio.timeout), TimeoutError)


def test_deadline_takes_the_reply_waiting_in_the_socket():
    assert _late_loop_run(deadline) == REPLY


def test_deadline_still_times_out_when_nothing_came():
    assert isinstance(_late_loop_run(deadline, reply=None), TimeoutError)


def test_deadline_bounds_an_idle_wait():
    async def go():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            async with deadline(0.05):
                await asyncio.sleep(5)
        return time.monotonic() - t0

    assert asyncio.run(go()) < 2.0


def test_an_outer_cancellation_stays_a_cancellation():
    """A stop (task.cancel from outside) inside a deadline is not turned into a timeout."""
    async def inner(started: asyncio.Event):
        async with deadline(5):
            started.set()
            await asyncio.sleep(5)

    async def go():
        started = asyncio.Event()
        task = asyncio.create_task(inner(started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(go()) is True


def test_httpget_takes_a_page_that_came_while_the_loop_was_late():
    """The DCGM/Redfish client: the page is returned, not a timeout, when the loop got to it late."""
    server = _Server(REPLY)

    async def go():
        http = HttpGetter()
        try:
            task = asyncio.create_task(http.get("127.0.0.1", server.port, "/metrics", 0.3))
            await _wait_for(server.got)
            t0 = time.monotonic()
            server.go.set()
            assert server.sent.wait(10)
            time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))
            try:
                return await task
            except PollError as exc:
                return exc
        finally:
            await http.close()

    try:
        assert asyncio.run(asyncio.wait_for(go(), 20)) == b"hello"
    finally:
        server.close()


def test_a_swallowed_cancellation_is_sent_again():
    """A body that swallows the deadline's cancellation (as 3.11's wait_for can) is cancelled again."""
    async def body(swallowed: list):
        async with deadline(0.05):
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                swallowed.append(True)  # swallowed: the body runs on to its next wait
            await asyncio.sleep(5)

    async def go():
        swallowed: list = []
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await body(swallowed)
        return swallowed, time.monotonic() - t0, asyncio.current_task().cancelling()

    swallowed, took, cancelling = asyncio.run(go())
    assert swallowed == [True]
    assert took < 4.0, "the second wait was cut short, not slept through"
    assert cancelling == 0, "every cancellation the deadline sent was taken back"
