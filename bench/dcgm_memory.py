"""Memory a DCGM decoder keeps per GPU node, before and after shapes are shared, in one run.

Why: a collector shard keeps one page template per node between scrapes; at 43,000 nodes
that was ~2.4 GB.  Nodes of one model serve pages of one shape (only label values such as
Hostname and UUID differ), so the decoder now keeps one compiled core per shape.

The bench builds ``--nodes`` twin DCGM pages (each its own Hostname and GPU UUIDs, 8 GPUs),
decodes each node twice (first page: template; second: compiled shape) with

- before: ``collectors/gpu/dcgm.py`` as it was at ``--before`` (loaded from git into its own
  module, so both run in this process on the same pages),
- unshared: today's decoder with the shape cache disabled (every node compiles its own core),
- after:  today's decoder,

and prints the memory each decoder still holds afterwards (tracemalloc, bytes per node, decoder
kept alive, samples dropped), then the CPU per page of the steady state (A B A B rounds,
medians) so that a memory gain is not paid for in CPU.  Rounds: ``--rounds`` pairs, bounded.

    python bench/dcgm_memory.py                    # 2,000 nodes, about 20 s
    python bench/dcgm_memory.py --nodes 500 --rounds 3
"""
from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import median  # noqa: E402
from collectors.gpu import dcgm  # noqa: E402
from simulator.http_endpoints import dcgm_page  # noqa: E402
from simulator.model import DeviceState, GpuState  # noqa: E402


def _page(host: str, step: int) -> bytes:
    state = DeviceState(power_w=5000.0, gpus=[GpuState(util=0.1 * g, power_w=300.0 + g + step * 0.375, temp_c=40.0 + g,
                                                       memory_temp_c=45.0, energy_mj=3.6e9 + step * 1e6, xid=0)
                                              for g in range(8)])
    return dcgm_page(host, state)


def _old_module(rev: str) -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:collectors/gpu/dcgm.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("dcgm_before")
    module.__file__ = f"{rev}:collectors/gpu/dcgm.py"
    sys.modules["dcgm_before"] = module  # dataclass/annotation look-ups want it registered
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


class _NoCache(dict):
    """A shape cache that keeps nothing: every node compiles its own core (the unshared variant)."""

    def __setitem__(self, key, value) -> None:
        pass


def _unshared() -> dcgm.PageDecoder:
    decoder = dcgm.PageDecoder()
    decoder._cores = _NoCache()
    return decoder


def _held(make, nodes: list[str], pages: list[list[bytes]]) -> tuple[float, object]:
    """Bytes per node the decoder built by ``make`` holds after two pages of every node."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.take_snapshot()
    decoder = make()
    for step in range(2):
        for node, bodies in zip(nodes, pages):
            decoder.decode(node, bodies[step], {"site": "tetouan", "device": node}, 1, 8)
    gc.collect()
    end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in end.compare_to(start, "filename"))
    return held / len(nodes), decoder


def _cpu(decoder, nodes: list[str], pages: list[list[bytes]], step: int) -> float:
    t = time.process_time()
    for node, bodies in zip(nodes, pages):
        decoder.decode(node, bodies[step], {"site": "tetouan", "device": node}, 1, 8)
    return (time.process_time() - t) / len(nodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5, help="A B pairs for the CPU figure (bounded: 1..20)")
    ap.add_argument("--before", default="ff2a19a", help="git revision of the unshared decoder")
    args = ap.parse_args()
    args.nodes = max(10, min(args.nodes, 20000))
    args.rounds = max(1, min(args.rounds, 20))
    before = _old_module(args.before)
    nodes = [f"h01-r{i // 400 + 1:02d}-k{i // 20 % 20 + 1:02d}-n{i % 20 + 1:02d}" for i in range(args.nodes)]
    pages = [[_page(n, step) for step in range(4)] for n in nodes]
    print(f"{args.nodes} twin nodes, 8 GPUs, {len(pages[0][0])} bytes a page; before = {args.before}")
    kept = {}
    makers = {"before": before.PageDecoder, "unshared": _unshared, "after": dcgm.PageDecoder}
    for name, make in makers.items():
        per_node, decoder = _held(make, nodes, pages)
        kept[name] = decoder
        extra = f", {len(decoder._cores)} shared cores" if name == "after" else ""
        print(f"  {name:9s} {per_node / 1024:7.1f} KiB held per node ({per_node * 43000 / 2**30:5.2f} GiB for 43,000){extra}")
    a_cpu, b_cpu = [], []
    for r in range(args.rounds):
        step = 2 + r % 2
        a_cpu.append(_cpu(kept["before"], nodes, pages, step))
        b_cpu.append(_cpu(kept["after"], nodes, pages, step))
    fast = kept["after"].fast, kept["after"].general
    print(f"  CPU per page, steady state: before {median(a_cpu) * 1e6:.0f} us, after {median(b_cpu) * 1e6:.0f} us "
          f"(after/before {median(b_cpu) / median(a_cpu):.2f}, medians of {args.rounds} A B rounds; "
          f"shared machine: the ratio is the figure); after's pages fast/general {fast[0]}/{fast[1]}")


if __name__ == "__main__":
    main()
