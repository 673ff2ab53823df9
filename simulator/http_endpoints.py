"""HTTP endpoints of the twin: DCGM exporter text (``/metrics``) and Redfish JSON.

One small asyncio HTTP/1.1 server per port with keep-alive; pages are built
from the model at request time (cheap: an 8-GPU page is ~30 lines of text).
The DCGM page has the exporter's metric names and labels (``gpu``, ``UUID``,
``device``, ``modelName``, ``Hostname``, and ``namespace``/``pod``/``container`` of
the job on the GPU, from :mod:`simulator.jobs`); power in W, energy in mJ.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
from typing import Callable

from simulator.model import DeviceState

__all__ = ["dcgm_page", "redfish_resources", "HttpEndpoint"]

_METRICS = (
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda g: f"{g.temp_c:.0f}"),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", lambda g: f"{g.memory_temp_c:.0f}"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda g: f"{g.power_w:.3f}"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", lambda g: f"{int(g.energy_mj)}"),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda g: f"{round(g.util * 100)}"),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", lambda g: f"{round(g.util * 40)}"),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda g: f"{g.sm_clock_mhz:.0f}"),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", lambda g: f"{int(2000 + g.util * 70000)}"),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", lambda g: f"{int(79000 - g.util * 70000)}"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", lambda g: "79" if g.xid else "0"),
    # the model's bits (simulator/cooling.py): 0x20 SW / 0x40 HW thermal slowdown, 0x4 SW power cap
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.", lambda g: str(g.clock_reasons)),
)


SESSIONS = "/redfish/v1/SessionService/Sessions"


def _uuid(node: str, i: int) -> str:
    h = hashlib.blake2b(f"{node}/{i}".encode(), digest_size=8).hexdigest()  # stable across runs
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-0000-{i:012d}"


@functools.lru_cache(maxsize=100_000)
def _page_template(node: str, n_gpus: int, model_name: str,
                   work: tuple = ()) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per metric: its HELP/TYPE header and each GPU's ``NAME{labels} `` prefix (built once per node and
    set of workloads: ``work[i]`` is GPU i's pod labels, as dcgm-exporter's Kubernetes mapping adds them)."""
    work = work or ((),) * n_gpus
    labels = [(f'gpu="{i}",UUID="{_uuid(node, i)}",pci_bus_id="00000000:{0x53 + 0x11 * i:02X}:00.0",'
               f'device="nvidia{i}",modelName="{model_name}",Hostname="{node}"'
               + "".join(f',{k}="{v}"' for k, v in work[i])) for i in range(n_gpus)]
    return tuple((f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n", tuple(f"{name}{{{lab}}} " for lab in labels))
                 for name, kind, help_text, _ in _METRICS)


def dcgm_page(node: str, s: DeviceState, model_name: str = "NVIDIA H100 80GB HBM3") -> bytes:
    """The exporter's page for one node; only the values are formatted per request."""
    parts: list[str] = []
    gpus = s.gpus
    work = tuple(g.labels for g in gpus)
    for (header, prefixes), (_, _, _, fn) in zip(_page_template(node, len(gpus), model_name, work), _METRICS):
        parts.append(header)
        for prefix, g in zip(prefixes, gpus):
            parts.append(prefix + fn(g) + "\n")
    return "".join(parts).encode()


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


class HttpEndpoint:
    """GET-only HTTP/1.1 server; ``route(path)`` returns (content type, body) or None for 404."""

    def __init__(self, route: Callable[[str], tuple[str, bytes] | None], behaviour: Callable[[], str] = lambda: "ok",
                 slow_s: float = 3.0, sessions: bool = False) -> None:
        self.route = route
        self.sessions = sessions  # Redfish SessionService login/logout
        self._session = 0
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.server: asyncio.AbstractServer | None = None
        self.requests = 0
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> "HttpEndpoint":
        self.server = await asyncio.start_server(self._serve, host, port)
        return self

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            for w in list(self._open):  # keep-alive clients: close them too, or their handlers outlive the loop
                w.close()
            await self.server.wait_closed()
            await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if len(request) > 16384:
                    return
                line = request.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                if len(parts) != 3:
                    return
                method, path, _ = parts
                length = 0
                for header in request.split(b"\r\n")[1:]:
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length" and value.strip().isdigit():
                        length = int(value.strip())
                if length > 65536:
                    return
                if length:
                    await reader.readexactly(length)  # a login body: the twin accepts any credentials
                self.requests += 1
                mode = self.behaviour()
                if mode == "no_answer":
                    await asyncio.sleep(3600)
                if mode == "garbage":
                    writer.write(bytes(random.getrandbits(8) for _ in range(200)))
                    await writer.drain()
                    return
                if mode == "slow":
                    await asyncio.sleep(self.slow_s)
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
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()


def json_body(obj: dict) -> tuple[str, bytes]:
    return "application/json", json.dumps(obj).encode()
