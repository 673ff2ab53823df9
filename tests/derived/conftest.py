from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from inventory import load_site


@pytest.fixture(scope="module")
def site():
    """tests/derived/site_small.yaml: the small site whose derived numbers are computed by hand."""
    return load_site(Path(__file__).resolve().parent / "site_small.yaml")


@pytest.fixture()
def demo_secrets(monkeypatch):
    """The example site's credentials, as the demo sets them (the twin and the collectors read them)."""
    from dcim.demo import DEMO_SECRETS

    for k, v in DEMO_SECRETS.items():
        monkeypatch.setenv(k, v)


def poll_example_site(influx_server, db: str, at_s: float, consumers=(), faults=(), seed: int = 5) -> tuple:
    """Every device of the example site polled through its collector with the twin's model at
    ``at_s`` (two rounds: 15 min before and at ``at_s``), ``faults`` (fault, device) injected first,
    written to ``db`` through the real writer; (site, end ns). ``consumers``: site -> consumer."""
    from dcim.backfill import backfill
    from dcim.service import CollectionService
    from localservers.site import EXAMPLE_SITE, load_relocated
    from simulator.twin import Twin
    from sinks.influx_writer import InfluxConfig

    site = load_relocated(EXAMPLE_SITE)

    async def run() -> int:
        twin = Twin(site, seed=seed, clock=lambda: at_s - 900)
        for fault, device in faults:
            twin.model.inject(fault, device)
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
