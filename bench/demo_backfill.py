"""What the demo's backfilled history costs, against live polling of the same twin.

The backfill (``dcim/backfill.py``) polls every device of the example site at
instants in the past through the real collectors, and hands the samples to the
derived job and the rule engine as live polling does.  Its cost per device-poll
should be what live polling costs: the history is made of polls, nothing else.
This script runs, in one process with the twin on free loopback ports, A = a
backfill over ``--days`` days (the demo's steps: whole site every 6 h, meters
every hour) and B = the collection service polling the same devices live for a
comparable number of polls, alternating A B A B, and prints CPU per device-poll
for both, their ratio, and the CPU a 30-day backfill costs at the A figure.
No InfluxDB: the writer's cost is the same in both and measured by
bench/influx_write.py.

    python bench/demo_backfill.py [--days 3] [--pairs 2] [--max-seconds 240]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, median, stable  # noqa: E402


async def _parts(site, state_dir: Path):
    from alerts.runtime import AlertRuntime
    from dcim.service import CollectionService
    from derived.job import DerivedMetrics

    service = CollectionService(site, None)
    dm = DerivedMetrics(site)
    rt = AlertRuntime(site, ROOT / "alerts" / "rules" / "site.yaml", state_dir=state_dir, mqtt=None)
    service.add_consumer(dm.consume)
    service.add_consumer(rt.consume)
    return service, dm, rt


async def run_backfill(twin, site, days: float, state_dir: Path) -> tuple[float, int]:
    """(CPU s, polls) of one backfill over ``days`` ending now."""
    from dcim.backfill import backfill, history_faults

    service, dm, rt = await _parts(site, state_dir)
    now = time.time()
    start = (now - days * 86400) // 21600 * 21600
    c0 = time.process_time()
    result = await backfill(twin, service, start, 21600, faults=history_faults(site, start, now),
                            after_step=[dm.compute, rt.tick])
    cpu = time.process_time() - c0
    await service.stop()
    await rt.stop()
    return cpu, result.polls


async def run_live(site, polls_wanted: int, max_s: float, state_dir: Path) -> tuple[float, int]:
    """(CPU s, polls) of the collection service polling live until ``polls_wanted`` polls."""
    service, dm, rt = await _parts(site, state_dir)
    c0 = time.process_time()
    await service.start()
    end = time.monotonic() + max_s
    while service.scheduler.stats.polls < polls_wanted and time.monotonic() < end:
        await asyncio.sleep(0.5)
        dm.compute(time.time_ns())
        await rt.tick()
    polls = service.scheduler.stats.polls
    await service.stop()
    cpu = time.process_time() - c0
    await rt.stop()
    return cpu, polls


def _polls(site, days: float) -> int:
    """Polls of a ``days`` backfill with the demo's steps: the whole site every 6 h and at each
    15-min step of a fault and the one after it, the meters alone every other hour."""
    from dcim.backfill import METER_STEP_S, SUBSTEP_S, history_faults

    n_site, n_meters = len(site.polled_devices()), sum(d.kind == "meter" for d in site.polled_devices())
    span = days * 86400
    fault_rounds = sum(round((f.end_s - f.start_s) / SUBSTEP_S) + 1 for f in history_faults(site, 0.0, span))
    site_rounds = int(span // 21600) + 1 + fault_rounds
    meter_rounds = int(span // METER_STEP_S) - int(span // 21600)
    return site_rounds * n_site + meter_rounds * n_meters


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=240.0)
    args = ap.parse_args()

    from dcim.demo import DEMO_SECRETS
    from simulator.twin import Twin
    from testkit.site import EXAMPLE_SITE, load_relocated

    for k, v in DEMO_SECRETS.items():
        os.environ.setdefault(k, v)
    site = load_relocated(EXAMPLE_SITE)
    site.defaults.interval_s = 2.0  # live: the demo's test interval, so B is about as short as A
    for dev in site.all_devices():
        if dev.interval_s:
            dev.interval_s = 2.0
    logging.basicConfig(level=logging.ERROR)
    deadline = time.monotonic() + args.max_seconds
    a_ms: list[float] = []
    b_ms: list[float] = []
    polls_a = 0
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            if time.monotonic() > deadline:
                break
            before = calibrate()
            twin = Twin(site, seed=pair + 1, clock=lambda: time.time() - args.days * 86400)
            await twin.start()
            cpu_a, polls_a = await run_backfill(twin, site, args.days, Path(tmp) / f"a{pair}")
            cpu_b, polls_b = await run_live(site, polls_a, max(10.0, deadline - time.monotonic()), Path(tmp) / f"b{pair}")
            await twin.stop()
            after = calibrate()
            if not stable(before, after) or not polls_b:
                print(f"pair {pair}: calibration moved {before:.3f} -> {after:.3f} s, discarded")
                continue
            a_ms.append(cpu_a / polls_a * 1000)
            b_ms.append(cpu_b / polls_b * 1000)
            print(f"pair {pair}: backfill {polls_a:,} polls {cpu_a:.2f} s CPU; live {polls_b:,} polls {cpu_b:.2f} s CPU")
    if not a_ms:
        print("no stable pair: the machine's speed moved under every run")
        return 1
    a, b = median(a_ms), median(b_ms)
    polls_30d = _polls(site, 30.0)
    print(f"backfill {a:.2f} ms CPU per device-poll vs live polling {b:.2f} ms ({a / b:.2f}x), "
          f"median of {len(a_ms)} pair(s); the twin's endpoints, collectors, derived job and rule engine, no writer")
    print(f"30-day backfill of the example site (the demo's default): {polls_30d:,} polls ≈ "
          f"{polls_30d * a / 1000:.1f} s CPU (shared 2-core machine: absolute times drift, the ratio is the figure)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
