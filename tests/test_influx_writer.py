"""The writer against a real influxd: both APIs, escaping, batching, outages."""
from __future__ import annotations

import asyncio
import gzip

import pytest

from contract.sample import Sample
from inventory.secrets import SecretValue
from sinks.influx_query import InfluxQuery
from sinks.influx_transport import V1Transport, WriteFailed, detect_api
from sinks.influx_writer import InfluxConfig, InfluxWriter


def _samples(n: int, t0: int = 1_700_000_000_000_000_000) -> list[Sample]:
    return [
        Sample("pdu", {"device": f"pdu-{i % 7}", "phase": "L1", "rack": "r 1,a=b"},
               {"current_a": i * 0.5, "ok": i % 2 == 0, "count": i, "state": 'on "x" \\'}, t0 + i * 1000)
        for i in range(n)
    ]


def _count(influx_server, db: str, measurement: str = "pdu") -> int:
    body = influx_server.query(f'SELECT count("current_a") FROM "{measurement}"', db=db)
    series = body["results"][0].get("series")
    return series[0]["values"][0][1] if series else 0


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_round_trip_values_and_escaping(influx_server, influx_db, v2_front, api, caplog):
    caplog.set_level("INFO", logger="dcim.influx")
    url = influx_server.url if api == "v1" else v2_front.url

    async def run():
        w = await InfluxWriter(InfluxConfig(url=url, database=influx_db, api="auto", batch_size=100)).start()
        w.write(_samples(250))
        assert await w.flush(20)
        await w.close()
        return w

    w = asyncio.run(run())
    assert w.stats.api == api  # /ping picked the API: 1.6 -> v1, the 1.8 front -> v2
    assert w.stats.points_written == 250 and w.stats.batches_written == 3
    # once, for the first of the three batches: the sign in the log that data flows
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("first batch")] == \
        ["first batch written to InfluxDB: 100 points"]
    q = InfluxQuery(influx_server.url, influx_db)
    rows = q.query('SELECT * FROM "pdu" WHERE "device" = \'pdu-3\' ORDER BY time')[0].rows()
    expected = [s for s in _samples(250) if s.tags["device"] == "pdu-3"]
    assert len(rows) == len(expected)
    for row, s in zip(rows, expected):
        assert row["time"] == s.time_ns
        assert row["current_a"] == pytest.approx(s.fields["current_a"])
        assert row["ok"] is s.fields["ok"]
        assert row["count"] == s.fields["count"]
        assert row["state"] == s.fields["state"]
        assert row["rack"] == "r 1,a=b"
    if api == "v2":
        writes = [r for r in v2_front.requests if r[1].startswith("/api/v2/write")]
        assert writes and all(h.get("Content-Encoding") == "gzip" for _, _, h in writes)


def test_nan_and_inf_fields_are_dropped_not_fatal(influx_server, influx_db):
    async def run():
        w = await InfluxWriter(InfluxConfig(url=influx_server.url, database=influx_db, api="v1")).start()
        w.write([Sample("ups", {"device": "u"}, {"load_pct": float("nan"), "power_w": 10.0}, 1),
                 Sample("ups", {"device": "u"}, {"load_pct": float("inf")}, 2)])
        assert await w.flush(10)
        await w.close()
        return w

    w = asyncio.run(run())
    assert w.stats.points_written == 1 and w.stats.points_skipped == 1
    body = influx_server.query('SELECT * FROM "ups"', db=influx_db)
    values = body["results"][0]["series"][0]["values"]
    assert len(values) == 1


def test_bad_batch_is_a_clear_4xx_error_not_a_retry_loop(influx_server, influx_db):
    t = V1Transport(influx_server.url, influx_db)
    with pytest.raises(WriteFailed) as err:
        t.send(gzip.compress(b"pdu,device=x current_a=notanumber 1\n"))
    assert err.value.status == 400 and err.value.retry is False


def test_missing_database_is_not_retryable(influx_server):
    t = V1Transport(influx_server.url, "no_such_db")
    with pytest.raises(WriteFailed) as err:
        t.send(gzip.compress(b"pdu,device=x current_a=1 1\n"))
    assert err.value.status == 404 and not err.value.retry


def test_unreachable_influx_is_retryable_and_never_leaks_the_token():
    from localservers.process import free_port

    t = V1Transport(f"http://127.0.0.1:{free_port()}", "db", token=SecretValue("s3cr3t-token"), timeout_s=1)
    with pytest.raises(WriteFailed) as err:
        t.send(b"")
    assert err.value.retry and "s3cr3t" not in str(err.value)


def test_detect_api_reads_the_version_header(influx_server, v2_front):
    assert detect_api(influx_server.url) == "v1"
    assert detect_api(v2_front.url) == "v2"


