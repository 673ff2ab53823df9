"""Cost of the derived-metrics job on the collectors' hot path, against peers in the same run.

``DerivedMetrics.consume`` sees every sample the collectors produce, so it must
stay cheap next to what the pipeline already does with the same samples:

- peer 1: ``sinks.lineprotocol.samples_to_lines`` (the writer encoding the
  same batch for InfluxDB, fresh tag cache per round like a new batch);
- peer 2: ``dcim.live_view.LiveState`` (the demo's other consumer).

``compute`` (once per interval) is reported against consuming one interval's
samples.  The batch is one poll interval of the Tétouan example (one hall) as
the collectors shape it (PDU totals/phases/outlets, UPS phases, meters, 192
GPUs), replicated ``--scale`` times with distinct device ids, so ``consume``
sees ``--scale`` x the example's samples.  The copies are not in the site's
inventory, so ``compute`` still covers the one-hall example site (it filters
the larger table of latest readings, nothing more): for ``compute`` on a
bigger site use ``--full-site``.

``--full-site`` measures the whole 386 MW site instead (``dcim inventory
generate``'s ≈52,700 polled devices, ≈543,000 samples per interval), in CPU
seconds (``time.process_time``): ``compute`` against a plain-dict peer that only
sums every fresh reading's value once (the least any computation over the
interval's readings must do), and ``consume`` of the interval's samples.  The
process freezes its start-up objects out of the garbage collector's scans
(``gc.freeze()``), as ``dcim run`` does.

Runs alternate A B A B with a CPU calibration loop around each pair; pairs
where the calibration moved more than 25% are dropped; medians reported.

    python bench/derived_metrics.py              # about 20 s
    python bench/derived_metrics.py --quick      # about 5 s
    python bench/derived_metrics.py --full-site  # about 1-2 minutes (generates and loads the full site)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import calibrate, median, stable  # noqa: E402
from contract.sample import Sample  # noqa: E402
from dcim.live_view import LiveState  # noqa: E402
from derived.cooling_loops import loop_samples  # noqa: E402
from derived.job import DerivedMetrics  # noqa: E402
from derived.power_chain import ReadingIndex, compute_all, node_input_w  # noqa: E402
from inventory import load_site  # noqa: E402
from simulator.jobs import gpu_labels, namespaces_for  # noqa: E402
from sinks.lineprotocol import samples_to_lines  # noqa: E402

SITE = Path(__file__).resolve().parents[1] / "inventory" / "examples" / "tetouan.yaml"


def interval_batch(site, t: int) -> list[Sample]:
    """One poll interval of samples shaped like the collectors' (see docs/conventions.md), GPUs with
    the twin's workload labels."""
    out: list[Sample] = []
    namespaces = namespaces_for(site)
    for d in site.all_devices():
        tags = {k: v for k, v in site.location_tags(d).items() if k != "kind"}
        if d.kind == "pdu":
            out.append(Sample("pdu", {**tags, "pdu": "1"}, {"power_w": 13850.0, "energy_kwh": 10.5,
                                                            "apparent_power_va": 14130.0, "power_factor": 0.98}, t))
            out += [Sample("pdu", {**tags, "pdu": "1", "phase": p}, {"power_w": 4600.0, "current_a": 20.1,
                                                                    "voltage_v": 230.0}, t) for p in "123"]
            out += [Sample("pdu", {**tags, "pdu": "1", "outlet": str(o)}, {"power_w": 570.0, "current_a": 2.5,
                                                                          "energy_kwh": 1.0}, t) for o in range(1, 25)]
        elif d.kind == "ups":
            out += [Sample("ups", {**tags, "stage": "output", "phase": p}, {"power_w": 28000.0, "load_pct": 31.0,
                                                                           "current_a": 120.0}, t) for p in "123"]
            out += [Sample("ups", {**tags, "stage": "input", "phase": p}, {"power_w": 29000.0}, t) for p in "123"]
        elif d.kind == "meter":
            out.append(Sample("meter", tags, {"power_w": 84000.0, "energy_kwh": 1234.5, "frequency_hz": 50.0}, t))
            out += [Sample("meter", {**tags, "phase": p}, {"power_w": 28000.0, "current_a": 124.0}, t)
                    for p in ("L1", "L2", "L3")]
        elif d.kind == "gpu_node":
            # the workload labels the twin's DCGM pages carry (a pod per node and job: one series per GPU and pod)
            work = gpu_labels(0, d.id, d.rack or "", d.gpus or 0, t / 1e9, namespaces)
            out += [Sample("gpu", {**tags, "host": d.id, "gpu": str(i), "uuid": f"GPU-{d.id}-{i}", **dict(work[i])},
                           {"power_w": 650.0, "temp_c": 62.0, "util_pct": 90.0, "xid_last": 0.0,
                            "clock_event_reasons": 0}, t)
                    for i in range(d.gpus or 0)]
        elif d.kind == "cdu":  # as the CDU collectors write it (contract/cooling.py): one unit, its loops
            out.append(Sample("cdu", tags, {"power_w": 20000.0, "state": "running", "heat_removed_w": 9e5}, t))
            out.append(Sample("cdu", {**tags, "side": "primary", "loop": "1"},
                              {"supply_temp_c": 18.0, "return_temp_c": 26.0, "flow_lpm": 1800.0}, t))
            out += [Sample("cdu", {**tags, "side": "secondary", "loop": lp},
                           {"supply_temp_c": 32.0, "return_temp_c": 41.0, "flow_lpm": 900.0,
                            "differential_pressure_kpa": 80.0}, t) for lp in d.loop_ids()]
            out += [Sample("cdu", {**tags, "pump": p}, {"state": "running", "speed_rpm": 2400.0}, t) for p in "12"]
            out.append(Sample("cdu", {**tags, "detector": "1"}, {"state": "dry"}, t))
        elif d.kind in ("chiller", "crah"):
            out.append(Sample(d.kind, tags, {"power_w": 20000.0, "running": True}, t))
        out.append(Sample("poll", {**tags, "protocol": d.protocol}, {"ok": True, "duration_ms": 3.0}, t))
    return out


