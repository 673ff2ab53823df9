"""HTTP endpoints of the twin: DCGM exporter text (``/metrics``) and Redfish JSON.

One small asyncio HTTP/1.1 server per port with keep-alive and pipelining, an
``asyncio.Protocol`` that answers a request in the callback that received it;
pages are built from the model at request time (cheap: an 8-GPU page is ~90
lines of text, formatted by one ``%``).
The DCGM page has the exporter's metric names and labels (``gpu``, ``UUID``,
``device``, ``modelName``, ``Hostname``, and ``namespace``/``pod``/``container`` of
the job on the GPU, from :mod:`simulator.jobs`); power in W, energy in mJ.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import random
from itertools import chain
from typing import Callable

from simulator.model import DeviceState, GpuState
from simulator.served import ServedConnection, stop_serving

__all__ = ["dcgm_page", "redfish_resources", "HttpEndpoint"]

log = logging.getLogger("dcim.twin")

#: the exporter's metrics in page order: name, type, help text, and how a GPU's value is written
#: (a %-format: one ``%`` fills a whole page; see :func:`_gpu_values` for the values, same order)
_METRICS = (
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", "%.0f"),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", "%.0f"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", "%.3f"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", "%d"),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "%d"),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", "%d"),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", "%.0f"),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", "%d"),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", "%d"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", "%d"),
    # the model's bits (simulator/cooling.py): 0x20 SW / 0x40 HW thermal slowdown, 0x4 SW power cap
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.", "%d"),
)


def _gpu_values(g: GpuState) -> tuple:
    """One GPU's values in :data:`_METRICS` order, as the formats there expect them."""
    u = g.util
    return (g.temp_c, g.memory_temp_c, g.power_w, int(g.energy_mj), round(u * 100), round(u * 40), g.sm_clock_mhz,
            int(2000 + u * 70000), int(79000 - u * 70000), 79 if g.xid else 0, g.clock_reasons)


SESSIONS = "/redfish/v1/SessionService/Sessions"


def _uuid(node: str, i: int) -> str:
    h = hashlib.blake2b(f"{node}/{i}".encode(), digest_size=8).hexdigest()  # stable across runs
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-0000-{i:012d}"


@functools.lru_cache(maxsize=100_000)
def _page_format(node: str, n_gpus: int, model_name: str, work: tuple = ()) -> bytes:
    """The whole page with a %-placeholder per value, built once per node and set of workloads
    (``work[i]`` is GPU i's pod labels, as dcgm-exporter's Kubernetes mapping adds them).

    Metric-major, as the exporter writes it: a metric's HELP and TYPE, then its line for each GPU.
    Bytes, so the page needs no encoding per request; a ``%`` in a name or label is escaped."""
    work = work or ((),) * n_gpus
    labels = [(f'gpu="{i}",UUID="{_uuid(node, i)}",pci_bus_id="00000000:{0x53 + 0x11 * i:02X}:00.0",'
               f'device="nvidia{i}",modelName="{model_name}",Hostname="{node}"'
               + "".join(f',{k}="{v}"' for k, v in work[i])).replace("%", "%%") for i in range(n_gpus)]
    parts: list[str] = []
    for name, kind, help_text, fmt in _METRICS:
        parts.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".replace("%", "%%"))
        parts.extend(f"{name}{{{lab}}} {fmt}\n" for lab in labels)
    return "".join(parts).encode()


def dcgm_page(node: str, s: DeviceState, model_name: str = "NVIDIA H100 80GB HBM3") -> bytes:
    """The exporter's page for one node: its template (cached) filled by one ``%`` with every value.

    The twin's cost per scrape: per GPU one tuple of values, then the values transposed to the
    page's metric-major order, all formatting done by ``bytes %`` in C."""
    gpus = s.gpus
    template = _page_format(node, len(gpus), model_name, tuple([g.labels for g in gpus]))
    return template % tuple(chain.from_iterable(zip(*map(_gpu_values, gpus))))


