#!/usr/bin/env python3
"""Memory and disk of the writer through an InfluxDB outage at a given sample rate.

InfluxDB is "down" (a closed loopback port) for ``--minutes``; samples arrive
at ``--rate`` per second (default: the demo site's rate, ≈150 samples/s); the
writer spools to disk.  Prints peak RSS growth, spool size, and checks that
nothing was dropped.  Then a real influxd comes up on that port and the spool
is replayed; prints the replay time and verifies every point arrived.

    python bench/outage_footprint.py [--minutes 10] [--rate 150]
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contract.sample import Sample  # noqa: E402
from sinks.influx_writer import InfluxConfig, InfluxWriter  # noqa: E402
from localservers.influx import InfluxServer  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main_async(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="outage-"))
    server = InfluxServer(tmp / "influxd")  # port reserved, not started: the outage
    cfg = InfluxConfig(url=server.url, database="bench", api="v1", spool_dir=str(tmp / "spool"),
                       spill_after_s=2.0, max_backoff_s=5.0)
    w = await InfluxWriter(cfg).start()
    base = rss_mb()
    n = 0
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    tick = 0.1
    per_tick = max(1, int(args.rate * tick))
    peak_spool = 0
    while time.monotonic() < end:
        now = time.time_ns()
        batch = [Sample("pdu", {"site": "tetouan", "hall": "h1", "row": f"r{i % 4}", "rack": f"k{i % 24}",
                                "device": f"pdu-{i % 48}", "vendor": "apc", "model": "AP8959EU3", "outlet": str(i % 24)},
                        {"current_a": 1.5 + (n + i) % 7, "power_w": 300.0 + i, "energy_kwh": 1000.0 + n / 1000},
                        now + i) for i in range(per_tick)]
        n += len(batch)
        w.write(batch)
        if w.spool is not None:
            peak_spool = max(peak_spool, w.spool.bytes)
        await asyncio.sleep(tick)
    outage_s = time.monotonic() - t0
    peak = rss_mb() - base
    spool = w.spool
    print(f"outage {outage_s / 60:.1f} min at {args.rate} samples/s: {n:,} samples produced")
    print(f"peak RSS growth {peak:.1f} MiB (bounded: memory queue max {cfg.max_memory_batches} batches); "
          f"spool {peak_spool / 2**20:.2f} MiB on disk in {len(spool)} batches; dropped {spool.dropped_points}")
    server.start()
    server.create_database("bench")
    r0 = time.monotonic()
    ok = await w.flush(600)
    print(f"replay after InfluxDB came back: {time.monotonic() - r0:.1f} s, all flushed: {ok}")
    await w.close()
    body = server.query('SELECT count("power_w") FROM "pdu"', db="bench")
    stored = body["results"][0]["series"][0]["values"][0][1]
    server.stop()
    print(f"points in InfluxDB: {stored:,} of {n:,} produced; lost {n - stored}")
    return 0 if stored == n else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=150.0, help="samples per second")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
