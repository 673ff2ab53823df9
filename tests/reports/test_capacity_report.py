"""``dcim report capacity`` on a real influxd, every figure worked out by hand.

Site: tests/reports/capacity_site.yaml.  Device readings (what the collectors
would decode: PDU inlet, UPS output and transformer meter ``power_w``) are
hand-written for 200 instants a minute apart; the real derived job turns each
instant into ``capacity`` samples, the real writer stores them, and the report
reads them back.  Each signal has a base value and four spikes at distinct
instants, so with 200 samples InfluxDB's nearest-rank 99th percentile
(index ⌊200 × 0.99 + 0.5⌋ − 1 = 197 of the sorted values) is the *third
largest* value and the peak the largest.

Inventory figures (kW):

* rack k2n (2N, rated 30): allocated n1 10 + n2 10 + sw1 0.5 = 20.5; usable = the weaker
  side = min(PDU-A 22, PDU-B 20) = 20.  rack kn (N, rated 15): allocated n3 10, n4 has no
  nameplate (unrated 1); usable min(PDU-C 17, rack 15) = 15.
* PDU-A/PDU-B allocated 20.5 each (n1, n2, sw1 on both), PDU-C 10 (+1 unrated).
* UPS-A allocated PDU-A 22 + PDU-C 17 = 39, UPS-B 20; the pair is 2N: usable min(100, 80) = 80.
* tx-a allocated UPS-A 100, tx-b UPS-B 80; they feed the 2N pair: usable min(500, 400) = 400.
* row r1: rated 45, allocated 30.5, usable 35; hall h1: rated = usable = 150, allocated 30.5.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from contract.sample import Sample
from dcim.cli import main

HERE = Path(__file__).resolve().parent
SITE = HERE / "capacity_site.yaml"
T0 = 1793491200            # 2026-11-01T00:00:00Z
N = 200
STEP = 60
LATER = 8 * 86400

#: device -> (base W, {instant: W})
SIGNALS = {
    "pdu-a": (5000.0, {10: 9000.0, 20: 8000.0, 30: 6000.0, 40: 7000.0}),
    "pdu-b": (4000.0, {10: 6000.0, 30: 7000.0, 40: 4500.0}),
    "pdu-c": (8000.0, {50: 14000.0, 60: 12000.0, 70: 11000.0, 80: 10000.0}),
    "ups-a": (13000.0, {15: 20000.0, 25: 16000.0, 45: 18000.0}),
    "ups-b": (4000.0, {15: 8000.0, 35: 12000.0, 45: 1000.0}),
    "m-tx-a": (30000.0, {5: 45000.0, 65: 40000.0, 75: 35000.0}),
    "m-tx-b": (20000.0, {5: 25000.0, 55: 35000.0}),
}
MEASUREMENT = {"pdu-a": "pdu", "pdu-b": "pdu", "pdu-c": "pdu", "ups-a": "ups", "ups-b": "ups",
               "m-tx-a": "meter", "m-tx-b": "meter"}

# (level, id) -> hand-computed figures in W: rated, allocated, unrated, usable, peak, p99 (of the
# design load), own peak, own p99
EXPECTED = {
    # 2N rack: load = A + B; sorted 15000 (i10), 13000 (i30), 12000 (i20), 11500 (i40), 9000 ...
    ("rack", "k2n"): (30000, 20500, 0, 20000, 15000, 12000, 15000, 12000),
    # N rack = PDU-C: 14000, 12000, 11000, 10000, 8000 ...
    ("rack", "kn"): (15000, 10000, 1, 15000, 14000, 11000, 14000, 11000),
    # a 2N rack's PDU carries the whole rack; own load: A 9000, 8000, 7000 / B 7000, 6000, 4500
    ("pdu", "pdu-a"): (22000, 20500, 0, 22000, 15000, 12000, 9000, 7000),
    ("pdu", "pdu-b"): (20000, 20500, 0, 20000, 15000, 12000, 7000, 4500),
    ("pdu", "pdu-c"): (17000, 10000, 1, 17000, 14000, 11000, 14000, 11000),
    # pair: A + B = 28000 (i15), 25000 (i35), 20000 (i25), 19000 (i45), 17000 ...
    # own: A 20000, 18000, 16000 / B 12000, 8000, 4000
    ("ups", "ups-a"): (100000, 39000, 0, 80000, 28000, 20000, 20000, 16000),
    ("ups", "ups-b"): (80000, 20000, 0, 80000, 28000, 20000, 12000, 4000),
    # pair: 70000 (i5), 65000 (i55), 60000 (i65), 55000 (i75), 50000 ...
    # own: a 45000, 40000, 35000 / b 35000, 25000, 20000
    ("transformer", "tx-a"): (500000, 100000, 0, 400000, 70000, 60000, 45000, 35000),
    ("transformer", "tx-b"): (400000, 80000, 0, 400000, 70000, 60000, 35000, 20000),
    # k2n + kn: 23000 (i10), 23000 (i50), 21000 (i30), 21000 (i60), 20000 ... base 17000
    ("row", "r1"): (45000, 30500, 1, 35000, 23000, 21000, 23000, 21000),
    ("hall", "h1"): (150000, 30500, 1, 150000, 23000, 21000, 23000, 21000),
}


def _readings(i: int, shift: int = 0) -> list[Sample]:
    t = (T0 + shift + i * STEP) * 10**9
    out = []
    for dev, (base, spikes) in SIGNALS.items():
        tags = {"site": "cap", "device": dev, **({"stage": "output"} if MEASUREMENT[dev] == "ups" else {})}
        out.append(Sample(MEASUREMENT[dev], tags, {"power_w": spikes.get(i, base)}, t))
    return out


@pytest.fixture(scope="module")
def loaded(influx_server):
    """The derived job's capacity samples for the 200 instants, through the real writer; tiers built."""
    from derived.job import DerivedMetrics
    from inventory import load_site
    from sinks.influx_query import InfluxQuery
    from sinks.influx_writer import InfluxConfig, InfluxWriter
    from storage.admin import backfill, init
    from storage.tiers import StorageConfig

    db = "capacity_hand"
    influx_server.create_database(db)
    site = load_site(SITE)

    async def run() -> None:
        writer = await InfluxWriter(InfluxConfig(url=influx_server.url, database=db, api="v1")).start()
        try:  # the same 200 minutes again 8 days later: a 9-day window that the 1m tier holds at both ends
            for shift in (0, LATER):
                dm = DerivedMetrics(site)
                for i in range(N):
                    dm.consume(_readings(i, shift))
                    writer.write([s for s in dm.compute((T0 + shift + i * STEP) * 10**9) if s.measurement == "capacity"])
            assert await writer.flush(30)
        finally:
            await writer.close()
    asyncio.run(run())
    client = InfluxQuery(influx_server.url, db)
    init(client, StorageConfig())
    backfill(client, StorageConfig(), T0 * 10**9, (T0 + LATER + N * STEP) * 10**9)
    return influx_server.url, db


