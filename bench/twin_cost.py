"""What the twin costs against the collectors that poll it.

The twin must cost far less CPU than the collectors, or it cannot feed a scale
test on a 2-core machine.  This script starts ``dcim simulate --scale`` in its
own process, polls every device of the generated slice with the project's
collectors for a fixed number of rounds (all devices concurrently, bounded in
flight), and prints per protocol: collector CPU per device-poll (this process),
twin CPU per device-poll (the twin process, from /proc), their ratio, and how
many devices one core of twin serves at a 10 s interval.

    python bench/twin_cost.py [--scale halls=1,rows=2,racks=10,nodes=4] [--rounds 5] [--max-seconds 90]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, proc_cpu_s, stable, start_twin  # noqa: E402
from collectors.base import PollError  # noqa: E402
from collectors.registry import make_collector  # noqa: E402
from collectors.targets import build_targets  # noqa: E402
from inventory.loader import load_site  # noqa: E402
from localservers.process import free_port  # noqa: E402


async def poll_round(targets, collectors, sem) -> dict[str, int]:
    failures: dict[str, int] = defaultdict(int)

    async def one(t):
        async with sem:
            try:
                await collectors[t.protocol].poll(t)
            except PollError:
                failures[t.protocol] += 1
    await asyncio.gather(*(one(t) for t in targets))
    return failures


async def measure(targets, twin_pid: int, rounds: int, deadline: float, in_flight: int):
    collectors = {}
    for t in targets:
        if t.protocol not in collectors:
            collectors[t.protocol] = make_collector(t.protocol)
    sem = asyncio.Semaphore(in_flight)
    await poll_round(targets, collectors, sem)  # warm-up: profiles detected, sessions open
    results = {}
    for proto in sorted({t.protocol for t in targets}):
        group = [t for t in targets if t.protocol == proto]
        c0, w0, tw0 = time.process_time(), time.monotonic(), proc_cpu_s(twin_pid)
        done, failed = 0, 0
        for _ in range(rounds):
            if time.monotonic() > deadline:
                break
            failed += sum((await poll_round(group, collectors, sem)).values())
            done += len(group)
        results[proto] = (done, failed, time.process_time() - c0, proc_cpu_s(twin_pid) - tw0, time.monotonic() - w0)
    for c in collectors.values():
        await c.close()
    return results


def snmpsim_peer(polls: int, deadline: float) -> tuple[int, float, float, int] | None:
    """The peer for the twin's SNMP agents: snmpsim serving a real APC rPDU2 recording, polled by
    the same collector.  Returns (polls, snmpsim CPU s, collector CPU s, samples per poll)."""
    from collectors.base import Target
    from collectors.snmp.collector import SnmpCollector
    from inventory.secrets import SecretValue
    from testkit.snmp import SnmpsimServer
    from testkit.testdata import shared_testdata

    rec = shared_testdata() / "snmp" / "apc_ap8959eu3.snmprec"
    with SnmpsimServer([rec]) as sim:
        # snmpsim selects the recording by community: the recording's name
        target = Target("snmpsim-pdu", "snmp", "127.0.0.1", sim.port, timeout_s=5.0, retries=0,
                        options={"version": "2c"}, secrets={"community": SecretValue(rec.stem)})

        async def go():
            c = SnmpCollector()
            try:
                samples = await c.poll(target)  # warm-up: profile detection
                c0, s0, n = time.process_time(), proc_cpu_s(sim.process.pid), 0
                while n < polls and time.monotonic() < deadline:
                    await c.poll(target)
                    n += 1
                return n, proc_cpu_s(sim.process.pid) - s0, time.process_time() - c0, len(samples)
            finally:
                await c.close()
        return asyncio.run(go())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="halls=1,rows=2,racks=10,nodes=4,ups=4,cdus=2,bmcs=1")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=90.0)
    ap.add_argument("--snmpsim-polls", type=int, default=20, help="polls of the snmpsim peer (0: skip it)")
    args = ap.parse_args()
    os.environ.setdefault("DCIM_SNMP_COMMUNITY", "public")
    os.environ.setdefault("DCIM_BMC_USER", "bench")
    os.environ.setdefault("DCIM_BMC_PASSWORD", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        site_path = Path(tmp) / "slice.yaml"
        twin = start_twin(args.scale, site_path, free_port())
        try:
            site = load_site(site_path)
            targets, problems = build_targets(site)
            if problems:
                print(f"{len(problems)} device(s) without targets: {problems[0].message}")
            usable, missing = [], set()
            for t in targets:
                try:
                    make_collector(t.protocol)
                    usable.append(t)
                except (ImportError, ValueError) as exc:
                    if t.protocol not in missing:
                        missing.add(t.protocol)
                        print(f"skipping protocol {t.protocol}: no collector ({exc})")
            cal0 = calibrate()
            results = asyncio.run(measure(usable, twin.pid, args.rounds, time.monotonic() + args.max_seconds, args.in_flight))
            cal1 = calibrate()
        finally:
            twin.terminate()
            twin.wait(timeout=30)
    print(f"twin slice: {args.scale}; {len(usable)} polled endpoints; rounds {args.rounds}")
    print(f"{'protocol':10} {'polls':>7} {'failed':>6} {'collector ms/poll':>18} {'twin ms/poll':>13} {'twin/collector':>15} {'devices per twin core @10s':>27}")
    tot_c = tot_t = tot_n = 0.0
    for proto, (n, failed, ccpu, tcpu, _) in results.items():
        if not n:
            continue
        tot_c, tot_t, tot_n = tot_c + ccpu, tot_t + tcpu, tot_n + n
        per_t = tcpu / n
        print(f"{proto:10} {n:7d} {failed:6d} {1000 * ccpu / n:18.3f} {1000 * per_t:13.3f} {tcpu / max(ccpu, 1e-9):15.2f}"
              f" {10.0 / max(per_t, 1e-9):27,.0f}")
    if tot_n:
        per_t = tot_t / tot_n
        print(f"{'all':10} {int(tot_n):7d} {'':6} {1000 * tot_c / tot_n:18.3f} {1000 * per_t:13.3f} "
              f"{tot_t / max(tot_c, 1e-9):15.2f} {10.0 / max(per_t, 1e-9):27,.0f}")
    print(f"calibration {cal0:.3f}s -> {cal1:.3f}s ({'stable' if stable(cal0, cal1) else 'UNSTABLE: rerun'})")
    print("note: twin CPU includes its model step every second (fixed cost, spread over the polls measured)")
    if args.snmpsim_polls:
        peer = snmpsim_peer(args.snmpsim_polls, time.monotonic() + 60)
        if peer and peer[0]:
            n, sim_cpu, coll_cpu, per = peer
            twin_snmp = results.get("snmp")
            print(f"peer: snmpsim serving a real AP8959 recording ({per} samples/poll), same collector: "
                  f"{1000 * sim_cpu / n:.2f} ms snmpsim CPU per poll ({n} polls; collector {1000 * coll_cpu / n:.2f} ms)")
            if twin_snmp and twin_snmp[0]:
                tw = twin_snmp[3] / twin_snmp[0]
                print(f"twin SNMP agent {1000 * tw:.3f} ms per poll: {sim_cpu / n / max(tw, 1e-9):.0f}x less CPU than snmpsim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
