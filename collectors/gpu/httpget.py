"""A tiny asyncio HTTP/1.1 client with keep-alive, for exporter pages and Redfish BMCs.

Why not aiohttp/httpx: a scrape or a BMC walk needs a handful of verbs, a
path and strict failure classification (refused -> ``unreachable``, slow ->
``timeout``, short, garbled or oversized reply -> ``protocol``, TLS failure
-> ``auth``) more than it needs a general client, and at 43,000 nodes every
microsecond per request is CPU (bench/redfish_poll.py measures this client
against aiohttp on the same walk).  One idle connection is kept per endpoint:
an exporter or BMC is polled by one collector every few seconds, and reusing
the TCP (and TLS) connection saves a handshake and a socket per poll.

A request the deadline cancels before any of its reply has come keeps its
connection: it goes back to the pool owing that reply.  The poll's retry of
the same GET waits for that reply as its own instead of asking again (the
same resource, asked a moment earlier; a slow server is not sent the request
twice), until two of its timeouts after the request went out.  Any later request
drops the late reply if it has come in full (it has, an interval later, from
a server that is only slow) or opens a new connection if not: a reply that
never comes is waited for once, not by every poll after it.  On a loaded
full-site shard most failed polls were such timeouts, and closing their
connections made every next poll reconnect: opening and closing TCP
connections was ≈24 % of the shard's CPU (py-spy), on the collector and on
the device alike, which made more polls late.

The connection is an :class:`asyncio.Protocol` with its own byte buffer
(:class:`_Connection`), not a ``StreamReader``/``StreamWriter`` pair: a reply
that has arrived is read by slicing one buffer, with no coroutine hop per
header line.  Measured on bench/gpu_service.py (360 DCGM pages every 5 s, side
by side in one run) it cut the whole service path's CPU per page by ~10 %.

Handles ``Content-Length``, ``Transfer-Encoding: chunked`` and read-to-close
bodies, ``Content-Encoding: gzip``, and replies without a body (1xx, 204,
304, HEAD); bodies over ``max_body`` bytes are refused before they are read
whole, so a hostile endpoint cannot grow the collector's memory.  Redirects
are *not* followed here: :meth:`HttpGetter.request` returns them, and the
caller decides (the Redfish collector follows only same-origin ones).
"""
from __future__ import annotations

import asyncio
import ssl
import zlib
from dataclasses import dataclass

from collectors.base import PollError
from collectors.deadline import deadline

__all__ = ["HttpGetter", "HttpReply", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 8 * 1024 * 1024
_MAX_HEADERS = 100


class _Truncated(Exception):
    """The peer closed or sent garbage after the request went out."""


class _Pending(Exception):
    """An owed reply is not all there yet (:meth:`HttpGetter._settle` reads without waiting)."""


@dataclass(slots=True)
class HttpReply:
    """One reply: status, headers (names lower-cased) and the decoded body."""

    status: int
    headers: dict[str, str]
    body: bytes


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpGetter:
    """HTTP(S) requests with one pooled keep-alive connection per endpoint."""

    def __init__(self, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.max_body = max_body
        self._idle: dict[tuple, _Connection] = {}

    async def get(self, host: str, port: int, path: str, timeout_s: float) -> bytes:
        """The body of a 200 reply to a plain-HTTP GET; raises :class:`PollError` otherwise."""
        reply = await self.request("GET", host, port, path, timeout_s,
                                   headers="Accept: text/plain\r\nAccept-Encoding: gzip, identity\r\n")
        if reply.status != 200:
            kind = "auth" if reply.status in (401, 403) else "device"
            raise PollError(kind, f"http://{_hostport(host, port)}{path}: HTTP {reply.status}")
        return reply.body

    async def request(self, method: str, host: str, port: int, path: str, timeout_s: float, *,
                      headers: str = "", body: bytes = b"", tls: ssl.SSLContext | None = None) -> HttpReply:
        """Send one request and read its reply, whatever the status.

        ``headers`` is pre-formatted ``Name: value\\r\\n`` text (callers build it once
        per endpoint, not per request).  ``tls`` makes it HTTPS, with that context's
        verification.  Errors never include ``headers`` or the body (credentials).
        """
        where = f"{'https' if tls else 'http'}://{_hostport(host, port)}{path}"
        try:
            async with deadline(timeout_s):  # a reply that came in time is taken, however late the loop
                return await self._request(method, host, port, path, headers, body, tls, where, timeout_s)
        except TimeoutError:
            raise PollError("timeout", f"{where}: no complete reply within {timeout_s:g}s") from None

    async def _request(self, method: str, host: str, port: int, path: str, headers: str, body: bytes,
                       tls: ssl.SSLContext | None, where: str, timeout_s: float) -> HttpReply:
        key = (host, port, id(tls) if tls else None)
        loop = asyncio.get_running_loop()
        conn, awaited = self._pooled(key, method, path, body, loop.time() - 2 * timeout_s, where)
        reused = conn is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {_hostport(host, port)}\r\n{headers}"
                + (f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PUT", "PATCH") else "")
                + "Connection: keep-alive\r\n\r\n").encode("latin-1")
        while True:
            if conn is None:
                try:
                    _, conn = await loop.create_connection(lambda: _Connection(self.max_body), host, port, ssl=tls,
                                                           server_hostname=host if tls else None)
                except ssl.SSLError as exc:
                    raise PollError("auth", f"{where}: TLS handshake or certificate verification failed "
                                            f"({exc.reason or type(exc).__name__}); set ca_bundle, or tls_verify: false "
                                            f"for a lab device") from None
                except OSError as exc:  # refused, no route, DNS
                    raise PollError("unreachable", f"{where}: {exc.strerror or exc}") from None
            got_any = [False]
            try:
                if awaited:
                    sent_at, conn.owed, awaited = conn.owed[2], None, False
                else:
                    sent_at = loop.time()
                    conn.write(head + body if body else head)
                reply, keep = await self._read_reply(conn, method, where, got_any)
            except (_Truncated, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                conn.close()
                if reused and not got_any[0]:
                    # The server closed our idle keep-alive connection: retry once, fresh.
                    conn, reused = None, False
                    continue
                detail = str(exc) if isinstance(exc, _Truncated) else f"connection lost mid-reply ({type(exc).__name__})"
                raise PollError("protocol", f"{where}: {detail}") from None
            except asyncio.CancelledError:
                if not got_any[0] and not conn.eof and key not in self._idle:
                    # the deadline (or the stop) came before any of the reply: the connection
                    # stays, owing it, for a retry to take or the next request to drop (module docstring)
                    conn.owed = (method, path, sent_at)
                    self._idle[key] = conn
                else:
                    conn.close()
                raise
            except BaseException:
                conn.close()
                raise
            if keep and not conn.leftover() and key not in self._idle:
                self._idle[key] = conn
            else:
                conn.close()
            return reply

    def _pooled(self, key: tuple, method: str, path: str, body: bytes, since: float,
                where: str) -> tuple["_Connection | None", bool]:
        """The endpoint's idle connection, if it is usable, and whether the reply it owes is this
        request's: the retry of a GET sent after ``since`` whose reply is late (module docstring).
        Any other owed reply is dropped (:meth:`_settle`); a connection the server closed is closed."""
        conn = self._idle.pop(key, None)
        if conn is None:
            return None, False
        owed = conn.owed
        if owed is not None and owed[:2] == (method, path) and method in ("GET", "HEAD") and not body \
                and owed[2] > since:
            return conn, True  # even at eof: the reply may be in the buffer before the close
        if owed is not None:
            conn = self._settle(conn, where)
        if conn is not None and conn.eof:
            conn.close()  # the server closed it while it was idle: we know already
            conn = None
        return conn, False

    def _settle(self, conn: "_Connection", where: str) -> "_Connection | None":
        """``conn`` with the reply it owes read and dropped, if that reply is all there; else
        None (closed): a server still working on it, or one that sent something unusable.

        Reads without waiting (the connection's ``nowait``), so the coroutine below runs to
        its end in one step: a reply that has arrived needs no turn of the loop."""
        (method, _, _), conn.owed = conn.owed, None
        conn.nowait = True
        coro = self._read_reply(conn, method, where, [False], decode=False)
        try:
            coro.send(None)
        except StopIteration as done:
            keep = done.value[1]
        except (_Pending, _Truncated, PollError, ConnectionError, asyncio.IncompleteReadError, OSError):
            keep = False
        else:  # it awaited something other than the buffer: cannot happen, but never leave it half-read
            coro.close()
            keep = False
        finally:
            conn.nowait = False
        if keep and not conn.leftover():
            return conn
        conn.close()
        return None

    async def _read_reply(self, reader: "_Connection", method: str, where: str,
                          got_any: list[bool], decode: bool = True) -> tuple[HttpReply, bool]:
        """Read one reply; (reply, connection reusable?).  ``decode=False``: a body to drop, not gunzipped."""
        status_line = await reader.readline()
        if not status_line:
            raise _Truncated("connection closed before a reply")
        got_any[0] = True
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _Truncated(f"not an HTTP reply (starts {status_line[:8]!r})")  # a few bytes, never the body
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise _Truncated("connection closed inside the headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _Truncated(f"bad header line {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        else:
            raise _Truncated(f"more than {_MAX_HEADERS} headers")
        keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status < 200 or status in (204, 304) or method == "HEAD":
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunked(reader, where)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _Truncated(f"bad Content-Length {headers['content-length'][:30]!r}") from None
            if length > self.max_body:
                raise PollError("protocol", f"{where}: body of {length} bytes exceeds the {self.max_body} byte limit")
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                raise _Truncated(f"truncated body: {len(exc.partial)} of {length} bytes") from None
        else:
            body = await reader.read(self.max_body + 1)
            while len(body) <= self.max_body:
                more = await reader.read(self.max_body + 1 - len(body))
                if not more:
                    break
                body += more
            if len(body) > self.max_body:
                raise PollError("protocol", f"{where}: body exceeds the {self.max_body} byte limit")
            keep = False
        if decode and body and headers.get("content-encoding", "identity").lower() == "gzip":
            body = self._gunzip(body, where)
        return HttpReply(status, headers, body), keep

    async def _chunked(self, reader: "_Connection", where: str) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                raise _Truncated("truncated chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Truncated(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while True:  # trailers
                    trailer = await reader.readline()
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not trailer.endswith(b"\n"):
                        raise _Truncated("truncated chunked body (no final CRLF)")
            total += size
            if total > self.max_body:
                raise PollError("protocol", f"{where}: chunked body exceeds the {self.max_body} byte limit")
            try:
                chunks.append(await reader.readexactly(size))
                crlf = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise _Truncated(f"truncated chunked body after {total - size} bytes") from None
            if crlf != b"\r\n":
                raise _Truncated("chunk not followed by CRLF")

    def _gunzip(self, body: bytes, where: str) -> bytes:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(body, self.max_body + 1)
        except zlib.error as exc:
            raise PollError("protocol", f"{where}: bad gzip body ({exc})") from None
        if len(out) > self.max_body:
            raise PollError("protocol", f"{where}: gzip body inflates past the {self.max_body} byte limit")
        if not d.eof:
            raise PollError("protocol", f"{where}: truncated gzip body")
        return out

    async def close(self) -> None:
        idle, self._idle = self._idle, {}
        for conn in idle.values():
            conn.close()
        for conn in idle.values():
            await conn.wait_closed()


_LINE_LIMIT = 64 * 1024


class _Connection(asyncio.Protocol):
    """One HTTP connection: the transport, and what the peer sent that has not been read yet.

    ``readline``/``readexactly``/``read`` mirror ``asyncio.StreamReader``'s (a line ends
    with ``\\n``; at end of stream ``readline`` returns what is left and ``readexactly``
    raises ``IncompleteReadError``; a reset connection raises its error), but answer from
    the buffer without awaiting when the bytes are there, which is the usual case: a page
    arrives in one or two segments.  Reading pauses while more than a body limit plus a
    header block waits unread, so a peer that floods cannot grow memory past that.
    """

    def __init__(self, max_body: int) -> None:
        self._buf = bytearray()
        self._off = 0
        self._cap = max_body + 2 * _LINE_LIMIT
        self._paused = False
        self._waiter: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None
        self._exc: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self.eof = False
        #: (method, path, when it was sent) of a request whose reply has not been read; None when none is owed
        self.owed: tuple[str, str, float] | None = None
        #: read only what the buffer holds: waiting for more raises :class:`_Pending`
        self.nowait = False

    # ---- protocol callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        self._closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._paused and len(self._buf) - self._off > self._cap:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self._exc = exc
        self._wake()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    # ---- reading
    async def _more(self) -> None:
        """Wait for more bytes or the end of the stream."""
        if self.nowait:
            raise _Pending
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def _take(self, end: int) -> bytes:
        out = bytes(self._buf[self._off:end])
        self._off = end
        if end >= len(self._buf):
            self._buf.clear()
            self._off = 0
        return out

    def _at_end(self) -> None:
        """End of stream with too few bytes: a reset connection raises its error."""
        if self._exc is not None:
            raise self._exc

    async def readline(self) -> bytes:
        while True:
            i = self._buf.find(b"\n", self._off)
            if i >= 0:
                if i + 1 - self._off > _LINE_LIMIT:
                    raise _Truncated("header line longer than 64 KiB")
                return self._take(i + 1)
            if len(self._buf) - self._off > _LINE_LIMIT:
                raise _Truncated("header line longer than 64 KiB")
            if self.eof:
                self._at_end()
                return self._take(len(self._buf))
            await self._more()

    async def readexactly(self, n: int) -> bytes:
        while len(self._buf) - self._off < n:
            if self.eof:
                self._at_end()
                raise asyncio.IncompleteReadError(self._take(len(self._buf)), n)
            await self._more()
        return self._take(self._off + n)

    async def read(self, n: int) -> bytes:
        if len(self._buf) == self._off and not self.eof:
            await self._more()
        if len(self._buf) == self._off:
            self._at_end()
            return b""
        return self._take(min(len(self._buf), self._off + n))

    def leftover(self) -> bool:
        """Bytes beyond the reply (a server that sent more than it said): not reusable."""
        return len(self._buf) > self._off

    # ---- writing, closing
    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            except (OSError, RuntimeError):
                pass

    async def wait_closed(self) -> None:
        """Until ``connection_lost`` (which only ever sets a result: nothing to catch)."""
        if self._closed is not None:
            await self._closed
