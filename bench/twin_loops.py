"""What the twin's liquid-cooling model costs per model step.

The twin steps its whole-site model once a second, so the CDU loops (pumps,
filter, reservoir, heat exchanger) and the GPU cold plates driven by them
(simulator/cooling.py) must add little to a step.  Peer in the same run: the
same generated site with every ``cooled_by`` removed, so no node is on a loop
(the GPUs then take the model's air-cooled default: no loop look-up, no loop
physics).  Steps alternate A B A B; the script prints the median CPU per step of
each, their ratio, and µs per GPU node, bracketed by a fixed CPU calibration loop.

    python bench/twin_loops.py [--halls 2] [--steps 7] [--max-seconds 120]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, median, stable  # noqa: E402
from inventory.generate import SiteShape, generate_site, iter_devices  # noqa: E402
from inventory.model import Site  # noqa: E402
from simulator.model import SiteModel  # noqa: E402

T0 = 1_795_000_000.0


def _air_cooled(doc: dict) -> dict:
    """The same site with no cooling references: every GPU node off any loop."""
    for hall in doc.get("halls", []):
        for row in hall.get("rows", []):
            for rack in row.get("racks", []):
                rack.pop("cooled_by", None)
    for dev in iter_devices(doc):
        if dev.get("kind") == "gpu_node":
            dev.pop("cooled_by", None)
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--halls", type=int, default=2)
    ap.add_argument("--steps", type=int, default=7, help="timed steps per model per round (each alternates)")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()
    shape = SiteShape(halls=args.halls)
    looped = SiteModel(Site.model_validate(generate_site(shape)), seed=1)
    air = SiteModel(Site.model_validate(_air_cooled(generate_site(shape))), seed=1)
    nodes = sum(1 for d in looped.devices.values() if d.kind == "gpu_node")
    on_loops = len(looped.node_loop)
    assert not air.node_loop and on_loops == nodes, (on_loops, nodes)
    for m in (looped, air):
        m.step(T0)
    cal0 = calibrate()
    times: dict[str, list[float]] = {"loops": [], "air": []}
    began = time.monotonic()
    for k in range(1, args.steps + 1):
        for name, m in (("loops", looped), ("air", air)):
            c0 = time.process_time()
            m.step(T0 + k)
            times[name].append(time.process_time() - c0)
        if time.monotonic() - began > args.max_seconds:
            break
    cal1 = calibrate()
    a, b = median(times["loops"]), median(times["air"])
    print(f"site: {args.halls} halls, {nodes:,} GPU nodes ({nodes * 8:,} GPUs), {len(looped.cooling)} CDUs, "
          f"{sum(len(c.loops) for c in looped.cooling.values())} loops; {len(times['loops'])} steps each, alternating")
    print(f"model step CPU, median: with loops {a * 1000:.1f} ms ({a / nodes * 1e6:.2f} µs/node), "
          f"air-cooled peer {b * 1000:.1f} ms ({b / nodes * 1e6:.2f} µs/node); ratio {a / b:.2f}")
    print(f"calibration {cal0:.3f}s -> {cal1:.3f}s ({'stable' if stable(cal0, cal1) else 'UNSTABLE: rerun'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
