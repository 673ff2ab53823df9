"""InfluxDB dies under a steady load and comes back: nothing lost, nothing twice.

Every sample the collectors produced (recorded by a consumer beside the writer)
must be in InfluxDB afterwards, counted by series and time.
"""
from __future__ import annotations

import asyncio
import os

from contract.sample import Sample
from dcim.service import CollectionService
from inventory import load_site_text
from sinks.influx_query import InfluxQuery
from sinks.influx_writer import InfluxConfig
from tests.reliability.conftest import RECORDING, site_yaml


def _key(measurement: str, tags: dict, time_ns: int) -> tuple:
    return measurement, tuple(sorted((k, v) for k, v in tags.items() if v)), time_ns


def test_influx_outage_loses_nothing_and_duplicates_nothing(pdu_agent, own_influx, tmp_path):
    influx_server, influx_db = own_influx   # its own server: this test stops it
    os.environ["REL_COMMUNITY"] = RECORDING
    site = load_site_text(site_yaml(pdu_agent.port), "rel.yaml")
    produced: list[Sample] = []
    state = {}

    async def run():
        cfg = InfluxConfig(url=influx_server.url, database=influx_db, flush_interval_s=0.2, spill_after_s=0.5,
                           max_backoff_s=0.5, spool_dir=str(tmp_path / "spool"))
        service = CollectionService(site, cfg)
        service.add_consumer(lambda samples: produced.extend(s for s in samples if s.measurement in ("pdu", "poll")))
        await service.start()
        await asyncio.sleep(1.5)
        influx_server.stop()                      # outage
        await asyncio.sleep(3.0)
        state["spooled"] = len(service.writer.spool)
        state["during_outage"] = sum(1 for s in produced if s.measurement == "poll")
        influx_server.start_same()               # back
        await asyncio.sleep(1.5)
        await service.stop()
        state["stats"] = service.writer.stats
        state["spool_left"] = len(service.writer.spool)

    asyncio.run(run())
    assert state["spooled"] > 0, "the outage should have filled the disk spool"
    assert state["spool_left"] == 0
    q = InfluxQuery(influx_server.url, influx_db)
    stored = set()
    for measurement in ("pdu", "poll"):
        for series in q.query(f'SELECT * FROM "{measurement}" GROUP BY *'):
            for row in series.rows():
                stored.add(_key(measurement, series.tags, row["time"]))
    want = {_key(s.measurement, s.tags, s.time_ns) for s in produced}
    assert len(want) == len(produced), "the collectors produced two samples of one series at one instant"
    missing = want - stored
    assert not missing, f"{len(missing)} of {len(want)} samples lost, e.g. {sorted(missing)[:3]}"
    assert stored == want  # and nothing extra
