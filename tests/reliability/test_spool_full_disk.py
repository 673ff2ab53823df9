"""A full or read-only spool disk while InfluxDB is down: loss counted, named, logged once; then recovery.

The spool lives on a private tmpfs filled to the last page; the real
CollectionService polls a recorded PDU while the session's influxd is
stopped.  What the writer reports dropped must be exactly what InfluxDB lacks
afterwards (by measurement); spooling resumes by itself once the disk has room;
and the service's ``writer`` samples, read back from InfluxDB after recovery,
state that same count (by reason: disk full) and that spooling is on again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter

from contract import writer as W
from contract.sample import Sample
from dcim.service import CollectionService
from inventory import load_site_text
from sinks.influx_query import InfluxQuery
from sinks.influx_writer import InfluxConfig, InfluxWriter
from sinks.lineprotocol import sample_line
from localservers.process import free_port
from testkit.tmpfs import Tmpfs
from tests.reliability.conftest import RECORDING, site_yaml


async def _until(cond, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline_s}s: {what}")
        await asyncio.sleep(0.05)


def _key(s: Sample) -> tuple:
    return s.measurement, tuple(sorted((k, v) for k, v in s.tags.items() if v)), s.time_ns


def test_full_disk_loss_is_exactly_what_was_reported(pdu_agent, own_influx, tmp_path, caplog):
    influx_server, influx_db = own_influx   # its own server: this test stops it
    caplog.set_level(logging.INFO, logger="dcim.influx")
    os.environ["REL_COMMUNITY"] = RECORDING
    site = load_site_text(site_yaml(pdu_agent.port, devices=1), "rel.yaml")
    produced: list[Sample] = []
    state: dict = {}
    with Tmpfs(tmp_path / "disk", size_kib=256) as disk:
        spool_dir = disk.path / "spool"
        spool_dir.mkdir()
        filler = disk.fill()

        async def run():
            cfg = InfluxConfig(url=influx_server.url, database=influx_db, flush_interval_s=0.2, spill_after_s=0.3,
                               max_backoff_s=0.3, spool_dir=str(spool_dir), max_memory_batches=3, spool_retry_s=0.3,
                               stats_interval_s=0.3)
            service = CollectionService(site, cfg)
            w = service.writer
            service.add_consumer(lambda samples: produced.extend(s for s in samples if sample_line(s, {})))
            await service.start()
            await _until(lambda: w.stats.points_written > 0, 20, "first points written")
            influx_server.stop()                                   # outage, and the spool's disk is full
            # the writer's own samples are batched too: wait until a device's poll points went
            await _until(lambda: w.stats.dropped_by_measurement.get("poll", 0) > 0, 30,
                         "poll points dropped on the full disk")
            state["tmp_during"] = list(spool_dir.glob("*.tmp"))
            filler.unlink()                                        # room again: spooling resumes by itself
            await _until(lambda: len(w.spool) > 0, 20, "batches spooled once the disk had room")
            influx_server.start_same()                             # back
            await _until(lambda: w.pending_points < 200 and len(w.spool) == 0, 30, "spool replayed")
            state["recovered_ns"] = time.time_ns()
            await _until(lambda: any(s.measurement == W.WRITER_MEASUREMENT and s.time_ns > state["recovered_ns"]
                                     for s in produced), 10, "a writer sample after recovery")
            await service.stop()
            state["stats"] = w.stats
            state["tmp_after"] = list(spool_dir.glob("*.tmp"))

        asyncio.run(run())
    stats = state["stats"]
    assert state["tmp_during"] == [] and state["tmp_after"] == [], "a failed write left a temporary file"
    q = InfluxQuery(influx_server.url, influx_db)
    stored: set = set()
    for m in {s.measurement for s in produced}:
        for series in q.query(f'SELECT * FROM "{m}" GROUP BY *'):
            stored.update((m, tuple(sorted((k, v) for k, v in series.tags.items() if v)), row["time"]) for row in series.rows())
    want = {_key(s) for s in produced}
    assert len(want) == len(produced)
    assert stored <= want, "InfluxDB holds points nobody produced"
    missing = Counter(m for m, _, _ in want - stored)
    assert stats.points_dropped > 0 and missing["poll"] > 0
    assert dict(missing) == stats.dropped_by_measurement, "the gap differs from what was reported dropped"
    assert sum(missing.values()) == stats.points_dropped
    text = [r.getMessage() for r in caplog.records]
    assert sum("unwritable (No space left on device): keeping" in t for t in text) == 1, "the reason is logged once"
    assert any(t.startswith("could not keep") and "poll" in t for t in text)
    assert sum("writable again" in t for t in text) == 1
    assert stats.restarts == 0
    # the writer samples: every drop was the full disk, each counted in exactly one sample produced
    mine = [s for s in produced if s.measurement == W.WRITER_MEASUREMENT]
    assert sum(s.fields[W.DROPPED] for s in mine) == stats.points_dropped
    assert sum(s.fields[W.dropped_field(W.DROP_DISK_FULL)] for s in mine) == stats.points_dropped
    assert stats.dropped_by_kind == {W.DROP_DISK_FULL: stats.points_dropped}
    assert any(not s.fields[W.SPOOLING] and s.fields[W.SPOOL_ERROR] == "No space left on device" for s in mine)
    # ... and what InfluxDB holds after recovery states exactly the gap
    after = [row for series in q.query(f'SELECT * FROM "{W.WRITER_MEASUREMENT}" WHERE time > {state["recovered_ns"]}')
             for row in series.rows()]
    assert after, "no writer sample stored after recovery"
    last = after[-1]
    assert last[W.DROPPED_TOTAL] == stats.points_dropped == sum(missing.values())
    assert last[W.SPOOLING] is True and last[W.SPOOL_ERROR] == ""
    stored_deltas = sum(row[W.DROPPED] for series in q.query(f'SELECT "{W.DROPPED}" FROM "{W.WRITER_MEASUREMENT}"')
                        for row in series.rows())
    lost_deltas = sum(s.fields[W.DROPPED] for s in mine if _key(s) in want - stored)
    assert stored_deltas + lost_deltas == stats.points_dropped


def test_read_only_spool_disk_drops_counted_then_resumes(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dcim.influx")
    with Tmpfs(tmp_path / "disk", size_kib=256) as disk:
        disk.read_only()
        spool_dir = disk.path / "spool"

        async def run():
            cfg = InfluxConfig(url=f"http://127.0.0.1:{free_port()}", api="v1", flush_interval_s=0.1, spill_after_s=0.0,
                               max_backoff_s=0.2, spool_dir=str(spool_dir), max_memory_batches=2, spool_retry_s=0.1,
                               batch_size=10)
            w = await InfluxWriter(cfg).start()          # nothing listens there: every send fails
            assert w.spool.error == "Read-only file system"
            for i in range(10):
                w.write([Sample("pdu", {"device": f"p{i}"}, {"power_w": float(j)}, j) for j in range(1, 11)])
                await asyncio.sleep(0.05)
            await _until(lambda: w.stats.points_dropped >= 50, 20, "drops on the read-only disk")
            state["down"] = w.status_sample({})
            disk.read_only(False)
            await _until(lambda: len(w.spool) > 0, 20, "spooled once the disk is writable")
            state["up"] = w.status_sample({})
            await w.close(0.5)
            return w

        state: dict = {}
        w = asyncio.run(run())
        kept = w.spool.points
    assert w.stats.points_queued == 100
    assert w.stats.points_dropped + kept == 100, (w.stats.points_dropped, kept)
    assert w.stats.dropped_by_measurement == {"pdu": w.stats.points_dropped}
    assert sum("unwritable (Read-only file system): keeping" in r.getMessage() for r in caplog.records) == 1
    down, up = state["down"].fields, state["up"].fields
    assert down[W.dropped_field(W.DROP_READ_ONLY)] == down[W.DROPPED] == down[W.DROPPED_TOTAL] >= 50
    assert not down[W.SPOOLING] and down[W.SPOOL_ERROR] == "Read-only file system" and down[W.SPOOL_POINTS] == 0
    assert up[W.SPOOLING] and up[W.SPOOL_POINTS] > 0 and up[W.SPOOL_BYTES] > 0
    # since the previous sample: what was dropped between the two, and only that
    assert up[W.DROPPED] == up[W.DROPPED_TOTAL] - down[W.DROPPED_TOTAL]
