#!/usr/bin/env python3
"""Capacity report for the generated full site over a month, against the bare InfluxQL it needs.

Inventory: the full generated site (``dcim inventory generate``: 24 halls, 43,200 GPU
nodes, 5,400 racks, 10,800 PDUs, …), whose inventory side (ratings, allocations,
usable capacity of every element) the report computes from the derived job's own
function.  Storage: a *scaled slice*: the derived ``capacity`` samples of the first
``--halls`` halls only (every element of them, all six levels), one per ``--step``
(default hourly) for ``--days`` (default 30), written raw and rolled up into the
hourly tier by ``storage.admin.backfill`` — setup, not measured.  The report reads
the hourly tier (``--tier 1h``), as a month-long window would on a site whose
1-minute tier is not kept that long.

Measured, alternating A B A B, medians, rounds discarded when a CPU calibration
loop moved by more than 25 %:

* A — ``build_capacity_report`` (tier choice, the six level queries, decoding,
  the pure join with the full site's inventory, input hash), the plan built once;
* B — the peer: the same six ``max``/``percentile`` statements run and decoded by
  ``InfluxQuery``, nothing else: the floor any method that asks InfluxDB must pay.

Also printed once: the inventory side's cost (``ChainPlan`` + capacity samples with
no readings) for the full site, and the rendering of the CSV and HTML.

    python bench/report_capacity.py [--halls 1] [--days 30] [--step 3600] [--rounds 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import alternate, median  # noqa: E402

T0 = 1_793_491_200   # 2026-11-01T00:00:00Z


def _post(url: str, db: str, lines: list[str]) -> None:
    for i in range(0, len(lines), 20_000):
        body = "\n".join(lines[i:i + 20_000]).encode()
        req = urllib.request.Request(f"{url}/write?db={db}&precision=s", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=300) as resp:
            resp.read()


def _slice_lines(inventory: dict, halls: set[str], site_id: str, days: int, step: int) -> list[str]:
    """Capacity samples for the elements of ``halls`` (and transformers, which have no hall):
    design load = usable × a daily wave between 35 % and 75 %, own load = half of it for
    redundant pairs; allocation and ratings as the inventory has them."""
    out = []
    n = days * 86400 // step
    chosen = [(k, s) for k, s in inventory.items() if s.tags.get("hall", "") in halls or k[0] == "transformer"]
    for j, ((level, ident), s) in enumerate(chosen):
        f = s.fields
        usable = f.get("usable_w") or f.get("rated_w") or 100_000.0
        tags = ",".join(f"{k}={v}" for k, v in sorted(s.tags.items()) if v)
        static = (f'allocated_w={f.get("allocated_w", 0.0)},rated_w={f.get("rated_w") or 0.0},'
                  f'usable_w={usable},redundancy="{f.get("redundancy", "")}"')
        for i in range(n):
            x = 0.55 + 0.2 * math.sin(2 * math.pi * (i * step / 86400.0) + j * 0.7) + 0.02 * ((i * 7919 + j) % 13)
            design = usable * x
            own = design / 2 if f.get("redundancy") in ("2N", "2N+1") and level in ("pdu", "ups") else design
            out.append(f"capacity,{tags} design_load_w={design:.1f},load_w={own:.1f},"
                       f"headroom_pct={100 * (1 - x):.3f},{static} {T0 + i * step}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--halls", type=int, default=1, help="halls of the full site with samples (the slice)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step", type=int, default=3600, help="seconds between derived samples in the slice")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=240.0, help="stop starting rounds after this long")
    a = ap.parse_args()

    from derived.chain_plan import ChainPlan
    from derived.power_chain import ReadingIndex, capacity_samples
    from inventory.generate import FULL_SITE, generate_site
    from inventory.model import Site
    from localservers.influx import InfluxServer
    from reports.capacity import inventory_side
    from reports.capacity_query import build_capacity_report, plan_capacity_queries
    from reports.capacity_render import render_capacity
    from sinks.influx_query import InfluxQuery
    from storage.admin import backfill, init, read_tiers
    from storage.tiers import StorageConfig

    t = time.perf_counter()
    site = Site.model_validate(generate_site(dataclasses.replace(FULL_SITE)))
    t_site = time.perf_counter() - t
    t = time.perf_counter()
    plan = ChainPlan(site)
    inventory = inventory_side(capacity_samples(plan, ReadingIndex(), 0))
    t_inv = time.perf_counter() - t
    t = time.perf_counter()
    capacity_samples(plan, ReadingIndex(), 0)
    t_samples = time.perf_counter() - t
    halls = {h.id for h in site.halls[:a.halls]}
    by_level: dict[str, int] = {}
    for lvl, _ in inventory:
        by_level[lvl] = by_level.get(lvl, 0) + 1
    print(f"full site: {len(site.all_devices()):,} devices, {len(inventory):,} capacity elements "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(by_level.items()))}); loaded in {t_site:.1f} s, "
          f"inventory side (ChainPlan + capacity samples, no readings) {t_inv:.2f} s, "
          f"of which the capacity samples (redone by every report) {t_samples:.2f} s")
    lines = _slice_lines(inventory, halls, site.site.id, a.days, a.step)
    elements = len(lines) // max(1, a.days * 86400 // a.step)
    print(f"slice: halls {sorted(halls)} + transformers = {elements:,} elements x {a.days} days every {a.step} s "
          f"= {len(lines):,} samples (raw), rolled up into the 1h tier")

    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxServer(Path(tmp)).start()
        try:
            server.create_database("bench")
            client = InfluxQuery(server.url, "bench", timeout_s=600)
            t = time.perf_counter()
            _post(server.url, "bench", lines)
            cfg = StorageConfig()
            init(client, cfg)
            end = T0 + a.days * 86400
            written = backfill(client, cfg, T0 * 10**9, end * 10**9, tiers=[cfg.tier("1h")])
            print(f"setup: written and rolled up in {time.perf_counter() - t:.1f} s ({written})")
            tier = next(x for x in read_tiers(client) if x.name == "1h")
            stmts = [q for _, q in plan_capacity_queries(site.site.id, T0, end, tier)]

            def ours():
                return build_capacity_report(site, client, T0, end, tier="1h", plan=plan)

            def peer():
                return sum(len(s.values) for q in stmts for s in client.query(q, epoch="ms"))

            rep = ours()
            measured = sum(1 for r in rep.rows if r.peak_w is not None)
            assert measured == elements, (measured, elements)
            assert peer() == elements
            t = time.perf_counter()
            csv_text = render_capacity(rep, "csv")
            page = render_capacity(rep, "html")
            print(f"rendering: csv {len(csv_text) / 1e6:.1f} MB + html {len(page) / 1e6:.1f} MB in "
                  f"{time.perf_counter() - t:.2f} s; {measured:,} of {len(rep.rows):,} rows measured")
            runs = alternate(ours, peer, a.rounds, a.budget_s)
            t_ours, t_peer, skipped = runs.a_s, runs.b_s, runs.skipped
        finally:
            server.stop()
    if not t_ours:
        print("no stable round (CPU speed drifted); rerun")
        return 1
    mo, mp = median(t_ours), median(t_peer)
    print(f"capacity report (ours, 1h tier): {mo:8.3f} s")
    print(f"peer: six InfluxQL max/percentile queries only: {mp:8.3f} s")
    print(f"ratio ours/peer: {mo / mp:.2f}x ({len(t_ours)} stable rounds, {skipped} discarded; shared machine: "
          "absolute times drift, the ratio carries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
