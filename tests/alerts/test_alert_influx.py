"""Alert events land in InfluxDB measurement ``alert`` through the real writer and a real influxd."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from inventory.loader import load_site
from sinks.influx_writer import InfluxConfig, InfluxWriter

SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"


def test_events_written_as_alert_points(influx_server, influx_db, tmp_path):
    site = load_site(SITE)
    rules = load_rules_text("""
rules:
  - name: pdu-hot
    measurement: pdu
    field: current_a
    threshold: 25
    severity: major
    annotations: {summary: "{device} at {value} A"}
""", "t.yaml")
    t0 = time.time_ns() - 60 * 10**9

    async def go():
        writer = await InfluxWriter(InfluxConfig(url=influx_server.url, database=influx_db, flush_interval_s=0.1)).start()
        rt = AlertRuntime(site, rules, state_dir=tmp_path / "st", mqtt=None, influx_writer=writer, clock=lambda: t0)
        await rt.start()
        dev = {"device": "h1-r01-k02-pdu-b", "phase": "2"}
        rt.consume([Sample("pdu", dev, {"current_a": 31.5}, t0)])
        rt.consume([Sample("pdu", dev, {"current_a": 3.0}, t0 + 10**9)])
        await rt.stop()
        assert await writer.flush(10)
        await writer.close()
    asyncio.run(go())
    res = influx_server.query('SELECT "value","threshold","summary","fingerprint",rack,"state" FROM alert', db=influx_db)
    rows = res["results"][0]["series"][0]["values"]
    cols = res["results"][0]["series"][0]["columns"]
    got = [dict(zip(cols, r)) for r in rows]
    assert [(r["state"], r["value"], r["rack"]) for r in got] == [("firing", 31.5, "h1-r01-k02"), ("resolved", 3.0, "h1-r01-k02")]
    assert got[0]["summary"] == "h1-r01-k02-pdu-b at 31.5 A" and got[0]["threshold"] == 25
    assert got[0]["fingerprint"] == got[1]["fingerprint"]


def test_events_of_two_series_at_one_instant_are_two_points(influx_server, influx_db, tmp_path):
    """The eight GPUs of one DCGM poll share a timestamp: their alerts must not overwrite each other."""
    site = load_site(SITE)
    rules = load_rules_text("""
rules:
  - name: xid
    measurement: gpu
    field: xid_last
    op: '!='
    threshold: 0
    severity: major
    annotations: {summary: "{device} GPU {gpu} XID {value}"}
""", "t.yaml")
    t0 = time.time_ns() - 60 * 10**9

    async def go():
        writer = await InfluxWriter(InfluxConfig(url=influx_server.url, database=influx_db, flush_interval_s=0.1)).start()
        rt = AlertRuntime(site, rules, state_dir=tmp_path / "st", mqtt=None, influx_writer=writer, clock=lambda: t0)
        rt.consume([Sample("gpu", {"device": "h1-r01-k01-n1", "gpu": str(i)}, {"xid_last": 79}, t0) for i in range(3)])
        await rt.stop()
        assert await writer.flush(10)
        await writer.close()
    asyncio.run(go())
    res = influx_server.query('SELECT "summary", "gpu" FROM alert', db=influx_db)
    rows = res["results"][0]["series"][0]["values"]
    assert sorted(r[1] for r in rows) == [f"h1-r01-k01-n1 GPU {i} XID 79" for i in range(3)]
