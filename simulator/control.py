"""A small HTTP control API for a running twin: inject and clear faults.

Binds 127.0.0.1 by default (the project's HTTP endpoints never listen beyond
loopback unless told).  JSON in, JSON out:

- ``GET /faults``                      -> ``{"faults": [{"fault": F, "device": D}, ...], "known": [...]}``
- ``POST /faults {"fault": F, "device": D, "params": {...}}``   inject (400 with a reason for a bad
  fault/device/parameter); ``params`` is optional (e.g. ``{"pump": "1"}`` for ``cdu_pump_fail``)
- ``DELETE /faults {"fault": F, "device": D}`` clear
- ``GET /truth/DEVICE``                -> the model's power and values for one device (for checks)

Only the operator's own tools may drive it, not a web page open in a browser
on the same host (:func:`request_problem`): the ``Host`` header must name a
loopback address or ``localhost`` (no DNS rebinding), a request carrying an
``Origin`` other than a loopback one, or ``Sec-Fetch-Site: cross-site``, is
refused (403), and ``POST``/``DELETE`` need ``Content-Type: application/json``
(415), which a cross-origin page cannot send without a CORS preflight this
server never grants.

Parsing is a pure function (:func:`handle`) so it is tested without sockets.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from simulator.model import FAULTS

__all__ = ["ControlServer", "handle", "request_problem"]

log = logging.getLogger("dcim.twin.control")
MAX_BODY = 64 * 1024


def _loopback_host(host: str) -> bool:
    """``127.0.0.1:8080``, ``[::1]:80``, ``localhost`` -> True; anything else (a rebinding name) False."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def request_problem(method: str, headers: dict[str, str]) -> tuple[int, str] | None:
    """(status, reason) when a request must be refused before it is handled; None when it may go on.

    ``headers`` are lower-cased names.  See the module docstring for why.
    """
    if not _loopback_host(headers.get("host", "")):
        return 403, "Host must be a loopback address or localhost"
    origin = headers.get("origin")
    if origin is not None and (origin == "null" or not _loopback_host(urlsplit(origin).netloc)):
        return 403, "cross-origin requests are not accepted"
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return 403, "cross-origin requests are not accepted"
    if method in ("POST", "DELETE", "PUT", "PATCH"):
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 415, "Content-Type must be application/json"
    return None


def handle(twin: Any, method: str, path: str, body: bytes) -> tuple[int, dict]:
    """(status, JSON object) for one request against ``twin``."""
    if path == "/faults" and method == "GET":
        return 200, {"faults": [{"fault": f, "device": d, "params": twin.model.faults[(f, d)]} for f, d in sorted(twin.model.faults)],
                     "known": sorted(FAULTS)}
    if path == "/faults" and method in ("POST", "DELETE"):
        try:
            req = json.loads(body or b"{}")
            fault, device = req["fault"], req["device"]
            params = req.get("params") or {}
            if not isinstance(fault, str) or not isinstance(device, str) or not isinstance(params, dict):
                raise TypeError
            if not all(isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
                       for k, v in params.items()):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return 400, {"error": 'body must be JSON {"fault": NAME, "device": ID, "params": {NAME: VALUE}}'}
        try:
            if method == "POST":
                twin.inject(fault, device, **params)
            else:
                twin.clear(fault, device)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        log.info("fault %s %s on %s", "injected" if method == "POST" else "cleared", fault, device)
        return 200, {"fault": fault, "device": device, "active": twin.model.has(fault, device)}
    if path.startswith("/truth/") and method == "GET":
        device = path[len("/truth/"):]
        state = twin.model.state.get(device)
        if state is None:
            return 404, {"error": f"no device {device!r}"}
        values = {k: v for k, v in state.values.items() if isinstance(v, (int, float, bool, str))}
        return 200, {"device": device, "power_w": state.power_w, "input_w": state.input_w,
                     "energy_kwh": state.energy_kwh, "values": values}
    return 404, {"error": f"no route {method} {path}"}


class ControlServer:
    def __init__(self, twin: Any) -> None:
        self.twin = twin
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "ControlServer":
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            method, path, _ = request.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            for _ in range(100):
                line = await asyncio.wait_for(reader.readline(), 5)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            else:
                raise ValueError("too many headers")
            length = int(headers.get("content-length", "0"))
            refused = request_problem(method, headers)
            if refused is not None:
                status, obj = refused[0], {"error": refused[1]}
                log.warning("control request %s %s refused: %s", method, path[:80], refused[1])
            elif length > MAX_BODY or length < 0:
                status, obj = 413, {"error": "body too large"}
            else:
                body = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
                status, obj = handle(self.twin, method, path, body)
        except (ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            status, obj = 400, {"error": "bad request"}
        payload = json.dumps(obj).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + payload)
        try:
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass
