"""Real HTTP servers for the GPU collector tests (http.server in a thread, loopback only)."""
from __future__ import annotations

import gzip
import time
from http.server import BaseHTTPRequestHandler

import pytest

from testkit.http import ThreadedHttpServer


class PageServer(ThreadedHttpServer):
    """Serves byte pages by path with a chosen misbehaviour, and counts TCP connections.

    ``routes[path] = (mode, body)`` with mode one of ``length`` (Content-Length,
    keep-alive), ``chunked``, ``close`` (no length, body ends at close), ``gzip``,
    ``truncated`` (announces more bytes than it sends, then closes),
    ``slow`` (sleeps ``delay`` before replying), or an int HTTP status.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[object, bytes]] = {}
        self.connections = 0
        self.requests = 0
        self.delay = 2.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stalls

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server.requests += 1
                mode, body = server.routes.get(self.path, (404, b"not found\n"))
                if isinstance(mode, int):
                    self.send_response(mode)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if mode == "slow":
                    time.sleep(server.delay)
                    mode = "length"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                if mode == "length":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif mode == "gzip":
                    packed = gzip.compress(body)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(packed)))
                    self.end_headers()
                    self.wfile.write(packed)
                elif mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 1000):
                        piece = body[i:i + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                elif mode == "close":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                elif mode == "truncated":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    raise AssertionError(f"unknown mode {mode!r}")

        super().__init__(Handler, name="gpu-page-server")


@pytest.fixture()
def page_server():
    server = PageServer().start()
    yield server
    server.stop()