def _report(loaded, tmp_path, fmt: str, *extra: str):
    url, db = loaded
    out = tmp_path / f"cap.{fmt}"
    code = main(["report", "capacity", "--site", str(SITE), "--influx", url, "--db", db,
                 "--from", "2026-11-01", "--to", "2026-11-02", "--format", fmt, "--out", str(out), *extra])
    assert code == 0
    return out.read_text()


def test_every_figure_matches_the_hand_computation(loaded, tmp_path):
    rep = json.loads(_report(loaded, tmp_path, "json"))
    rows = {(r["level"], r["id"]): r for r in rep["rows"]}
    assert set(rows) == set(EXPECTED)
    for key, (rated, alloc, unrated, usable, peak, p99, own_peak, own_p99) in EXPECTED.items():
        r = rows[key]
        got = (r["rated_w"], r["allocated_w"], r["unrated"], r["usable_w"], r["peak_w"], r["p99_w"],
               r["own_peak_w"], r["own_p99_w"])
        assert got == (rated, alloc, unrated, usable, peak, p99, own_peak, own_p99), key
        assert r["samples"] == N, key
        assert r["unallocated_w"] == rated - alloc, key
        assert r["headroom_w"] == usable - peak, key
        assert r["stranded_w"] == alloc - peak, key
    # the figures people read first, spelled out
    assert rows["rack", "k2n"]["headroom_w"] == 5000 and rows["rack", "k2n"]["stranded_w"] == 5500
    assert rows["rack", "k2n"]["headroom_pct"] == pytest.approx(25.0)
    # the N rack drew more than its allocation: its server has no nameplate, and the report says so
    assert rows["rack", "kn"]["stranded_w"] == -4000 and rows["rack", "kn"]["unrated"] == 1
    assert rows["ups", "ups-a"]["headroom_w"] == 52000 and rows["ups", "ups-a"]["stranded_w"] == 11000
    assert rows["transformer", "tx-a"]["unallocated_w"] == 400000
    assert [r["level"] for r in rep["rows"]] == ["hall", "row", "rack", "rack", "pdu", "pdu", "pdu", "ups", "ups",
                                                  "transformer", "transformer"]
    assert rep["totals"]["rack"]["stranded_w"] == 1500 and rep["totals"]["rack"]["unmeasured"] == 0
    assert rep["source"].startswith("raw readings")
    assert len(rep["queries"]) == 6 and all("GROUP BY \"id\"" in q for q in rep["queries"])
    assert len(rep["input_sha256"]) == 64 and not rep["warnings"]


