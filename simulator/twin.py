"""The digital twin: a real protocol endpoint for every polled device of a site.

``Twin(site)`` binds each device's inventory host/port on loopback: SNMP
agents for PDUs and UPSes, one Modbus TCP gateway per port for meters and the
cooling plant, HTTP for DCGM exporters and Redfish BMCs.  One
:class:`~simulator.model.SiteModel` drives them all and is stepped every
``refresh_s``; endpoints serve tables rebuilt at each step.  Faults are
injected into the model (physical faults) or into an endpoint's behaviour
(no answer, slow, garbage).

The model's time comes from ``clock`` (wall time by default).  The demo's
backfill sets it to instants in the past and polls the endpoints there, so
history is what the collectors decode from the same endpoints; its refresh
loop then steps to that same instant (no time passes, nothing is integrated).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Callable

from collectors.fdlimit import raise_open_file_limit
from collectors.modbus.profile import load_profile
from contract.protocols import PROTOCOLS
from inventory.model import Device, Site
from simulator.http_endpoints import HttpEndpoint, dcgm_page, json_body, redfish_resources
from simulator.mibs import pdu_oids, ups_oids
from simulator.modbus_server import ModbusGateway, UnitImage
from simulator.model import STEP_CHUNK, SiteModel
from simulator.redfish_cdu import cdu_resources
from simulator.registers import unit_image
from simulator.snmp_agent import OidTable, SnmpAgent
from simulator.traps import TrapSender

__all__ = ["Twin"]

log = logging.getLogger("dcim.twin")


class Twin:
    def __init__(self, site: Site, seed: int = 1, refresh_s: float = 1.0, community: str | None = None,
                 slow_s: float = 3.0, trap_to: tuple[str, int] | None = None,
                 clock: Callable[[], float] = time.time, devices: list[Device] | None = None) -> None:
        self.site = site
        #: the devices this twin serves (a shard of the site: one process cannot hold the full
        #: site's ≈52,700 sockets under a 20,000 open-file hard limit); the model runs the whole site
        self.devices = devices if devices is not None else site.polled_devices()
        self.clock = clock
        self.model = SiteModel(site, seed=seed)
        self.refresh_s = refresh_s
        #: GPU nodes the refresh loop steps between two yields to the event loop (SiteModel.step_iter)
        self.step_chunk = STEP_CHUNK
        self.slow_s = slow_s
        self.community = (community or os.environ.get("DCIM_SNMP_COMMUNITY", "public")).encode()
        self.started = time.time()
        self._version = 0
        self._tables: dict[str, tuple[int, OidTable]] = {}
        self._units: dict[tuple, tuple[int, UnitImage]] = {}
        self._cdu_pages: dict[str, tuple[int, dict[str, dict]]] = {}
        self._bmc_pages: dict[str, tuple[int, dict[str, tuple[str, bytes]]]] = {}
        self._gateway_units: dict[tuple[str, int], dict[int, Device]] = {}
        self._profiles = {}
        self._transports: list = []
        self._servers: list = []
        self._task: asyncio.Task | None = None
        self.endpoints: dict[str, object] = {}
        #: with ``trap_to``, UPS transfers to battery and back are announced as traps (simulator/traps.py)
        self.traps = TrapSender(trap_to, self.community) if trap_to else None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> "Twin":
        self.step()
        polled = self.devices
        # a listening socket per endpoint, and per HTTP endpoint its collector's keep-alive
        # connection: past the limit every accept fails (EMFILE) and asyncio retries each
        # listener every second, a storm that starves the twin (the full site needs 6 processes
        # under a 20,000 file limit, not the 3 its endpoint count alone suggests)
        http = sum(1 for dev in polled if PROTOCOLS[dev.protocol].family in ("dcgm", "redfish"))
        needed = len(polled) + http
        limit = raise_open_file_limit(needed)
        if limit < needed:
            log.warning("open-file limit %d is below the %d files this twin needs (%d endpoints, %d of them HTTP "
                        "with a keep-alive connection each): serve the site from more processes "
                        "(dcim simulate --shard i/N) or raise the limit (ulimit -n)", limit, needed, len(polled), http)
        loop = asyncio.get_running_loop()
        gateways: dict[tuple[str, int], list[Device]] = {}
        for dev in polled:
            host, port = dev.host or "127.0.0.1", dev.effective_port()
            row = PROTOCOLS[dev.protocol]  # which endpoint: the protocol's family (contract/protocols.py)
            if row.family == "snmp" and dev.kind in ("pdu", "ups"):
                agent = SnmpAgent(self.community, lambda d=dev.id: self._table(d), lambda d=dev.id: self._behaviour(d), self.slow_s)
                transport, _ = await loop.create_datagram_endpoint(lambda a=agent: a, local_addr=(host, port))
                self._transports.append(transport)
                self.endpoints[dev.id] = agent
            elif row.family == "modbus" and row.needs_host:
                gateways.setdefault((host, port), []).append(dev)
            elif row.family == "dcgm":
                ep = HttpEndpoint(lambda path, d=dev.id: self._dcgm(d, path), lambda d=dev.id: self._behaviour(d), self.slow_s)
                self._servers.append(await ep.start(host, port))
                self.endpoints[dev.id] = ep
            elif row.family == "redfish" and not row.tls:
                ep = HttpEndpoint(lambda path, d=dev.id: self._redfish(d, path), lambda d=dev.id: self._behaviour(d), self.slow_s,
                                  sessions=True)
                self._servers.append(await ep.start(host, port))
                self.endpoints[dev.id] = ep
            else:
                log.warning("twin has no endpoint for %s (%s, %s)", dev.id, dev.kind, dev.protocol)
        for (host, port), devs in gateways.items():
            units = {d.unit: d.id for d in devs}
            self._gateway_units[(host, port)] = {d.unit: d for d in devs if d.unit is not None}
            gw = ModbusGateway(lambda unit, key=(host, port): self._unit_image(key, unit),
                               lambda unit, u=units: self._behaviour(u.get(unit, "")), self.slow_s)
            self._servers.append(await gw.start(host, port))
            for d in devs:
                self.endpoints[d.id] = gw
        self._task = asyncio.create_task(self._refresh_loop(), name="twin-refresh")
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for t in self._transports:
            t.close()
        for s in self._servers:
            await s.stop()
        if self.traps is not None:
            self.traps.close()

    # -- faults --------------------------------------------------------------------
    def inject(self, fault: str, device: str, **params) -> None:
        was = self.model.has(fault, device)
        self.model.inject(fault, device, **params)
        self._invalidate()
        if fault == "ups_on_battery" and not was and self.traps is not None:
            self.step()  # the UPS has transferred before it says so: its agent already serves it
            dev, st = self.site.device(device), self.model.state[device]
            self.traps.ups_on_battery(dev.host or "127.0.0.1", time.time() - self.started,
                                      st.values.get("runtime_s", 600.0), st.values.get("on_battery_s", 0.0))

    def clear(self, fault: str, device: str) -> None:
        was = self.model.has(fault, device)
        self.model.clear(fault, device)
        self._invalidate()
        if fault == "ups_on_battery" and was and self.traps is not None:
            self.step()
            self.traps.ups_on_mains(self.site.device(device).host or "127.0.0.1", time.time() - self.started)

    def step(self, t: float | None = None) -> None:
        """Advance the model to ``clock()`` (or to ``t``) and serve the new values at once.

        Synchronous (fault injection, the control API, the demo's backfill): a chunked step of the
        refresh loop still in progress is finished first, then this one is done whole."""
        self.model.step(self.clock() if t is None else t)
        self._invalidate()

    def truth(self, device_id: str):
        return self.model.state[device_id]

    def _behaviour(self, device_id: str) -> str:
        return self.model.endpoint_behaviour(device_id)

    # -- tables --------------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        """Step the model every ``refresh_s``, a chunk of GPU nodes at a time.

        A full-site step is ≈1 s of CPU (several seconds of wall time on a loaded machine): done
        in one go, every endpoint of this process would stall meanwhile and its collectors time
        out.  Between chunks the loop answers requests; each device then serves either the last
        step's values or this one's.  The served tables go stale once, when the step is done (or
        when a synchronous :meth:`step` finished it first: its iterator then just stops).
        Cancelled between chunks (:meth:`stop`), the step stays pending in the model, and the
        next step of anyone finishes it before its own."""
        while True:
            await asyncio.sleep(self.refresh_s)
            for _ in self.model.step_iter(self.clock(), self.step_chunk):
                await asyncio.sleep(0)
            self._invalidate()

    def _invalidate(self) -> None:
        """Mark every served table stale; each is rebuilt when next asked for.

        Lazy because a device is polled once per interval (10 s) while the
        model steps every second: rebuilding every table on every step would
        make the twin cost as much CPU as the collectors polling it.
        """
        self._version += 1

    def _table(self, device_id: str) -> OidTable:
        cached = self._tables.get(device_id)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        dev = self.model.devices[device_id]
        s = self.model.state[device_id]
        uptime = time.time() - self.started
        previous = cached[1] if cached is not None else None
        if dev.kind == "pdu":
            table = OidTable(pdu_oids(dev.id, s, dev.rated_a or 32.0, uptime), previous)
        else:
            table = OidTable(ups_oids(dev.id, s, uptime), previous)
        self._tables[device_id] = (self._version, table)
        return table

    def _unit_image(self, key: tuple[str, int], unit: int) -> UnitImage | None:
        dev = self._gateway_units.get(key, {}).get(unit)
        if dev is None:
            return None
        cached = self._units.get((key, unit))
        if cached is not None and cached[0] == self._version:
            return cached[1]
        if dev.profile not in self._profiles:
            self._profiles[dev.profile] = load_profile(dev.profile)
        image = unit_image(dev, self.model.state[dev.id], self._profiles[dev.profile])
        self._units[(key, unit)] = (self._version, image)
        return image

    def _redfish_cdu(self, dev: Device, path: str):
        """A CDU's service from its loop model, built once per model step (a poll reads ~20 resources)."""
        cached = self._cdu_pages.get(dev.id)
        if cached is None or cached[0] != self._version:
            s = self.model.state[dev.id]
            cached = (self._version, cdu_resources(dev.id, s.cooling, s.power_w, s.energy_kwh, dev.vendor, dev.model))
            self._cdu_pages[dev.id] = cached
        resource = cached[1].get(path)
        return json_body(resource) if resource is not None else None

    def _dcgm(self, device_id: str, path: str):
        if path != "/metrics":
            return None
        dev = self.model.devices[device_id]
        return "text/plain; version=0.0.4", dcgm_page(device_id, self.model.state[device_id], dev.gpu_model or "NVIDIA H100 80GB HBM3")

    def _redfish(self, device_id: str, path: str):
        dev = self.model.devices[device_id]
        if dev.kind == "cdu":
            return self._redfish_cdu(dev, path)
        cached = self._bmc_pages.get(device_id)
        if cached is None or cached[0] != self._version:
            # a BMC walk reads five resources: build and encode them once per model step, not per request
            node = dev.labels.get("node", device_id)
            state = self.model.state.get(node, self.model.state[device_id])
            cached = (self._version, {p: json_body(r) for p, r in redfish_resources(node, state).items()})
            self._bmc_pages[device_id] = cached
        return cached[1].get(path)


