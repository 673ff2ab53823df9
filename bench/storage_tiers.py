#!/usr/bin/env python3
"""Storage tiers at site scale: a year's PUE report from the hourly tier vs raw, and disk per tier.

1. **Annual report.** A generated site of ``--meters`` energy meters (default
   1,000, the full site's count; the site's role mix: boundary, IT category 1,
   renewable, water).  The hourly tier holds a year of buckets for all of them,
   in exactly the shape the rollup writes (``storage.fields.rollups``: counter
   ``last`` and ``max`` per bucket).  Raw 10 s readings for a year of 1,000 meters
   (≈3.2 billion) do not fit this machine, so the raw side is a scaled slice
   (``--raw-meters`` × ``--raw-days`` at 10 s) and its time is extrapolated
   linearly in readings (the report reads and walks each reading once), and said
   so.  Same run, alternating: the raw slice, the same slice from the hourly
   tier, then the full year from the hourly tier.
2. **Disk per tier.** ``--slice-series`` series of the site's field mix
   (gauges, low-watch gauges, counters, states) for ``--slice-hours`` at 10 s
   into raw; ``dcim storage backfill`` fills the 1-minute and hourly tiers
   server-side; after influxd has compacted, bytes per point per retention
   policy are measured on disk and scaled to ≈300,000 fields/s.

    python bench/storage_tiers.py [--meters 1000] [--raw-meters 10] [--raw-days 7] [--rounds 3]
                                  [--slice-series 500] [--slice-hours 24]
"""
from __future__ import annotations

import argparse
import calendar
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LineBatches, median  # noqa: E402
from inventory.loader import load_site_text  # noqa: E402
from reports.build import ReportRequest, build_pue_report  # noqa: E402
from sinks.influx_query import InfluxQuery  # noqa: E402
from storage.admin import backfill, init  # noqa: E402
from storage.tiers import StorageConfig, disk_per_day  # noqa: E402
from localservers.influx import InfluxServer  # noqa: E402

YEAR = 2025
H = 3600
SITE_FIELDS_PER_S = 300_000


class CompactingInflux(InfluxServer):
    """influxd that snapshots and compacts quickly, so what is on disk is what stays there."""

    def config_text(self) -> str:
        return super().config_text().replace(
            "  trace-logging-enabled = false",
            '  trace-logging-enabled = false\n  cache-snapshot-write-cold-duration = "2s"\n'
            '  compact-full-write-cold-duration = "5s"')


