#!/usr/bin/env python3
"""Reading a report's meter data from a real influxd: our month-chunked plan against one query per meter.

Ours (reports.query): per field and calendar month, one bounded SELECT for all
meters with GROUP BY "device", plus the edge anchors.  Peer, same run, same
server and data: the obvious plan — one SELECT per meter over the whole
period.  Both must return the same readings (the SHA-256 is compared), so the
ratio is cost only.

    python bench/report_query.py [--meters 8] [--days 62] [--step 60] [--rounds 3]
"""
from __future__ import annotations

import argparse
import calendar
import sys
import tempfile
import time
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import alternate, median  # noqa: E402
from reports.query import canonical_hash, fetch_readings  # noqa: E402
from sinks.influx_query import InfluxQuery  # noqa: E402
from localservers.influx import InfluxServer  # noqa: E402


def load(url: str, db: str, meters: int, start: int, end: int, step: int) -> int:
    http = urllib3.PoolManager()
    lines, n = [], 0
    for m in range(meters):
        c = 1000.0 * m
        for t in range(start, end + 1, step):
            c += 0.005 * (m + 1)
            lines.append(f"meter,device=m-{m} energy_kwh={c!r} {t}")
            lines.append(f"meter,device=m-{m},phase=L1 energy_kwh={c / 3!r} {t}")
    for i in range(0, len(lines), 20000):
        r = http.request("POST", f"{url}/write?db={db}&precision=s", body="\n".join(lines[i:i + 20000]).encode(),
                         timeout=60.0, retries=False)
        if r.status != 204:
            raise RuntimeError(f"write failed: {r.status} {r.data[:200]!r}")
        n += len(lines[i:i + 20000])
    return n


def peer(client: InfluxQuery, ids: list[str], start: int, end: int) -> str:
    readings = {}
    ts = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    for i in ids:
        rows = []
        for s in client.query(f"SELECT \"energy_kwh\" FROM \"meter\" WHERE \"device\" = '{i}' AND \"phase\" = '' "
                              f"AND time >= '{ts(start)}' AND time < '{ts(end)}'", epoch="ms"):
            rows += [(v[0] / 1000.0, float(v[1])) for v in s.values]
        # the peer also needs the anchors around the period: same two edge queries
        for q in (f"SELECT last(\"energy_kwh\") FROM \"meter\" WHERE \"device\" = '{i}' AND \"phase\" = '' "
                  f"AND time >= '{ts(start - 7 * 86400)}' AND time < '{ts(start)}'",
                  f"SELECT first(\"energy_kwh\") FROM \"meter\" WHERE \"device\" = '{i}' AND \"phase\" = '' "
                  f"AND time >= '{ts(end)}' AND time < '{ts(end + 7 * 86400)}'"):
            for s in client.query(q, epoch="ms"):
                rows += [(v[0] / 1000.0, float(v[1])) for v in s.values]
        readings[i] = {"energy_kwh": sorted(rows)}
    return canonical_hash(readings)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=8)
    ap.add_argument("--days", type=int, default=62)
    ap.add_argument("--step", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=45.0)
    a = ap.parse_args()
    start = calendar.timegm((2026, 1, 1, 0, 0, 0))
    end = start + a.days * 86400
    ids = [f"m-{m}" for m in range(a.meters)]
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxServer(Path(tmp)).start()
        try:
            server.create_database("bench")
            t = time.perf_counter()
            n = load(server.url, "bench", a.meters, start, end - a.step, a.step)
            print(f"loaded {n:,} points ({a.meters} meters x {a.days} days every {a.step} s, totals + one phase) "
                  f"in {time.perf_counter() - t:.1f} s")
            client = InfluxQuery(server.url, "bench", timeout_s=120.0)
            runs = alternate(
                lambda: fetch_readings(client, [(i, "energy_kwh") for i in ids], start, end, progress=False),
                lambda: peer(client, ids, start, end), a.rounds, a.budget_s,
                agree=lambda got, h_peer: got.sha256 == h_peer)
            if runs.disagreed:
                print("MISMATCH: the two plans returned different readings")
                return 1
            t_ours, t_peer, skipped, ours = runs.a_s, runs.b_s, runs.skipped, runs.last_a
        finally:
            server.stop()
    if not t_ours:
        print("no stable round; rerun")
        return 1
    readings = sum(len(f["energy_kwh"]) for f in ours.readings.values())
    mo, mp = median(t_ours), median(t_peer)
    print(f"ours  ({len(ours.queries)} queries): {mo:7.3f} s  {readings / mo:10,.0f} readings/s")
    print(f"peer  ({3 * len(ids)} queries): {mp:7.3f} s  {readings / mp:10,.0f} readings/s")
    print(f"ratio peer/ours: {mp / mo:.2f}x  (same SHA-256 {ours.sha256[:12]}; {len(t_ours)} stable rounds, "
          f"{skipped} discarded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
