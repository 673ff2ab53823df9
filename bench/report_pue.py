#!/usr/bin/env python3
"""PUE report computation speed against the least work any method must do.

Workload: N meters x D days of counter readings every S seconds (with a reset
and a 32-bit wrap on the boundary meter), one report (hourly energy, monthly
KPIs, coverage, bridging).  Peer, same run: one pass per meter summing the
positive steps of its counter — touching each reading once, nothing else.
The ratio says what the audit-grade method (sorting, dedup, windows,
interpolation at hour boundaries, coverage) costs over that floor.

    python bench/report_pue.py [--meters 8] [--days 31] [--step 60] [--rounds 3]
"""
from __future__ import annotations

import argparse
import calendar
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import alternate, median  # noqa: E402
from inventory.loader import load_site_text  # noqa: E402
from reports.pue import compute_report  # noqa: E402

WRAP = 2 ** 32 / 1000


def make(meters: int, days: int, step: int):
    start = calendar.timegm((2026, 1, 1, 0, 0, 0))
    end = start + days * 86400
    devs = ["  - {id: m-0, kind: meter, protocol: none, meter: {role: boundary, source: grid}}"]
    devs += [f"  - {{id: m-{i}, kind: meter, protocol: none, meter: {{role: it, category: 1}}}}" for i in range(1, meters)]
    site = load_site_text("site: {id: bench, grid_emission_kgco2e_per_kwh: 0.5}\ndevices:\n" + "\n".join(devs) + "\n")
    n = (end - start) // step
    readings = {}
    for m in range(meters):
        c = WRAP - 500.0 if m == 0 else 1000.0 * m
        rs = []
        for k in range(n + 1):
            c += (300 + 20 * math.sin(k / 50 + m)) * step / 3600
            v = c % WRAP if m == 0 else c
            if m == 0 and k == n // 2:
                c = 0.0
            rs.append((float(start + k * step), v))
        readings[f"m-{m}"] = {"energy_kwh": rs}
    return site, readings, start, end


def ours(site, readings, start, end) -> float:
    r = compute_report(site_id="bench", site_name="bench", meters=site.all_devices(), readings=readings,
                       start_s=start, end_s=end, category=1, default_emission_factor=0.5)
    return r.total.e_dc_kwh


def floor(readings) -> float:
    total = 0.0
    for fields in readings.values():
        prev = None
        for _, v in fields["energy_kwh"]:
            if prev is not None and v >= prev:
                total += v - prev
            prev = v
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=8)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--step", type=int, default=60, help="seconds between readings")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=50.0, help="stop starting rounds after this long")
    a = ap.parse_args()
    site, readings, start, end = make(a.meters, a.days, a.step)
    n = sum(len(f["energy_kwh"]) for f in readings.values())
    print(f"workload: {a.meters} meters x {a.days} days every {a.step} s = {n:,} readings")
    runs = alternate(lambda: ours(site, readings, start, end), lambda: floor(readings), a.rounds, a.budget_s)
    t_ours, t_floor, skipped = runs.a_s, runs.b_s, runs.skipped
    if not t_ours:
        print("no stable round (CPU speed drifted); rerun")
        return 1
    mo, mf = median(t_ours), median(t_floor)
    print(f"report (ours):       {mo * 1000:8.1f} ms  {n / mo:12,.0f} readings/s")
    print(f"one-pass floor:      {mf * 1000:8.1f} ms  {n / mf:12,.0f} readings/s")
    print(f"ratio ours/floor:    {mo / mf:8.2f}x   ({len(t_ours)} stable rounds, {skipped} discarded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