def test_minute_tier_gives_the_same_peaks(loaded, tmp_path):
    """One sample per minute: the 1m tier's bucket max and mean are that sample, so even p99 agrees."""
    raw = json.loads(_report(loaded, tmp_path, "json", "--tier", "raw"))
    tier = json.loads(_report(loaded, tmp_path, "json", "--tier", "1m"))
    assert tier["source"].startswith("rollup tier 1m")
    assert any('"rollup_1m"."capacity"' in q for q in tier["queries"])
    pick = ("peak_w", "p99_w", "own_peak_w", "own_p99_w", "samples", "headroom_w", "stranded_w")
    assert [{k: r[k] for k in pick} for r in tier["rows"]] == [{k: r[k] for k in pick} for r in raw["rows"]]
    assert tier["input_sha256"] == raw["input_sha256"]


def test_auto_reads_raw_up_to_7_days_and_the_minute_tier_beyond(loaded, tmp_path):
    """Nine days (both copies): the 1m tier holds both ends and answers; 400 samples, and with every
    value twice nearest-rank p99 (index 395 of 400) is still the third largest value."""
    url, db = loaded
    out = tmp_path / "nine.json"
    assert main(["report", "capacity", "--site", str(SITE), "--influx", url, "--db", db, "--from", "2026-11-01",
                 "--to", "2026-11-10", "--out", str(out)]) == 0
    nine = json.loads(out.read_text())
    assert nine["source"].startswith("rollup tier 1m")
    one = json.loads(_report(loaded, tmp_path, "json"))
    assert one["source"].startswith("raw readings")
    for a, b in zip(nine["rows"], one["rows"]):
        assert (a["peak_w"], a["p99_w"], a["own_peak_w"], a["own_p99_w"]) == \
               (b["peak_w"], b["p99_w"], b["own_peak_w"], b["own_p99_w"]), a["id"]
        assert a["samples"] == 2 * N
    # ten days from Oct 31: no tier bucket on its first day, so raw answers (and says why)
    assert main(["report", "capacity", "--site", str(SITE), "--influx", url, "--db", db, "--from", "2026-10-31",
                 "--to", "2026-11-10", "--out", str(out)]) == 0
    ten = json.loads(out.read_text())
    assert ten["source"] == "raw readings (no rollup tier holds capacity buckets at both ends of the window)"
    assert [r["peak_w"] for r in ten["rows"]] == [r["peak_w"] for r in one["rows"]]


def test_csv_and_html_carry_the_rows_and_the_audit_trail(loaded, tmp_path):
    text = _report(loaded, tmp_path, "csv")
    assert text == _report(loaded, tmp_path, "csv")          # reproducible byte for byte
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    k2n = next(r for r in rows if r["id"] == "k2n")
    assert (k2n["peak_w"], k2n["p99_w"], k2n["stranded_w"], k2n["redundancy"]) == ("15000.0", "12000.0", "5500.0", "2N")
    assert "# input sha256 " in text
    page = _report(loaded, tmp_path, "html")
    assert "Top stranded racks" in page and "k2n" in page and "SELECT max(" in page


def test_an_empty_window_warns_instead_of_reporting_zeros(loaded, tmp_path, capsys):
    url, db = loaded
    out = tmp_path / "empty.json"
    assert main(["report", "capacity", "--site", str(SITE), "--influx", url, "--db", db, "--from", "2026-10-01",
                 "--to", "2026-10-02", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert all(r["peak_w"] is None and r["stranded_w"] is None for r in rep["rows"])
    assert rep["rows"][0]["allocated_w"] == 30500
    assert "11 of 11 elements have no capacity sample" in capsys.readouterr().err


def test_bad_window_and_unreachable_server_exit_codes(tmp_path, capsys):
    assert main(["report", "capacity", "--site", str(SITE), "--influx", "http://127.0.0.1:9", "--db", "x",
                 "--from", "2026-11-02", "--to", "2026-11-01"]) == 2
    assert "must be after --from" in capsys.readouterr().err
    assert main(["report", "capacity", "--site", str(SITE), "--influx", "http://127.0.0.1:9", "--db", "x",
                 "--from", "2026-11-01", "--to", "2026-11-02", "--tier", "raw"]) == 3