def scaled(batch: list[Sample], scale: int) -> list[Sample]:
    out = list(batch)
    for k in range(1, scale):
        out += [Sample(s.measurement, {**s.tags, "device": f"{s.tags.get('device')}-x{k}"}, s.fields, s.time_ns)
                for s in batch]
    return out


def timed(fn: Callable[[], object], repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def plain_sum(groups: dict, oldest_ns: int) -> float:
    """The peer: one pass over the fresh readings the job keeps, summing their values (no
    per-device sums, no inventory): the least any computation over them must do."""
    total = 0.0
    for group in groups.values():
        for value, t in group.values():
            if t >= oldest_ns:
                total += value
    return total


def cpu_timed(fn: Callable[[], object]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def full_site(rounds: int, max_seconds: float) -> int:
    import gc

    from inventory.generate import FULL_SITE, dump_site, generate_site
    from inventory.loader import load_site_text

    t0 = time.process_time()
    site = load_site_text(dump_site(generate_site(FULL_SITE)), "full-site.yaml")
    t = time.time_ns()
    batch = interval_batch(site, t)
    dm = DerivedMetrics(site)
    setup = time.process_time() - t0
    dm.consume(batch)  # the first interval grows the dicts; measured intervals replace values
    gc.freeze()
    oldest = t - dm.stale_ns
    results: dict[str, list[float]] = {"consume": [], "compute": [], "plain": [], "power": [], "loops": []}
    deadline = time.monotonic() + max_seconds
    dropped = 0
    n_out = 0
    for _ in range(rounds):
        if time.monotonic() > deadline:
            break
        before = calibrate()
        a = cpu_timed(lambda: dm.consume(batch))
        out: list = []
        b = cpu_timed(lambda: out.extend(dm.compute(t)))
        c = cpu_timed(lambda: plain_sum(dm._groups, oldest))
        # the two halves of compute: power chain + capacity, and the per-loop cooling figures, each
        # on an index of its own (both work out the nodes' input power, which compute does once)
        idx = ReadingIndex.from_groups(dm._groups, oldest)
        d = cpu_timed(lambda: compute_all(dm.plan, idx, t))
        idx = ReadingIndex.from_groups(dm._groups, oldest)
        e = cpu_timed(lambda: loop_samples(dm.loop_plan, dm.loop_readings, node_input_w(dm.plan, idx), t, oldest,
                                           dm.loop_thresholds))
        after = calibrate()
        n_out = len(out)
        if not stable(before, after):
            dropped += 1
            continue
        for k, v in zip(results, (a, b, c, d, e)):
            results[k].append(v)
    if not results["compute"]:
        print("every round was dropped: the machine's speed drifted too much; run again")
        return 1
    m = {k: median(v) for k, v in results.items()}
    polled = len(site.polled_devices())
    print(f"full site: {polled:,} polled devices, {len(batch):,} samples per interval, {dm.series:,} series "
          f"kept, {n_out:,} derived samples; set-up {setup:.1f} s CPU; rounds kept {len(results['compute'])}, "
          f"dropped {dropped}")
    print(f"DerivedMetrics.consume (one interval)  {m['consume']:7.3f} s CPU")
    print(f"DerivedMetrics.compute (one interval)  {m['compute']:7.3f} s CPU")
    print(f"plain-dict sum of the readings (peer)  {m['plain']:7.3f} s CPU")
    print(f"  of which power chain + capacity      {m['power']:7.3f} s CPU")
    print(f"  of which cooling loops ({len(dm.loop_plan.loops):,} loops)   {m['loops']:7.3f} s CPU")
    print(f"ratio compute / plain-dict sum:        {m['compute'] / m['plain']:.1f}")
    print(f"ratio cooling loops / power chain:     {m['loops'] / m['power']:.2f}")
    print(f"ratio compute / consume:               {m['compute'] / m['consume']:.2f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=10, help="copies of the site's batch (default 10)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=50.0, help="stop starting rounds after this")
    ap.add_argument("--full-site", action="store_true", help="the whole generated site, CPU seconds per interval")
    args = ap.parse_args()
    if args.full_site:
        return full_site(min(args.rounds, 5), args.max_seconds)
    if args.quick:
        args.scale, args.rounds = 3, 3
    site = load_site(SITE)
    t = time.time_ns()
    batch = scaled(interval_batch(site, t), args.scale)
    dm = DerivedMetrics(site)
    live = LiveState.for_site(site)
    repeat = 5
    results: dict[str, list[float]] = {"consume": [], "lineprotocol": [], "liveview": [], "compute": []}
    deadline = time.monotonic() + args.max_seconds
    dropped = 0
    for _ in range(args.rounds):
        if time.monotonic() > deadline:
            break
        before = calibrate()
        a = timed(lambda: dm.consume(batch), repeat)
        b = timed(lambda: samples_to_lines(batch, {}), repeat)
        c = timed(lambda: live(batch), repeat)
        d = timed(lambda: dm.compute(t), repeat)
        after = calibrate()
        if not stable(before, after):
            dropped += 1
            continue
        for k, v in zip(results, (a, b, c, d)):
            results[k].append(v)
    if not results["consume"]:
        print("every round was dropped: the machine's speed drifted too much; run again")
        return 1
    m = {k: median(v) for k, v in results.items()}
    n = len(batch)
    print(f"batch: {n:,} samples ({args.scale} x the one-hall Tétouan example, one poll interval); rounds kept "
          f"{len(results['consume'])}, dropped {dropped}")
    print(f"DerivedMetrics.consume     {m['consume'] * 1e3:8.2f} ms  ({n / m['consume'] / 1e6:.2f} M samples/s)")
    print(f"samples_to_lines (peer)    {m['lineprotocol'] * 1e3:8.2f} ms")
    print(f"LiveState (peer)           {m['liveview'] * 1e3:8.2f} ms")
    print(f"DerivedMetrics.compute     {m['compute'] * 1e3:8.2f} ms  (the one-hall example site, once per interval)")
    print(f"ratio consume / line protocol encoding: {m['consume'] / m['lineprotocol']:.2f}")
    print(f"ratio consume / live view:              {m['consume'] / m['liveview']:.2f}")
    print(f"ratio compute / consume (one interval): {m['compute'] / m['consume']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
