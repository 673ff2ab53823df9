"""One InfluxDB database filled once per module by the real producers, nothing hand-written.

The digital twin serves every polled device of the Tétouan example on fresh
loopback ports (so parallel test runs do not collide with the inventory's
fixed ports or a demo).  First the demo's backfill (:mod:`dcim.backfill`)
moves the twin's model through the last three days, the collectors poll it,
the derived-metrics job computes and the rule engine evaluates at each
instant (with the backfill's history faults); then ~15 s of live polling
with faults injected into the twin (a UPS on battery, an XID storm, a chiller
trip), the derived job and the rule engine running beside.  So every panel
reads what the collectors, the derived job and the rule engine really write
through the real InfluxDB writer: energy counters, ``gpu`` samples from the
DCGM collector, ``alert`` points from the engine.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from localservers.site import load_relocated

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "inventory" / "examples" / "tetouan.yaml"
RULES = REPO / "alerts" / "rules" / "site.yaml"
SECRETS = {"DCIM_SNMP_COMMUNITY": "tetouan-demo", "DCIM_BMC_USER": "demo", "DCIM_BMC_PASSWORD": "demo-only-password"}
HISTORY_DAYS = 3
HISTORY_STEP_S = 6 * 3600.0
LIVE_S = 15.0
INTERVAL_S = 2.0
#: (seconds into the live part, action, fault, device)
LIVE_FAULTS = [
    (1.0, "inject", "ups_on_battery", "ups-1a"),
    (1.0, "inject", "xid_storm", "h1-r01-k02-n3"),
    (6.0, "inject", "chiller_trip", "chiller-1"),
    (8.0, "clear", "ups_on_battery", "ups-1a"),
    (10.0, "clear", "xid_storm", "h1-r01-k02-n3"),
]
_db = itertools.count(1)


@dataclass
class Filled:
    url: str
    db: str
    site: object
    start_ms: int  # the backfill's first instant
    live_ms: int   # when live polling began
    end_ms: int
    samples_written: int
    #: every event the rule engine emitted (history and live), as its listeners saw them
    events: list = field(default_factory=list)
    #: the backfill's last instant (ms) and the model's own meter counters (kWh) then
    history_end_ms: int = 0
    history_truth_kwh: dict = field(default_factory=dict)

    @property
    def from_ms(self) -> int:
        return self.start_ms


def _fill_tiers(url: str, db: str, start_ms: int, end_ms: int) -> None:
    """``dcim storage init`` and ``backfill``: the time-series panels read the tier for their span."""
    from sinks.influx_query import InfluxQuery
    from storage.admin import backfill, init
    from storage.tiers import RawTier, StorageConfig

    cfg = StorageConfig(raw=RawTier(retention="30d"))
    client = InfluxQuery(url, db, timeout_s=300)   # SELECT … INTO over the history: over 30 s at load ≈8 (as the demo allows)
    init(client, cfg)
    written = backfill(client, cfg, start_ms * 10**6, end_ms * 10**6, chunk_ns=7 * 86400 * 10**9)
    assert all(written.values()), written


@pytest.fixture(scope="module")
def filled(influx_server, tmp_path_factory) -> Filled:
    from alerts.runtime import AlertRuntime
    from dcim.backfill import backfill, history_faults
    from dcim.service import CollectionService
    from derived.job import DerivedMetrics
    from simulator.twin import Twin
    from sinks.influx_writer import InfluxConfig

    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)
    db = f"dash{next(_db)}"
    influx_server.create_database(db)
    site = load_relocated(SITE)
    site.defaults.interval_s = INTERVAL_S
    for dev in site.all_devices():
        if dev.interval_s:
            dev.interval_s = INTERVAL_S
    events: list[dict] = []
    history: dict = {}
    state_dir = tmp_path_factory.mktemp("alert-state")

    async def run() -> tuple[int, int, int, int]:
        now = time.time()
        start = (now - HISTORY_DAYS * 86400) // HISTORY_STEP_S * HISTORY_STEP_S
        twin = Twin(site, seed=7)
        twin.clock = lambda: start
        await twin.start()
        service = CollectionService(site, InfluxConfig(url=influx_server.url, database=db, api="v1"))
        writer = service.writer
        dm = DerivedMetrics(site)
        service.add_consumer(dm.consume)
        runtime = AlertRuntime(site, RULES, state_dir=state_dir, mqtt=None, influx_writer=writer)
        runtime.add_listener(events.append)
        service.add_consumer(runtime.consume)
        try:
            await service.start_writer()
            result = await backfill(twin, service, start, HISTORY_STEP_S, faults=history_faults(site, start, now),
                                    after_step=[lambda t: writer.write(dm.compute(t)), runtime.tick])
            history["end_ms"] = int(result.end_s * 1000)
            history["truth"] = {d.id: twin.truth(d.id).energy_kwh for d in site.all_devices() if d.kind == "meter"}
            live = time.time_ns()
            await service.start()
            timeline = list(LIVE_FAULTS)
            began = time.monotonic()
            next_compute = 0.0
            while (elapsed := time.monotonic() - began) < LIVE_S:
                while timeline and timeline[0][0] <= elapsed:
                    _, action, fault, device = timeline.pop(0)
                    getattr(twin, action)(fault, device)
                if elapsed >= next_compute:
                    next_compute += INTERVAL_S
                    writer.write(dm.compute(time.time_ns()))
                await runtime.tick()
                await asyncio.sleep(0.25)
        finally:
            await service.stop()
            await runtime.stop()
            await twin.stop()
        return int(start * 1000), live // 10**6, time.time_ns() // 10**6, writer.stats.points_written

    try:
        start_ms, live_ms, end_ms, written = asyncio.run(run())
        _fill_tiers(influx_server.url, db, start_ms, end_ms + 60_000)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Filled(influx_server.url, db, site, start_ms, live_ms, end_ms + 60_000, written, events,
                  history["end_ms"], history["truth"])