def redfish_resources(node: str, s: DeviceState) -> dict[str, dict]:
    """The few Redfish resources a monitoring system reads (older Power and Thermal shapes)."""
    watts = round(s.power_w)
    psu = [{"MemberId": str(i), "Name": f"PSU{i + 1}", "PowerInputWatts": round(watts / 2 / 0.94 * 0.94),
            "PowerOutputWatts": round(watts / 2 * 0.94), "Status": {"Health": "OK", "State": "Enabled"}} for i in range(2)]
    return {
        "/redfish/v1": {"@odata.id": "/redfish/v1", "Chassis": {"@odata.id": "/redfish/v1/Chassis"}, "RedfishVersion": "1.15.0",
                        "SessionService": {"@odata.id": "/redfish/v1/SessionService"}, "Links": {"Sessions": {"@odata.id": SESSIONS}}},
        "/redfish/v1/SessionService": {"@odata.id": "/redfish/v1/SessionService", "Sessions": {"@odata.id": SESSIONS}},
        "/redfish/v1/Chassis": {"@odata.id": "/redfish/v1/Chassis", "Members": [{"@odata.id": "/redfish/v1/Chassis/1"}]},
        "/redfish/v1/Chassis/1": {"@odata.id": "/redfish/v1/Chassis/1", "Id": "1", "Name": node,
                                  "Power": {"@odata.id": "/redfish/v1/Chassis/1/Power"},
                                  "Thermal": {"@odata.id": "/redfish/v1/Chassis/1/Thermal"}},
        "/redfish/v1/Chassis/1/Power": {"@odata.id": "/redfish/v1/Chassis/1/Power",
                                        "PowerControl": [{"MemberId": "0", "PowerConsumedWatts": watts}],
                                        "PowerSupplies": psu},
        "/redfish/v1/Chassis/1/Thermal": {"@odata.id": "/redfish/v1/Chassis/1/Thermal",
                                          "Temperatures": [{"MemberId": "0", "Name": "Inlet", "ReadingCelsius": 24},
                                                           {"MemberId": "1", "Name": "Exhaust", "ReadingCelsius": 24 + round(watts / 800)}],
                                          "Fans": [{"MemberId": str(i), "Name": f"Fan{i + 1}", "Reading": 6000 + round(watts / 4),
                                                    "ReadingUnits": "RPM"} for i in range(4)]},
    }


#: request bounds: a head (request line and headers, with the blank line) over this is refused,
#: and so is a body (a Redfish login) over ``_BODY_LIMIT``; the connection is closed unanswered
_HEAD_LIMIT = 16384
_BODY_LIMIT = 65536


def _content_length(head: bytes) -> int | None:
    """The request's Content-Length (0 without one; the last one wins); None for one that is not a number."""
    length = 0
    for header in head.split(b"\r\n")[1:]:
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            if not value.strip().isascii():
                return None
            length = int(value.strip())
    return length


class HttpEndpoint:
    """GET-only HTTP/1.1 server; ``route(path)`` returns (content type, body) or None for 404.

    With ``sessions``, also a Redfish SessionService: ``POST`` to the sessions collection logs
    in (any credentials, ``X-Auth-Token`` and ``Location`` in the reply), ``DELETE`` of a
    session logs out.  ``behaviour()`` is asked once per request: ``ok``, ``no_answer`` (the
    connection stays open and silent), ``slow`` (the answer comes ``slow_s`` later) or
    ``garbage`` (random bytes, then the connection closes).
    """

    def __init__(self, route: Callable[[str], tuple[str, bytes] | None], behaviour: Callable[[], str] = lambda: "ok",
                 slow_s: float = 3.0, sessions: bool = False) -> None:
        self.route = route
        self.sessions = sessions  # Redfish SessionService login/logout
        self._session = 0
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.server: asyncio.AbstractServer | None = None
        self.requests = 0
        self._open: set[_HttpConnection] = set()

    async def start(self, host: str, port: int) -> "HttpEndpoint":
        self.server = await asyncio.get_running_loop().create_server(lambda: _HttpConnection(self), host, port)
        return self

    async def stop(self) -> None:
        await stop_serving(self.server, self._open)

    def answer(self, method: str, path: str) -> bytes:
        """The whole reply (status line, headers, body) to one request."""
        clean = path.split("?", 1)[0].rstrip("/") or "/"
        extra = ""
        if self.sessions and method == "POST" and clean == SESSIONS:
            self._session += 1
            sid = f"{SESSIONS}/{self._session}"
            status, ctype, body = "201 Created", "application/json", json.dumps({"@odata.id": sid, "Id": str(self._session)}).encode()
            extra = f"X-Auth-Token: twin-session-{self._session}\r\nLocation: {sid}\r\n"
        elif self.sessions and method == "DELETE" and clean.startswith(SESSIONS + "/"):
            status, ctype, body = "204 No Content", "application/json", b""
        else:
            found = self.route(clean) if method == "GET" else None
            if found is None:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            else:
                status, (ctype, body) = "200 OK", found
        return f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


