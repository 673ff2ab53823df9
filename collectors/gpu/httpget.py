"""A tiny asyncio HTTP/1.1 client with keep-alive, for exporter pages and Redfish BMCs.

Why not aiohttp/httpx: a scrape or a BMC walk needs a handful of verbs, a
path and strict failure classification (refused -> ``unreachable``, slow ->
``timeout``, short, garbled or oversized reply -> ``protocol``, TLS failure
-> ``auth``) more than it needs a general client, and at 43,000 nodes every
microsecond per request is CPU (bench/redfish_poll.py measures this client
against aiohttp on the same walk).  One idle connection is kept per endpoint:
an exporter or BMC is polled by one collector every few seconds, and reusing
the TCP (and TLS) connection saves a handshake and a socket per poll.

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

__all__ = ["HttpGetter", "HttpReply", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 8 * 1024 * 1024
_MAX_HEADERS = 100


class _Truncated(Exception):
    """The peer closed or sent garbage after the request went out."""


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
        self._idle: dict[tuple, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

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
            async with asyncio.timeout(timeout_s):
                return await self._request(method, host, port, path, headers, body, tls, where)
        except TimeoutError:
            raise PollError("timeout", f"{where}: no complete reply within {timeout_s:g}s") from None

    async def _request(self, method: str, host: str, port: int, path: str, headers: str, body: bytes,
                       tls: ssl.SSLContext | None, where: str) -> HttpReply:
        key = (host, port, id(tls) if tls else None)
        conn = self._idle.pop(key, None)
        reused = conn is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {_hostport(host, port)}\r\n{headers}"
                + (f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PUT", "PATCH") else "")
                + "Connection: keep-alive\r\n\r\n").encode("latin-1")
        while True:
            if conn is None:
                try:
                    conn = await asyncio.open_connection(host, port, limit=64 * 1024, ssl=tls,
                                                         server_hostname=host if tls else None)
                except ssl.SSLError as exc:
                    raise PollError("auth", f"{where}: TLS handshake or certificate verification failed "
                                            f"({exc.reason or type(exc).__name__}); set ca_bundle, or tls_verify: false "
                                            f"for a lab device") from None
                except OSError as exc:  # refused, no route, DNS
                    raise PollError("unreachable", f"{where}: {exc.strerror or exc}") from None
            reader, writer = conn
            got_any = [False]
            try:
                writer.write(head + body if body else head)
                reply, keep = await self._read_reply(reader, method, where, got_any)
            except (_Truncated, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                _close(writer)
                if reused and not got_any[0]:
                    # The server closed our idle keep-alive connection: retry once, fresh.
                    conn, reused = None, False
                    continue
                detail = str(exc) if isinstance(exc, _Truncated) else f"connection lost mid-reply ({type(exc).__name__})"
                raise PollError("protocol", f"{where}: {detail}") from None
            except BaseException:
                _close(writer)
                raise
            if keep and key not in self._idle:
                self._idle[key] = (reader, writer)
            else:
                _close(writer)
            return reply

    async def _read_reply(self, reader: asyncio.StreamReader, method: str, where: str,
                          got_any: list[bool]) -> tuple[HttpReply, bool]:
        """Read one reply; (reply, connection reusable?)."""
        status_line = await _line(reader)
        if not status_line:
            raise _Truncated("connection closed before a reply")
        got_any[0] = True
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _Truncated(f"not an HTTP reply (starts {status_line[:8]!r})")  # a few bytes, never the body
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = await _line(reader)
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
        if body and headers.get("content-encoding", "identity").lower() == "gzip":
            body = self._gunzip(body, where)
        return HttpReply(status, headers, body), keep

    async def _chunked(self, reader: asyncio.StreamReader, where: str) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = await _line(reader)
            if not line.endswith(b"\n"):
                raise _Truncated("truncated chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Truncated(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while True:  # trailers
                    trailer = await _line(reader)
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
        for _, writer in idle.values():
            _close(writer)
        for _, writer in idle.values():
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError, ssl.SSLError):
                pass


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise _Truncated("header line longer than 64 KiB") from None


def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except (OSError, RuntimeError):
        pass
