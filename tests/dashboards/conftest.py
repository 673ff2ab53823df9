"""One InfluxDB database filled once per module by the real pipeline.

The digital twin serves every polled device of the Tétouan example on fresh
loopback ports (so parallel test runs do not collide on the inventory's fixed
ports), the collectors poll it for ~15 s, the derived-metrics job writes
``site_power``/``pue``/``capacity``, and a few kinds of data the twin cannot
produce are written directly as line protocol and say so below:

* ``alert`` events: the real rule engine fed a UPS going on battery and back
  and a chiller trip, its events written as ``contract.alert_event.alert_point``
  (the same points the running system writes);
* ``gpu`` samples (the DCGM/Redfish collectors land separately), fed to the
  derived job as well so IT category 3 is computed from them;
* chiller/CDU ``power_w`` (the simulated chiller profile exposes no electrical
  power), also fed to the derived job, so pPUE(cooling) exists;
* three days of hourly ``energy_kwh`` history for the energy meters, ending
  where the twin's counters then continue (the twin's counters are set to the
  last history value), because a daily ``difference(last(energy_kwh))`` needs
  more than one day.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.sample import Sample, now_ns
from inventory import load_site
from sinks.lineprotocol import samples_to_lines
from testkit.process import free_port

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "inventory" / "examples" / "tetouan.yaml"
SECRETS = {"DCIM_SNMP_COMMUNITY": "tetouan-demo", "DCIM_BMC_USER": "demo", "DCIM_BMC_PASSWORD": "demo-only-password"}
FILL_S = 15.0
HISTORY_H = 72
_db = itertools.count(1)


@dataclass
class Filled:
    url: str
    db: str
    site: object
    start_ms: int
    end_ms: int
    samples_written: int

    @property
    def from_ms(self) -> int:
        return self.start_ms - (HISTORY_H + 2) * 3_600_000


def _repoint_ports(site) -> None:
    """Give every endpoint a fresh free port, keeping devices that share a port together."""
    mapping: dict[tuple[str, int], int] = {}
    for dev in site.polled_devices():
        key = (dev.protocol, dev.effective_port())
        if key not in mapping:
            kind = socket.SOCK_DGRAM if dev.protocol == "snmp" else socket.SOCK_STREAM
            mapping[key] = free_port(kind)
        dev.port = mapping[key]


def _post(url: str, db: str, lines: list[str]) -> None:
    req = urllib.request.Request(f"{url}/write?db={db}&precision=ns", data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204, resp.read()


def _gpu_samples(site, t: int, k: int) -> list[Sample]:
    out = []
    for dev in site.all_devices():
        if dev.kind != "gpu_node":
            continue
        for i in range(dev.gpus or 0):
            tags = {**{k2: v for k2, v in site.location_tags(dev).items() if k2 != "kind"}, "host": dev.id,
                    "gpu": str(i), "uuid": f"GPU-{dev.id}-{i}"}
            xid = 79 if (dev.id.endswith("k02-n3") and i == 5) else 0  # integers, as the DCGM collector writes them
            out.append(Sample("gpu", tags, {"power_w": 600.0 + 10 * i + k, "temp_c": 60.0 + i + k % 3,
                                            "util_pct": 90.0, "xid_last": xid,
                                            "clock_event_reasons": 4 if i == 7 else 0}, t))
    return out


def _cooling_power(site, t: int) -> list[Sample]:
    watts = {"chiller": 180_000.0, "cdu": 12_000.0, "crah": 4_000.0}
    return [Sample(d.kind, {k: v for k, v in site.location_tags(d).items() if k != "kind"},
                   {"power_w": watts[d.kind]}, t)
            for d in site.all_devices() if d.kind in watts]


_ALERT_RULES = """
rules:
  - {name: ups_on_battery, measurement: ups, field: state, op: "==", threshold: battery, severity: critical,
     annotations: {summary: "UPS {device} on battery"}}
  - {name: chiller_trip, measurement: chiller, field: running, op: "==", threshold: false, severity: major,
     annotations: {summary: "{device} tripped"}}
"""


def _alerts(site, t: int) -> list[str]:
    """The rule engine's ``alert`` points for: ups-1a on battery, back on mains 5 s later; chiller-1 trips."""
    from alerts.evaluate import Engine
    from alerts.rules import load_rules_text
    from contract.alert_event import alert_point

    def tags(device: str) -> dict[str, str]:
        return {k: v for k, v in site.location_tags(site.device(device)).items() if k != "kind"}

    engine = Engine(load_rules_text(_ALERT_RULES))
    events = engine.observe([Sample("ups", {**tags("ups-1a"), "stage": "output"}, {"state": "battery"}, t)])
    events += engine.observe([Sample("ups", {**tags("ups-1a"), "stage": "output"}, {"state": "normal"}, t + 5 * 10**9)])
    events += engine.observe([Sample("chiller", tags("chiller-1"), {"running": False}, t + 6 * 10**9)])
    assert [e["state"] for e in events] == ["firing", "resolved", "firing"], events
    return samples_to_lines([alert_point(e) for e in events])


def _energy_history(site, twin, start_ns: int) -> list[str]:
    """Hourly counters before ``start_ns`` at each meter's present power; the twin continues from them."""
    lines = []
    for dev in site.all_devices():
        if dev.kind != "meter" or dev.meter is None or dev.meter.role not in ("boundary", "it", "renewable"):
            continue
        state = twin.truth(dev.id)
        kw = max(getattr(state, "power_w", 0.0), 0.0) / 1000.0
        base = 50_000.0
        tags = {k: v for k, v in site.location_tags(dev).items() if k != "kind"}
        lines += samples_to_lines(
            Sample("meter", tags, {"energy_kwh": base + kw * h}, start_ns - (HISTORY_H + 1 - h) * 3_600 * 10**9)
            for h in range(HISTORY_H + 1))
        state.energy_kwh = base + kw * (HISTORY_H + 1)
    return lines


@pytest.fixture(scope="module")
def filled(influx_server) -> Filled:
    from dcim.service import CollectionService
    from derived.job import DerivedMetrics
    from simulator.twin import Twin
    from sinks.influx_writer import InfluxConfig

    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)
    db = f"dash{next(_db)}"
    influx_server.create_database(db)
    site = load_site(SITE)
    site.defaults.interval_s = 2.0
    for dev in site.all_devices():
        if dev.interval_s:
            dev.interval_s = 2.0
    _repoint_ports(site)
    written = 0

    async def run() -> tuple[int, int]:
        nonlocal written
        twin = await Twin(site, seed=7).start()
        service = CollectionService(site, InfluxConfig(url=influx_server.url, database=db, api="v1"))
        dm = DerivedMetrics(site)
        service.add_consumer(dm.consume)
        start = now_ns()
        history = _energy_history(site, twin, start)
        try:
            await service.start()
            _post(influx_server.url, db, history + _alerts(site, start))
            deadline = time.monotonic() + FILL_S
            k = 0
            while time.monotonic() < deadline:
                await asyncio.sleep(2.0)
                t = now_ns()
                direct = _gpu_samples(site, t, k) + _cooling_power(site, t)
                dm.consume(direct)
                service.writer.write(direct)
                derived = dm.compute(t)
                service.writer.write(derived)
                written += len(direct) + len(derived)
                k += 1
        finally:
            await service.stop()
            await twin.stop()
        written += service.writer.stats.points_written
        return start, now_ns()

    try:
        start, end = asyncio.run(run())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Filled(influx_server.url, db, site, start // 10**6, end // 10**6 + 60_000, written)