class _HttpConnection(ServedConnection):
    """One client connection: requests parsed from a byte buffer as they arrive, answered in order.

    A protocol, not a ``StreamReader``/``StreamWriter`` pair with a task per connection: a request
    that has arrived is answered
    in the same callback, with no coroutine hop per request, which is most of what a poll costs
    the twin.  Pipelined requests wait in the buffer while one is slow or the client does not
    read (``pause_writing``); reading pauses when more than one whole request waits.
    """

    __slots__ = ("ep", "_buf", "_off", "_waiting", "_silent", "_write_paused", "_read_paused", "_eof")

    def __init__(self, ep: HttpEndpoint) -> None:
        super().__init__(ep._open)
        self.ep = ep
        self._buf = b""
        self._off = 0
        self._waiting = False  # a slow answer is due: later requests wait behind it
        self._silent = False  # no_answer: nothing more is answered on this connection
        self._write_paused = False
        self._read_paused = False
        self._eof = False

    # ---- protocol callbacks
    def data_received(self, data: bytes) -> None:
        if self._silent:
            return
        if self._off < len(self._buf):
            self._buf = self._buf[self._off:] + data
        else:
            self._buf = data
        self._off = 0
        self._serve()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._silent and not self._waiting and not self._write_paused:
            self.close()  # what is left is an unfinished request (answered ones are gone)
        return True  # half-open until what is due has been answered

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._serve()

    # ---- requests
    def _serve(self) -> None:
        """Answer every complete request in the buffer, in order, until one must wait."""
        while not (self._waiting or self._write_paused or self._silent) and not self.transport.is_closing():
            buf, off = self._buf, self._off
            end = buf.find(b"\r\n\r\n", off)
            if end < 0:
                if len(buf) - off >= _HEAD_LIMIT:
                    self.close()  # no end of head within the limit
                elif self._eof:
                    self.close()
                else:
                    self._flow()
                return
            end += 4
            if end - off > _HEAD_LIMIT:
                self.close()
                return
            head = buf[off:end]
            parts = head[:head.index(b"\r\n")].decode("latin-1").split(" ")
            if len(parts) != 3:
                self.close()
                return
            length = _content_length(head) if b"content-length" in head.lower() else 0
            if length is None or length > _BODY_LIMIT:
                self.close()
                return
            if len(buf) - end < length:
                if self._eof:
                    self.close()
                else:
                    self._flow()
                return  # the body (a login: any credentials do) has not all arrived
            self._off = end + length
            if not self._answer(parts[0], parts[1]):
                return
        if self.transport.is_closing():
            return
        if self._eof and not (self._waiting or self._silent or self._write_paused):
            self.close()
        else:
            self._flow()  # a slow answer or a client that does not read: later requests wait

    def _flow(self) -> None:
        """Pause reading while more than a whole request waits unanswered (bounded memory)."""
        waiting = len(self._buf) - self._off
        if not self._read_paused and waiting > _HEAD_LIMIT + _BODY_LIMIT:
            self._read_paused = True
            self.transport.pause_reading()
        elif self._read_paused and waiting <= _HEAD_LIMIT + _BODY_LIMIT:
            self._read_paused = False
            self.transport.resume_reading()

    def _answer(self, method: str, path: str) -> bool:
        """Answer one request as the endpoint's behaviour says; False when nothing more is served now."""
        ep = self.ep
        ep.requests += 1
        mode = ep.behaviour()
        if mode == "no_answer":
            self._silent = True
            self._buf, self._off = b"", 0
            return False
        if mode == "garbage":
            self.transport.write(random.randbytes(200))
            self.close()
            return False
        if mode == "slow":
            # one timer, not a sleeping task per request; the page is built when it is sent, as
            # a slow device's is: the values are those of the moment it answers
            self._waiting = True
            self._timer = asyncio.get_running_loop().call_later(ep.slow_s, self._late, method, path)
            self._flow()
            return False
        try:
            self.transport.write(ep.answer(method, path))
        except Exception:
            log.exception("twin HTTP endpoint: answering %s %s failed", method, path)
            self.close()
            return False
        return True

    def _late(self, method: str, path: str) -> None:
        self._timer = None
        self._waiting = False
        if self.transport.is_closing():
            return
        try:
            self.transport.write(self.ep.answer(method, path))
        except Exception:
            log.exception("twin HTTP endpoint: answering %s %s failed", method, path)
            self.close()
            return
        self._serve()


def json_body(obj: dict) -> tuple[str, bytes]:
    return "application/json", json.dumps(obj).encode()
