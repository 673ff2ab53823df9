#!/usr/bin/env python3
"""Writer throughput into a real influxd, and writer CPU per 1,000 points.

Peer, same run: the same samples turned into line protocol with
influxdb-client's ``Point`` (the library's documented way), then sent by the
same transport.  Prints points/s into InfluxDB (the server is usually the
bottleneck on 2 cores) and the writer's own CPU per 1,000 points for both.

    python bench/influx_write.py [--points 200000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import calibrate, median, stable  # noqa: E402
from contract.sample import Sample  # noqa: E402
from sinks.influx_writer import InfluxConfig, InfluxWriter  # noqa: E402
from sinks.lineprotocol import sample_line  # noqa: E402
from localservers.influx import InfluxServer  # noqa: E402


def make_samples(n: int) -> list[Sample]:
    out = []
    t0 = 1_700_000_000_000_000_000
    for i in range(n):
        dev = i % 500
        out.append(Sample("pdu", {"site": "tetouan", "hall": "h1", "row": f"r{dev % 20:02d}", "rack": f"k{dev:04d}",
                                  "device": f"pdu-{dev}", "vendor": "apc", "model": "AP8959EU3", "phase": f"L{i % 3 + 1}"},
                          {"current_a": 12.3 + i % 10, "voltage_v": 230.1, "power_w": 2830.0 + i % 100, "energy_kwh": 1234.5 + i},
                          t0 + (i // 1500) * 10_000_000_000 + i))
    return out


def lines_ours(samples):
    cache: dict = {}
    return [sample_line(s, cache) for s in samples]


def lines_point(samples):
    from influxdb_client import Point

    out = []
    for s in samples:
        p = Point(s.measurement)
        for k, v in s.tags.items():
            p.tag(k, v)
        for k, v in s.fields.items():
            p.field(k, v)
        p.time(s.time_ns)
        out.append(p.to_line_protocol())
    return out


async def write_all(url: str, db: str, samples, builder) -> tuple[float, float, int]:
    w = await InfluxWriter(InfluxConfig(url=url, database=db, api="v1", batch_size=5000)).start()
    wall = time.perf_counter()
    cpu = time.process_time()
    lines = builder(samples)
    build_cpu = time.process_time() - cpu
    w.write_lines(lines)
    await w.flush(300)
    elapsed = time.perf_counter() - wall
    total_cpu = time.process_time() - cpu
    await w.close()
    return build_cpu, total_cpu, elapsed, w.stats.points_written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    samples = make_samples(args.points)
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxServer(Path(tmp)).start()
        try:
            ours_cpu, point_cpu, ours_rate, point_rate = [], [], [], []
            for r in range(args.rounds):
                for name, builder, cpu_list, rate_list in (("ours", lines_ours, ours_cpu, ours_rate),
                                                           ("point", lines_point, point_cpu, point_rate)):
                    db = f"bench_{name}_{r}"
                    server.create_database(db)
                    c0 = calibrate()
                    build_cpu, total_cpu, elapsed, written = asyncio.run(write_all(server.url, db, samples, builder))
                    c1 = calibrate()
                    if written != len(samples):
                        print(f"round {r} {name}: wrote {written} of {len(samples)}", file=sys.stderr)
                        return 1
                    if not stable(c0, c1):
                        print(f"round {r} {name}: machine speed moved ({c0:.3f}s -> {c1:.3f}s), discarded")
                        continue
                    cpu_list.append((build_cpu / len(samples) * 1e6, total_cpu / len(samples) * 1e6))  # ms per 1000 points
                    rate_list.append(len(samples) / elapsed)
        finally:
            server.stop()
    if not ours_cpu or not point_cpu:
        print("no stable round: the machine's speed kept moving; run again")
        return 1
    o, p = median([c[0] for c in ours_cpu]), median([c[0] for c in point_cpu])
    ot, pt = median([c[1] for c in ours_cpu]), median([c[1] for c in point_cpu])
    print(f"points per round: {args.points}, rounds kept: {len(ours_cpu)}/{len(point_cpu)}")
    print(f"line protocol CPU per 1,000 points: ours {o:.2f} ms, influxdb-client Point {p:.2f} ms, ratio {p / o:.1f}x")
    print(f"writer CPU per 1,000 points incl. gzip-1 and HTTP: ours {ot:.2f} ms, Point {pt:.2f} ms, ratio {pt / ot:.1f}x")
    print(f"points/s into influxd 1.6 (end to end, server-bound): ours {median(ours_rate):,.0f}, Point {median(point_rate):,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
