"""Redfish CDU poll CPU: the collector's CDU walk against its chassis walk of a twin BMC, same client.

A child process (its CPU is not counted) serves ``--units`` CDUs and as many twin BMCs, each
on its own port through the twin's ``HttpEndpoint`` with session login: a CDU serves the OCP
CDU profile's examples (``tests/gpu/redfish_cdu/ocp-cdu-1.0.0``: 18 GETs per poll from the
service root to the leak detector), a BMC the twin's ``redfish_resources`` (5 GETs). The bench
process polls all CDUs concurrently, then all BMCs, round after round (A B A B), with one
``RedfishCollector`` each:

- A: CDUs, ``kind: cdu`` (ThermalEquipment walk only) -> ``cdu`` samples
- B: BMCs, the chassis walk -> ``node`` samples (the peer: what bench/redfish_poll.py measures)

CPU is this process's ``time.process_time``; a calibration loop brackets each pair and pairs
where the machine's speed moved more than 25 % are dropped; medians are printed with the
ratio per poll and per GET.  The machine is shared: the ratios are the figure.

    python bench/redfish_cdu_poll.py            # about 30 s
    python bench/redfish_cdu_poll.py --quick    # about 12 s
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    calibrate, median, serve_until_stdin_closed, stable, start_child_server, start_twin_bmcs, stop_child_server)
from collectors.base import Target  # noqa: E402
from collectors.gpu.redfish import RedfishCollector  # noqa: E402
from inventory.secrets import SecretValue  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
MOCKUP = Path(__file__).resolve().parents[1] / "tests" / "gpu" / "redfish_cdu" / "ocp-cdu-1.0.0" / "redfish" / "v1"
CDU_GETS, BMC_GETS = 18, 5


def _mockup_resources() -> dict[str, dict]:
    out = {}
    for f in MOCKUP.rglob("index.json"):
        rel = f.parent.relative_to(MOCKUP).as_posix()
        out["/redfish/v1" + ("/" + rel if rel != "." else "")] = json.loads(f.read_text())
    return out


async def serve(count: int) -> None:
    from simulator.http_endpoints import HttpEndpoint, json_body

    cdu = _mockup_resources()
    endpoints = []
    for i in range(count):
        endpoints.append(await HttpEndpoint(lambda p: json_body(cdu[p]) if p in cdu else None,
                                            sessions=True).start("127.0.0.1", 0))
    endpoints += await start_twin_bmcs(count)
    await serve_until_stdin_closed([e.server.sockets[0].getsockname()[1] for e in endpoints])
    for e in endpoints:
        await e.stop()


async def one_round(collector: RedfishCollector, targets: list[Target], seconds: float) -> tuple[int, float]:
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        results = await asyncio.gather(*(collector.poll(t) for t in targets))
        assert all(len(r) == len(results[0]) > 0 for r in results)
        n += len(results)
    return n, time.process_time() - c0


async def main_async(args: argparse.Namespace) -> int:
    child, ports = start_child_server(__file__, str(args.units))
    try:
        secrets = {"username": SecretValue(USER), "password": SecretValue(PASSWORD)}

        def target(p: int, kind: str) -> Target:
            return Target(device_id=f"{kind}{p}", protocol="redfish", host="127.0.0.1", port=p, kind=kind,
                          timeout_s=5.0, tags={"site": "bench", "device": f"{kind}{p}"}, secrets=secrets)
        cdus = [target(p, "cdu") for p in ports[:args.units]]
        bmcs = [target(p, "gpu_node") for p in ports[args.units:]]
        a, b = RedfishCollector(), RedfishCollector()
        first_a, first_b = await a.poll(cdus[0]), await b.poll(bmcs[0])   # log in, open connections
        assert all(s.measurement == "cdu" for s in first_a) and all(s.measurement == "node" for s in first_b)
        print(f"{args.units} CDUs ({len(first_a)} cdu samples, {CDU_GETS} GETs per poll) and {args.units} twin BMCs "
              f"({len(first_b)} node samples, {BMC_GETS} GETs per poll) in a child process")
        cpu_a, cpu_b = [], []
        deadline = time.perf_counter() + args.seconds
        runs = dropped = 0
        while time.perf_counter() < deadline and runs < args.max_runs:
            before = calibrate(300_000)
            na, ca = await one_round(a, cdus, args.round)
            nb, cb = await one_round(b, bmcs, args.round)
            after = calibrate(300_000)
            runs += 1
            if not stable(before, after):
                dropped += 1
                continue
            cpu_a.append(ca / na * 1e3)
            cpu_b.append(cb / nb * 1e3)
        await a.close()
        await b.close()
    finally:
        stop_child_server(child)
    if not cpu_a:
        print(f"all {runs} runs dropped: the machine's speed drifted too much; rerun")
        return 1
    ma, mb = median(cpu_a), median(cpu_b)
    print(f"runs: {len(cpu_a)} kept, {dropped} dropped (calibration drift); medians; CPU is shared, ratios are the figure")
    print(f"A CDU poll  {ma:6.3f} ms CPU  ({ma / CDU_GETS * 1e3:5.0f} us per GET)")
    print(f"B BMC poll  {mb:6.3f} ms CPU  ({mb / BMC_GETS * 1e3:5.0f} us per GET)")
    print(f"CDU / BMC: {ma / mb:.2f}x per poll, {(ma / CDU_GETS) / (mb / BMC_GETS):.2f}x per GET")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=20, help="CDUs, and as many BMCs")
    ap.add_argument("--round", type=float, default=2.0, help="seconds per side per run")
    ap.add_argument("--seconds", type=float, default=30.0, help="stop starting new runs after this")
    ap.add_argument("--max-runs", type=int, default=6)
    ap.add_argument("--quick", action="store_true", help="about 12 s")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.quick:
        args.round, args.seconds, args.units = 1.0, 10.0, 10
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
