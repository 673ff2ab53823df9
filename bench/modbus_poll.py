"""Modbus polling throughput and CPU: ModbusCollector vs mbpoll (C, libmodbus).

Both sides read the same thing from the same pymodbus server (a subprocess, so
its CPU is not counted): ``--units`` unit ids behind one TCP endpoint, 125
holding registers each (one full-size read per unit per round).

- collector: one ModbusCollector, a 125-point uint16 profile, every unit polled
  concurrently (asyncio.gather) through the shared gateway, ``--in-flight``
  connections; each poll plans, reads, decodes and builds its Sample.
- mbpoll: ``--in-flight`` mbpoll processes in parallel, each reading its share of
  the unit ids (``-a 1,2,...``) once per round; CPU from RUSAGE_CHILDREN.

Runs alternate A B A B; medians are reported, with a fixed CPU calibration loop
before and after each pair (pairs where it moved more than 25% are dropped,
because the shared machine's speed drifts).

    python bench/modbus_poll.py            # about 60 s
    python bench/modbus_poll.py --quick    # about 15 s
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.base import Target  # noqa: E402
from collectors.modbus.collector import ModbusCollector  # noqa: E402
from localservers.process import ManagedProcess, free_port, wait_for_port  # noqa: E402

REGS = 125


def calibrate() -> float:
    """CPU seconds for a fixed pure-Python loop: a yardstick for machine drift."""
    t0 = time.process_time()
    x = 0
    for i in range(300_000):
        x += i * i % 7
    return time.process_time() - t0


def write_profile(folder: Path) -> Path:
    lines = ["name: bench_125", "measurement: env", "defaults: {function: holding, type: uint16}", "points:"]
    lines += [f"  - {{field: r{i:03d}_pct, address: {i}}}" for i in range(REGS)]
    path = folder / "bench_125.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def collector_round(c: ModbusCollector, targets: list[Target]) -> int:
    results = await asyncio.gather(*(c.poll(t) for t in targets), return_exceptions=True)
    bad = [r for r in results if isinstance(r, BaseException)]
    if bad:
        raise RuntimeError(f"collector poll failed: {bad[0]!r}")
    # check the values arrived, not just that something did
    first = results[0][0].fields
    assert first["r000_pct"] == 1000 and first["r124_pct"] == 1124, first
    return len(targets)


def run_collector(loop, c, targets, rounds: int) -> tuple[float, float, int]:
    w0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _ in range(rounds):
        n += loop.run_until_complete(collector_round(c, targets))
    return time.perf_counter() - w0, time.process_time() - c0, n


def run_mbpoll(mbpoll: str, port: int, units: int, in_flight: int, rounds: int) -> tuple[float, float, int]:
    groups = [list(range(1 + k, units + 1, in_flight)) for k in range(in_flight)]
    groups = [g for g in groups if g]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    n = 0
    for _ in range(rounds):
        procs = [
            subprocess.Popen(
                [mbpoll, "-m", "tcp", "-p", str(port), "-a", ",".join(map(str, g)), "-r", "0", "-0",
                 "-c", str(REGS), "-t", "4", "-1", "-o", "2", "127.0.0.1"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            for g in groups
        ]
        for p, g in zip(procs, groups):
            out, _ = p.communicate(timeout=30)
            got = out.count(b"\n[")
            if p.returncode != 0 or got != REGS * len(g):
                raise RuntimeError(f"mbpoll failed (rc {p.returncode}, {got} values): {out[-300:]!r}")
            n += len(g)
    wall = time.perf_counter() - w0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return wall, cpu, n


def mbpoll_marginal_cpu(mbpoll: str, port: int, units: int, procs: int = 8) -> float:
    """CPU seconds per extra read inside one mbpoll process (start-up cost taken out).

    The slope between processes reading 1 unit and processes reading ``units``
    units, 125 registers each: what libmodbus costs per request once running.
    """
    def cost(addr: str) -> float:
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(procs):
            subprocess.run([mbpoll, "-m", "tcp", "-p", str(port), "-a", addr, "-r", "0", "-0", "-c", str(REGS), "-t", "4",
                            "-1", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=30)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) / procs

    slopes = []
    for _ in range(3):
        one, many = cost("1"), cost(f"1:{units}")
        slopes.append((many - one) / (units - 1))
    return statistics.median(slopes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (~15 s)")
    ap.add_argument("--units", type=int, default=50)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--budget-s", type=float, default=90.0, help="hard stop for the measuring loop")
    args = ap.parse_args()
    pairs = 3 if args.quick else 7
    rounds = 3 if args.quick else 6
    budget = min(args.budget_s, 30.0 if args.quick else 90.0)

    mbpoll = shutil.which("mbpoll") or "/usr/bin/mbpoll"
    if not os.path.exists(mbpoll):
        sys.exit("mbpoll not found: apt-get install mbpoll")
    tmp = Path(tempfile.mkdtemp(prefix="bench-modbus-"))
    port = free_port()
    server = ManagedProcess(
        [sys.executable, "-m", "testkit.modbus", "--port", str(port), "--units", str(args.units), "--registers", str(REGS)],
        tmp / "server.log", cwd=str(Path(__file__).resolve().parents[1]),
    ).start(lambda p: wait_for_port(port, proc=p.proc))
    profile = write_profile(tmp)
    targets = [
        Target(device_id=f"u{u}", protocol="modbus", host="127.0.0.1", port=port, unit=u, profile=str(profile),
               timeout_s=5.0, retries=0, options={"max_in_flight": args.in_flight})
        for u in range(1, args.units + 1)
    ]
    loop = asyncio.new_event_loop()
    c = ModbusCollector()
    rows = {"collector": [], "mbpoll": []}
    dropped = 0
    started = time.monotonic()
    try:
        run_collector(loop, c, targets, 1)  # connect and warm up
        run_mbpoll(mbpoll, port, args.units, args.in_flight, 1)
        marginal = mbpoll_marginal_cpu(mbpoll, port, args.units)
        for i in range(pairs):
            if time.monotonic() - started > budget:
                print(f"stopping after {i} pairs: {budget:.0f}s budget spent")
                break
            cal0 = calibrate()
            order = ("collector", "mbpoll") if i % 2 == 0 else ("mbpoll", "collector")
            pair = {}
            for side in order:
                if side == "collector":
                    pair[side] = run_collector(loop, c, targets, rounds)
                else:
                    pair[side] = run_mbpoll(mbpoll, port, args.units, args.in_flight, rounds)
            cal1 = calibrate()
            if abs(cal1 - cal0) / min(cal0, cal1) > 0.25:
                dropped += 1
                continue
            for side, r in pair.items():
                rows[side].append(r)
    finally:
        loop.run_until_complete(c.close())
        loop.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if not rows["collector"]:
        sys.exit("every pair was dropped: the machine's speed drifted too much; run again")
    print(f"Modbus TCP, {args.units} unit ids x {REGS} holding registers, {args.in_flight} in flight, "
          f"{rounds} rounds per run, {len(rows['collector'])} pairs kept ({dropped} dropped for drift)")
    print(f"{'side':<10} {'requests/s':>11} {'registers/s':>12} {'CPU us/request':>15} {'CPU us/register':>16}")
    med = {}
    for side, runs in rows.items():
        rps = statistics.median(n / w for w, _, n in runs)
        cpu = statistics.median(cpu / n for _, cpu, n in runs) * 1e6
        med[side] = (rps, cpu)
        print(f"{side:<10} {rps:>11.0f} {rps * REGS:>12.0f} {cpu:>15.1f} {cpu / REGS:>16.3f}")
    net = marginal * 1e6
    print(f"mbpoll steady state (slope of 1 vs {args.units} reads per process): {net:.1f} us CPU/request")
    print(f"ratio collector/mbpoll: throughput {med['collector'][0] / med['mbpoll'][0]:.2f}x, "
          f"CPU per request {med['collector'][1] / med['mbpoll'][1]:.2f}x "
          "(mbpoll CPU includes process start-up per round; the server is a pymodbus subprocess, not counted)")
    if net > 0:
        print(f"ratio collector/mbpoll net of start-up: CPU per request {med['collector'][1] / net:.2f}x")


if __name__ == "__main__":
    main()