def _site(meters: int) -> str:
    devs = []
    for i in range(meters):
        if i < max(1, meters // 50):
            meter = "{role: boundary, source: grid}"
        elif i < meters * 0.92:
            meter = "{role: it, category: 1}"
        elif i < meters * 0.97:
            meter = "{role: renewable, source: solar}"
        else:
            meter = "{role: water}"
        devs.append(f"  - {{id: m-{i:04d}, kind: meter, protocol: none, meter: {meter}}}")
    return "site: {id: bench, name: Bench, grid_emission_kgco2e_per_kwh: 0.5}\ndevices:\n" + "\n".join(devs) + "\n"


def load_hourly(url: str, db: str, meters: int, start: int, end: int) -> int:
    """A year of hourly buckets per meter, as the rollup stores them (last and max of the counter)."""
    out = LineBatches(url, db, "rollup_1h", timeout_s=300.0)
    water_from = int(meters * 0.97)
    for i in range(meters):
        fld = "volume_l" if i >= water_from else "energy_kwh"
        c = 1000.0 * i
        for t in range(start - 2 * H, end + 2 * H, H):
            c += 200.0 + 50 * math.sin(t / 86400 * 2 * math.pi + i)
            out.add(f"meter,device=m-{i:04d},site=bench {fld}={c!r},{fld}_max={c!r} {t}")
    return out.flush()


def load_raw(url: str, db: str, meters: int, start: int, days: int) -> int:
    out = LineBatches(url, db, "autogen", timeout_s=300.0)
    for i in range(meters):
        c = 1000.0 * i
        for t in range(start - 600, start + days * 86400 + 600, 10):
            c += (200.0 + 50 * math.sin(t / 86400 * 2 * math.pi + i)) * 10 / H
            out.add(f"meter,device=m-{i:04d},site=bench energy_kwh={c!r} {t}")
    return out.flush()


def report_s(client: InfluxQuery, site_text: str, start: int, end: int, tier: str) -> tuple[float, float, str]:
    site = load_site_text(site_text)
    t0 = time.perf_counter()
    rep = build_pue_report(site, client, ReportRequest(float(start), float(end), tier=tier, progress=False))
    return time.perf_counter() - t0, rep.total.e_it_kwh, rep.source


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def settle(server: CompactingInflux, db: str, timeout_s: float = 240.0) -> float:
    """Wait for snapshots and full compactions (sizes stable, WAL drained): what is read and
    measured afterwards is what a store holds after a day, not a write cache."""
    data, wal = server.workdir / "data" / db, server.workdir / "wal" / db
    t0 = last_change = time.monotonic()
    last = -1
    while time.monotonic() - t0 < timeout_s:
        size = _du(data)
        if size != last:
            last, last_change = size, time.monotonic()
        elif time.monotonic() - last_change > 15 and _du(wal) < 1 << 20:
            break
        time.sleep(2)
    return time.monotonic() - t0


def disk(server: CompactingInflux, series: int, hours: int, year_hourly: tuple[int, int] | None = None) -> None:
    """``year_hourly``: (points, bytes) of the annual part's hourly tier: a year per series,
    the density the hourly tier really has (a day's slice holds 24 points per series, where the
    per-series index dominates)."""
    db = "disk"
    server.create_database(db)
    client = InfluxQuery(server.url, db)
    cfg = StorageConfig(raw={"retention": "3650d"}, mechanism="job")
    init(client, cfg)
    rnd = random.Random(7)
    start = calendar.timegm((2026, 11, 1, 0, 0, 0))
    kinds = [("power_w", 0.6), ("voltage_v", 0.2), ("energy_kwh", 0.1), ("state", 0.1)]
    plan = []
    for s in range(series):
        x = rnd.random()
        acc = 0.0
        for name, share in kinds:
            acc += share
            if x <= acc:
                plan.append(name)
                break
    out = LineBatches(server.url, db, "autogen", timeout_s=300.0)
    values = [rnd.uniform(100, 5000) for _ in range(series)]
    for t in range(start, start + hours * H, 10):
        for s, name in enumerate(plan):
            if name == "state":
                v = '"normal"' if rnd.random() > 0.001 else '"battery"'
            elif name == "energy_kwh":
                values[s] += rnd.uniform(0.5, 1.5)
                v = f"{round(values[s], 3)!r}"
            else:
                values[s] += rnd.gauss(0, values[s] * 0.002)
                v = f"{round(values[s], 2)!r}"
            out.add(f"m,device=d{s // 8},sensor=s{s % 8} {name}={v} {t}")
    raw_points = out.flush()
    written = backfill(client, cfg, start * 10**9, (start + hours * H) * 10**9)
    settle(server, db)
    data = server.workdir / "data" / db
    points = {"autogen": raw_points, **{f"rollup_{k}": v for k, v in written.items()}}
    print(f"\ndisk: {series} series of the site's field mix (60% gauge, 20% low-watch gauge, 10% counter, "
          f"10% state) for {hours} h at 10 s; tiers by dcim storage backfill; measured after compaction "
          "(a point is one line: a tier's line holds its mean/max/min or last/max fields)")
    bpp = {}
    for rp, n in points.items():
        b = _du(data / rp)
        bpp[rp] = b / max(n, 1)
        print(f"  {rp:<10} {n:>10,} points  {b / 1e6:8.2f} MB  {bpp[rp]:5.2f} B/point")
    if year_hourly:
        n, b = year_hourly
        bpp["rollup_1h"] = b / n
        print(f"  rollup_1h  {n:>10,} points, a year per series (the annual part): {b / 1e6:8.2f} MB  "
              f"{bpp['rollup_1h']:5.2f} B/point -> used for the 1h tier")
    ratio_1m = points["rollup_1m"] / raw_points
    ratio_1h = points["rollup_1h"] / raw_points
    full = StorageConfig()
    est = disk_per_day(SITE_FIELDS_PER_S, bpp["autogen"], full)
    per_day = {"raw": est["raw/day"],
               "1m": SITE_FIELDS_PER_S * 86400 * ratio_1m * bpp["rollup_1m"],
               "1h": SITE_FIELDS_PER_S * 86400 * ratio_1h * bpp["rollup_1h"]}
    keep = {"raw": full.raw.retention_s / 86400, **{t.name: t.retention_s / 86400 for t in full.tiers}}
    print(f"full site at {SITE_FIELDS_PER_S:,} fields/s (scaled from the slice; tier points per raw point: "
          f"1m {ratio_1m:.4f}, 1h {ratio_1h:.5f}):")
    total = 0.0
    for name in ("raw", "1m", "1h"):
        held = per_day[name] * keep[name]
        total += held
        print(f"  {name:<4} {per_day[name] / 1e9:8.2f} GB/day   kept {keep[name]:6.0f} d -> {held / 1e12:7.2f} TB")
    print(f"  all tiers at the default retentions: {total / 1e12:.2f} TB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--raw-meters", type=int, default=10)
    ap.add_argument("--raw-days", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slice-series", type=int, default=500)
    ap.add_argument("--slice-hours", type=int, default=24)
    ap.add_argument("--skip-disk", action="store_true")
    args = ap.parse_args()
    start, end = calendar.timegm((YEAR, 1, 1, 0, 0, 0)), calendar.timegm((YEAR + 1, 1, 1, 0, 0, 0))
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        server = CompactingInflux(Path(tmp) / "influxd").start()
        try:
            server.create_database("tiers")
            client = InfluxQuery(server.url, "tiers", timeout_s=600)
            init(client, StorageConfig(raw={"retention": "3650d"}, mechanism="job"))
            t0 = time.perf_counter()
            n_hourly = load_hourly(server.url, "tiers", args.meters, start, end)
            n_raw = load_raw(server.url, "tiers", args.raw_meters, start, args.raw_days)
            waited = settle(server, "tiers")
            print(f"loaded {n_hourly:,} hourly buckets ({args.meters} meters x 1 year) and {n_raw:,} raw readings "
                  f"({args.raw_meters} meters x {args.raw_days} d at 10 s) in {time.perf_counter() - t0:.0f} s "
                  f"(of which {waited:.0f} s waiting for influxd to compact)")
            small_site, full_site = _site(args.raw_meters), _site(args.meters)
            small_end = start + args.raw_days * 86400
            raw_t, tier_t, full_t = [], [], []
            for _ in range(args.rounds):
                s, e_raw, src = report_s(client, small_site, start, small_end, "raw")
                raw_t.append(s)
                s, e_tier, src_t = report_s(client, small_site, start, small_end, "1h")
                tier_t.append(s)
                s, _, src_f = report_s(client, full_site, start, end, "auto")
                full_t.append(s)
            scale = (args.meters / args.raw_meters) * (365 / args.raw_days)
            raw_year = median(raw_t) * scale
            print(f"slice {args.raw_meters} meters x {args.raw_days} d: raw {median(raw_t):.2f} s, "
                  f"hourly tier {median(tier_t):.3f} s (medians of {args.rounds}); "
                  f"IT energy raw {e_raw:,.1f} kWh vs tier {e_tier:,.1f} kWh")
            print(f"year, {args.meters} meters, hourly tier ({src_f}): {median(full_t):.1f} s "
                  f"(target < 60 s: {'MET' if median(full_t) < 60 else 'NOT MET'})")
            print(f"year, {args.meters} meters, raw 10 s: ≈{raw_year:,.0f} s, extrapolated x{scale:,.0f} from the "
                  f"slice (raw year does not fit here: {args.meters * 365 * 8640 / 1e9:.1f} billion readings)")
            print(f"ratio raw/hourly for the annual report: {raw_year / median(full_t):,.0f}x")
            if not args.skip_disk:
                year = (n_hourly, _du(server.workdir / "data" / "tiers" / "rollup_1h"))
                disk(server, args.slice_series, args.slice_hours, year)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
