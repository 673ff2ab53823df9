"""The sharded site's derived job reads InfluxDB and computes what the in-process job computes.

The readings are what the collectors decode from the twin of the example site, written through
the real InfluxDB writer (the demo's backfill drives one or two polls of every device).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from contract.sample import Sample
from derived.from_influx import refresh_from_influx
from derived.job import DerivedMetrics
from sinks.influx_query import InfluxQuery


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    """The example site's credentials, as the demo sets them (the twin and the collectors read them)."""
    from dcim.demo import DEMO_SECRETS

    for k, v in DEMO_SECRETS.items():
        monkeypatch.setenv(k, v)


def _by_key(samples: list[Sample]) -> dict:
    return {s.key(): {k: v for k, v in s.fields.items()} for s in samples}


def _poll_site(influx_server, db: str, at_s: float, consumers=()) -> tuple:
    """Every device of the example site polled through its collector with the twin's model at
    ``at_s`` (two rounds: 15 min before and at ``at_s``), written to ``db``; (site, end ns)."""
    from dcim.backfill import backfill
    from dcim.service import CollectionService
    from simulator.twin import Twin
    from sinks.influx_writer import InfluxConfig
    from localservers.site import EXAMPLE_SITE, load_relocated

    site = load_relocated(EXAMPLE_SITE)

    async def run() -> int:
        twin = Twin(site, seed=5, clock=lambda: at_s - 900)
        await twin.start()
        service = CollectionService(site, InfluxConfig(url=influx_server.url, database=db, api="v1"))
        for c in consumers:
            service.add_consumer(c(site))
        try:
            await service.start_writer()
            result = await backfill(twin, service, at_s - 900, 900, wall_clock=lambda: at_s)
            assert result.failed_polls == 0 and result.rounds == 2
            assert await service.writer.flush(30)
        finally:
            await service.stop()
            await twin.stop()
        return int(result.end_s * 1e9)
    return site, asyncio.run(run())


def test_job_fed_from_influx_equals_job_fed_in_process(influx_server, influx_db):
    jobs: list[DerivedMetrics] = []

    def direct(site):
        jobs.append(DerivedMetrics(site))
        return jobs[-1].consume
    site, now = _poll_site(influx_server, influx_db, time.time(), consumers=[direct])
    from_db = DerivedMetrics(site)
    n = refresh_from_influx(from_db, InfluxQuery(influx_server.url, influx_db), now)
    assert n > 50
    expected, got = _by_key(jobs[0].compute(now)), _by_key(from_db.compute(now))
    assert got.keys() == expected.keys() and len(got) > 10
    for key, fields in expected.items():
        for name, value in fields.items():
            if isinstance(value, float):
                assert abs(got[key][name] - value) < 1e-6, (key, name)
            else:
                assert got[key][name] == value, (key, name)
    pue = [f for k, f in got.items() if k[0] == "pue" and ("hall", "h1") not in k[1]]
    assert pue and all(1.0 < p["pue"] < 3.0 for p in pue if "pue" in p)


def test_old_readings_are_missing_not_reused(influx_server, influx_db):
    site, _ = _poll_site(influx_server, influx_db, time.time() - 3600)  # an hour old: outside the window
    job = DerivedMetrics(site)
    assert refresh_from_influx(job, InfluxQuery(influx_server.url, influx_db), time.time_ns()) == 0
