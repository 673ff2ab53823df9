"""The scrape client against a raw asyncio server that sends exactly the bytes a test scripts."""
from __future__ import annotations

import asyncio

import pytest

from collectors.base import PollError
from collectors.gpu.httpget import HttpGetter

BODY = b'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 30\n'


async def _serve(replies: list[bytes], close_after_each: bool) -> tuple[asyncio.AbstractServer, dict]:
    """Answer the n-th request with replies[n] (the last one repeats); count connections."""
    stats = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                reply = replies[min(stats["requests"], len(replies) - 1)]
                stats["requests"] += 1
                writer.write(reply)
                await writer.drain()
                if close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, stats


def _run(replies: list[bytes], polls: int = 1, close_after_each: bool = False, max_body: int = 1 << 20):
    async def go():
        server, stats = await _serve(replies, close_after_each)
        port = server.sockets[0].getsockname()[1]
        http = HttpGetter(max_body)
        out = []
        try:
            for _ in range(polls):
                try:
                    out.append(await http.get("127.0.0.1", port, "/metrics", 2.0))
                except PollError as exc:
                    out.append(exc)
                await asyncio.sleep(0.05)  # let a closing server's FIN arrive, as between real polls
        finally:
            await http.close()
            server.close()
            await server.wait_closed()
        return out, stats
    return asyncio.run(asyncio.wait_for(go(), 20))


def _ok(body: bytes = BODY, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_server_closing_idle_keep_alive_connection_is_retried_fresh():
    out, stats = _run([_ok()], polls=3, close_after_each=True)
    assert out == [BODY] * 3 and stats["connections"] == 3 and stats["requests"] == 3


def test_http10_read_to_close_and_connection_close():
    out, stats = _run([b"HTTP/1.0 200 OK\r\n\r\n" + BODY], polls=2, close_after_each=True)
    assert out == [BODY, BODY] and stats["connections"] == 2


def test_chunked_with_extensions_and_trailers():
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5;name=x\r\nDCGM_\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(BODY) - 5, BODY[5:]))
    out, stats = _run([reply], polls=2)
    assert out == [BODY, BODY] and stats["connections"] == 1


@pytest.mark.parametrize("reply, words", [
    (b"SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP reply"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXY", "CRLF"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", "longer than 64 KiB"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", "gzip"),
    (_ok(b"x" * 5000), "exceeds"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", "headers"),
])
def test_garbled_replies_are_protocol_errors(reply, words):
    out, _ = _run([reply], close_after_each=True, max_body=4096)
    assert isinstance(out[0], PollError) and out[0].kind == "protocol" and words in out[0].message, out[0]


def _late_replies(script: list[tuple[str, float]], paths: tuple[str, ...] = ("/a", "/b"),
                  timeouts: tuple[float, ...] = (0.2, 0.2), wait_for_late: bool = True) -> tuple[list, dict]:
    """GETs of ``paths`` with ``timeouts``, against a server that answers the n-th request (over all
    connections) with ``reply n`` as ``script[n]`` says: ``("now", 0)``; ``("late", s)``, the whole
    reply ``s`` late; ``("split", s)``, the headers at once and the body ``s`` later.  With
    ``wait_for_late`` the second GET goes out once the first reply has been sent (at once if that
    one is never sent, or without it)."""
    async def go():
        stats = {"connections": 0, "requests": 0}
        sent = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stats["connections"] += 1
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    n = stats["requests"] = stats["requests"] + 1
                    how, wait = script[n - 1]
                    body = b"reply %d\n" % n
                    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                    if how == "late":
                        await asyncio.sleep(wait)
                    writer.write(head)
                    if how == "split":
                        await writer.drain()
                        await asyncio.sleep(wait)
                    writer.write(body)
                    await writer.drain()
                    if n == 1:
                        sent.set()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        http = HttpGetter()
        out = []
        try:
            for i, (path, timeout) in enumerate(zip(paths, timeouts)):
                try:
                    out.append(await http.get("127.0.0.1", port, path, timeout))
                except PollError as exc:
                    out.append(exc)
                if i == 0 and wait_for_late and script[0][1] < 60:
                    await asyncio.wait_for(sent.wait(), 5)
                    await asyncio.sleep(0.05)  # the late bytes reach the client's buffer
        finally:
            await http.close()
            server.close()
        return out, stats
    return asyncio.run(asyncio.wait_for(go(), 20))


def test_a_reply_that_comes_after_the_deadline_is_dropped_and_the_connection_kept():
    """Timed out before any of the reply came: the connection goes back to the pool owing the reply,
    and the next GET (another resource) drops that late reply and reads its own on the same connection."""
    out, stats = _late_replies([("late", 0.6), ("now", 0)])
    assert isinstance(out[0], PollError) and out[0].kind == "timeout"
    assert out[1] == b"reply 2\n"  # its own reply, not the late one
    assert stats == {"connections": 1, "requests": 2}


def test_the_retry_of_a_get_whose_reply_is_late_takes_that_reply_instead_of_asking_again():
    """A poll's retry right after the timeout: the late reply to the same GET is its answer; the slow
    server is asked once, on one connection, and the connection serves the next GET as usual."""
    out, stats = _late_replies([("late", 0.6), ("now", 0)], paths=("/metrics", "/metrics", "/metrics"),
                               timeouts=(0.2, 2.0, 2.0), wait_for_late=False)
    assert isinstance(out[0], PollError) and out[0].kind == "timeout"
    assert out[1:] == [b"reply 1\n", b"reply 2\n"]
    assert stats == {"connections": 1, "requests": 2}


def test_a_reply_still_owed_at_the_next_request_means_a_new_connection():
    out, stats = _late_replies([("late", 3600), ("now", 0)])
    assert isinstance(out[0], PollError) and out[0].kind == "timeout"
    assert out[1] == b"reply 2\n"
    assert stats == {"connections": 2, "requests": 2}


def test_a_reply_cut_off_by_the_deadline_after_it_began_closes_the_connection():
    """Part of the reply was read: the rest cannot be told from the next reply, so the connection goes."""
    out, stats = _late_replies([("split", 0.6), ("now", 0)], paths=("/metrics", "/metrics"), timeouts=(0.2, 2.0),
                               wait_for_late=False)
    assert isinstance(out[0], PollError) and out[0].kind == "timeout"
    assert out[1] == b"reply 2\n"
    assert stats == {"connections": 2, "requests": 2}


def test_a_reply_that_never_comes_is_waited_for_by_one_retry_not_by_every_request_after_it():
    """Three GETs of the same page, each right after the last timed out: the first retry waits for the
    late reply; the next, two timeouts after the request went out, asks again on a new connection."""
    out, stats = _late_replies([("late", 3600), ("now", 0)], paths=("/metrics",) * 3, timeouts=(0.2, 0.2, 0.2),
                               wait_for_late=False)
    assert [getattr(o, "kind", o) for o in out] == ["timeout", "timeout", b"reply 2\n"]
    assert stats == {"connections": 2, "requests": 2}