def test_outage_spools_to_disk_and_replays_in_order(own_influx, tmp_path):
    """InfluxDB down while samples keep coming: nothing lost, none duplicated."""
    influx_server, influx_db = own_influx   # its own server: this test stops it
    spool = tmp_path / "spool"

    async def run():
        cfg = InfluxConfig(url=influx_server.url, database=influx_db, api="v1", batch_size=50,
                           flush_interval_s=0.05, spill_after_s=0.2, spool_dir=str(spool), max_backoff_s=0.5)
        w = await InfluxWriter(cfg).start()
        w.write(_samples(100, t0=10**18))
        assert await w.flush(10)
        influx_server.stop()
        for k in range(10):
            w.write(_samples(60, t0=10**18 + (k + 1) * 10**9))
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        spooled = len(w.spool)
        influx_server.start_same()
        assert await w.flush(30)
        await w.close()
        return w, spooled

    w, spooled = asyncio.run(run())
    assert spooled > 0, "batches should have gone to the disk spool during the outage"
    assert w.stats.points_written >= 700
    assert _count(influx_server, influx_db) == 700  # 100 + 10*60, each point once
    assert not list(spool.glob("*.lp.gz"))


def test_a_failing_flush_loop_is_restarted_and_says_so(influx_server, influx_db, caplog):
    """The flush loop's first tick raises (a bug, a disk error): the supervisor restarts it, logs it
    once, and every point still arrives."""
    async def run():
        w = await InfluxWriter(InfluxConfig(url=influx_server.url, database=influx_db, api="v1",
                                            flush_interval_s=0.1)).start()
        real_cut, calls = w._cut, []

        def cut_failing_once(limit=None):
            calls.append(limit)
            if len(calls) == 1:
                raise OSError(28, "No space left on device")
            real_cut(limit)

        w._cut = cut_failing_once
        w.write(_samples(30))
        deadline = asyncio.get_running_loop().time() + 20
        while w.stats.points_written < 30 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await w.close()
        return w

    w = asyncio.run(run())
    assert w.stats.restarts == 1 and w.stats.points_written == 30
    lines = [r.getMessage() for r in caplog.records if "loop failed" in r.getMessage()]
    assert lines == ["InfluxDB writer flush loop failed (OSError: [Errno 28] No space left on device); restarting it"]


def test_spool_cap_drops_are_reported_as_policy_in_the_writer_sample(tmp_path):
    """drop_oldest at the spool's cap: the writer sample names the reason and the exact count."""
    from contract import writer as W
    from localservers.process import free_port

    async def run():
        cfg = InfluxConfig(url=f"http://127.0.0.1:{free_port()}", api="v1", flush_interval_s=0.05, spill_after_s=0.0,
                           max_backoff_s=0.1, spool_dir=str(tmp_path / "spool"), spool_max_bytes=4096,
                           batch_size=100, max_memory_batches=1)
        w = await InfluxWriter(cfg).start()      # nothing listens there: every batch ends up on disk
        for i in range(40):
            w.write(_samples(100, t0=1_700_000_000_000_000_000 + i * 10**9))
            await asyncio.sleep(0.01)
        then = w.stats.points_dropped            # no await between this and the two samples
        first = w.status_sample({"site": "t", W.SHARD: "0/1"})
        second = w.status_sample({"site": "t", W.SHARD: "0/1"})
        await w.close(0.2)
        return w, then, first.fields, second.fields

    w, then, first, second = asyncio.run(run())
    assert then > 0
    assert w.stats.dropped_by_kind == {W.DROP_POLICY: w.stats.points_dropped}
    assert first[W.dropped_field(W.DROP_POLICY)] == first[W.DROPPED] == first[W.DROPPED_TOTAL] == then
    assert first[W.SPOOLING] is True and 0 < first[W.SPOOL_BYTES] <= 4096 and first[W.SPOOL_POINTS] > 0
    assert second[W.DROPPED] == 0 and second[W.DROPPED_TOTAL] == first[W.DROPPED_TOTAL]  # counted once


def test_the_first_batch_goes_out_without_waiting_a_flush_interval(influx_server, influx_db):
    """A service that has just started shows its first points at once (dcim run's first write at
    site scale), although its flush interval is long; the writer is not asked to flush."""
    async def run():
        w = await InfluxWriter(InfluxConfig(url=influx_server.url, database=influx_db, api="v1",
                                            flush_interval_s=120.0)).start()
        await asyncio.sleep(0.5)  # nothing to write yet: the early cuts go on until there is
        w.write(_samples(40))
        deadline = asyncio.get_running_loop().time() + 20  # far below the 120 s interval
        while w.stats.points_written < 40 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        written = w.stats.points_written
        await w.close()
        return written

    assert asyncio.run(run()) == 40
    assert _count(influx_server, influx_db) == 40
