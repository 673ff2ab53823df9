"""A month of meter counters: the PUE report from the hourly tier equals the report from raw.

The meter data is a dataset with known truth (minute readings, a reset inside an
hour, a 32-bit wrap, a water meter), loaded as raw; the hourly tier is filled by
``dcim storage backfill``; the report reads it back through ``--tier``.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reports"))
from report_datasets import META, Dataset, _counter, epoch  # noqa: E402

from dcim.cli import main  # noqa: E402

STEP = 60
TOL = 1e-3


def month_dataset() -> Dataset:
    # counters read from a day before the month to a day after, as on a live site
    start, end = epoch(2026, 9, 30), epoch(2026, 11, 2)
    site = f"""
site: {{id: testsite, name: Tier Test Site, timezone: UTC, grid_emission_kgco2e_per_kwh: 0.4}}
devices:
  - {{id: meter-grid, kind: meter, {META}, meter: {{role: boundary, source: grid}}}}
  - {{id: meter-it-1, kind: meter, {META}, meter: {{role: it, category: 1}}}}
  - {{id: meter-it-2, kind: meter, {META}, meter: {{role: it, category: 1}}}}
  - {{id: meter-pv, kind: meter, {META}, meter: {{role: renewable, source: solar}}}}
  - {{id: meter-water, kind: meter, {META}, meter: {{role: water}}}}
"""
    ds = Dataset(site, start, end, STEP)
    n = ds.steps()
    h = lambda k: (k * STEP) / 3600.0  # noqa: E731
    it1 = [(400 + 30 * math.sin(2 * math.pi * h(k) / 24)) * STEP / 3600 for k in range(n)]
    it2 = [(350 + 10 * math.cos(2 * math.pi * h(k) / 7)) * STEP / 3600 for k in range(n)]
    grid = [(1.3 * (it1[k] + it2[k]) * 3600 / STEP + 25 * math.sin(h(k))) * STEP / 3600 for k in range(n)]
    pv = [max(0.0, 300 * math.sin(math.pi * ((h(k) % 24) - 6) / 12)) * STEP / 3600 for k in range(n)]
    water = [20.0 * STEP / 3600 for _ in range(n)]
    reset_k = 10 * 1440 + 7 * 60 + 23       # 10 Oct 07:23, inside an hour
    _counter(ds, "meter-grid", "energy_kwh", grid, 51234.5, reset_at=reset_k)
    _counter(ds, "meter-it-1", "energy_kwh", it1, 4294967.296 - 12000.0, wrap=4294967.296)  # wraps on 2 Oct
    _counter(ds, "meter-it-2", "energy_kwh", it2, 100.0)
    _counter(ds, "meter-pv", "energy_kwh", pv, 10.0)
    _counter(ds, "meter-water", "volume_l", water, 5000.0)
    ds.truth = {"grid": grid, "it": [a + b for a, b in zip(it1, it2)], "pv": pv, "water": water}
    return ds


@pytest.fixture(scope="module")
def month(influx_server, tmp_path_factory):
    ds = month_dataset()
    db = "tier_report"
    influx_server.create_database(db)
    ds.load(influx_server.url, db)
    d = tmp_path_factory.mktemp("tier_report")
    site = ds.write_site(d / "site.yaml")
    cfg = d / "run.yaml"
    cfg.write_text(f"site: {site}\ninfluxdb: {{url: '{influx_server.url}', database: {db}, api: v1}}\n"
                   "storage:\n  raw: {retention: 3650d}\n  mechanism: job\n")
    assert main(["storage", "init", "--config", str(cfg)]) == 0
    assert main(["storage", "backfill", "--config", str(cfg), "--from", "2026-09-29", "--to", "2026-11-03",
                 "--tier", "1h"]) == 0
    return ds, site, d, db


def _report(influx_server, month, tier: str) -> dict:
    ds, site, d, db = month
    out = d / f"pue-{tier}.json"
    assert main(["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", db,
                 "--from", "2026-10", "--to", "2026-11", "--format", "json", "--out", str(out),
                 "--tier", tier]) == 0
    return json.loads(out.read_text())


def test_hourly_tier_gives_the_raw_report(influx_server, month):
    ds = month[0]
    raw = _report(influx_server, month, "raw")
    hourly = _report(influx_server, month, "auto")
    assert "rollup tier 1h" in hourly["source"] and raw["source"].startswith("raw")
    assert all('"rollup_1h"."meter"' in q for q in hourly["queries"])
    assert not any("rollup_1h" in q for q in raw["queries"])
    a, b = epoch(2026, 10, 1), epoch(2026, 11, 1)
    e_dc = math.fsum(v for k, v in enumerate(ds.truth["grid"]) if a <= ds.step_start(k) < b)
    e_it = math.fsum(v for k, v in enumerate(ds.truth["it"]) if a <= ds.step_start(k) < b)
    for rep in (raw, hourly):
        t = rep["total"]
        assert t["e_dc_kwh"] == pytest.approx(e_dc, rel=TOL)
        assert t["e_it_kwh"] == pytest.approx(e_it, rel=TOL)
    for key in ("e_dc_kwh", "e_it_kwh", "renewable_kwh", "water_l", "co2_kg", "hourly_matched_kwh"):
        assert hourly["total"][key] == pytest.approx(raw["total"][key], rel=TOL), key
    for key in ("pue", "ref", "cue", "wue"):
        assert hourly["total"][key] == pytest.approx(raw["total"][key], abs=TOL), key
    # the reset and the wrap are bridged from the tier as from raw
    assert sorted((x["meter"], x["kind"]) for x in hourly["bridges"]) == \
        sorted((x["meter"], x["kind"]) for x in raw["bridges"]) == [("meter-grid", "reset"), ("meter-it-1", "wrap")]


def test_a_period_the_tier_does_not_hold_reads_raw(influx_server, month):
    ds, site, d, db = month
    out = d / "pue-sep.json"
    # September: the tier holds only its last day; auto must not pretend it covers the month
    assert main(["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", db,
                 "--from", "2026-09", "--to", "2026-10", "--format", "json", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["source"].startswith("raw readings (the 1h tier holds no bucket")


def test_many_meters_read_without_a_device_filter_give_the_same_report(influx_server, month, monkeypatch):
    import reports.query as rq

    filtered = _report(influx_server, month, "auto")
    monkeypatch.setattr(rq, "DEVICE_FILTER_MAX", 0)      # as for a site of a thousand meters
    unfiltered = _report(influx_server, month, "auto")
    assert not any('"device" =' in q for q in unfiltered["queries"] if "_max" not in q)
    assert unfiltered["total"] == filtered["total"] and unfiltered["meters"] == filtered["meters"]
    assert unfiltered["input_sha256"] == filtered["input_sha256"]
