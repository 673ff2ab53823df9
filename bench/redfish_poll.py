"""Redfish BMC poll CPU: the collector vs an aiohttp walk of the same resources (and the DMTF library).

A child process (its CPU is not counted) serves ``--bmcs`` twin BMCs: the
twin's own ``HttpEndpoint`` with session login and ``redfish_resources`` (the
older Power/Thermal shapes: service root, Chassis, Chassis/1, Power, Thermal =
5 GETs per poll), exactly as ``dcim simulate`` serves them.  The bench process
logs in to every BMC once, then polls all of them concurrently, round after round:

- A (ours):  RedfishCollector.poll -> httpget keep-alive client -> redfish.walk -> Samples
- B (peer):  one aiohttp ClientSession (keep-alive, same session token) driving the same
             redfish.walk generator: the same requests, the same mapping, aiohttp's HTTP
- C (old):   the DMTF ``redfish`` library in 16 threads (what the collector used before),
             same walk through samples_from_resources; --no-dmtf leaves it out

Rounds alternate A B C A B C, each ``--round`` seconds; CPU is this process's
``time.process_time``.  A calibration loop brackets each triple; triples where the
machine's speed moved more than 25 % are dropped.  Medians are printed, with
ratios: the CPU is shared, so absolute times drift and the ratios are the figure.

    python bench/redfish_poll.py              # about 40 s
    python bench/redfish_poll.py --quick      # about 15 s
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    calibrate, median, serve_until_stdin_closed, stable, start_child_server, start_twin_bmcs, stop_child_server)
from collectors.base import Target  # noqa: E402
from collectors.gpu.redfish import ResourceMissing, RedfishCollector, samples_from_resources, walk  # noqa: E402
from inventory.secrets import SecretValue  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
SESSIONS = "/redfish/v1/SessionService/Sessions"


# ---------------------------------------------------------------------------- child: the twin BMCs

async def serve(count: int) -> None:
    endpoints = await start_twin_bmcs(count)
    await serve_until_stdin_closed([e.server.sockets[0].getsockname()[1] for e in endpoints])
    for e in endpoints:
        await e.stop()


# ---------------------------------------------------------------------------- parent: the pollers

class AiohttpWalker:
    """The peer: the same walk generator, fed by aiohttp GETs over one keep-alive session."""

    def __init__(self) -> None:
        import aiohttp
        self.aiohttp = aiohttp
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=1))
        self.tokens: dict[int, str] = {}

    async def login(self, port: int) -> None:
        async with self.session.post(f"http://127.0.0.1:{port}{SESSIONS}",
                                     json={"UserName": USER, "Password": PASSWORD}) as r:
            self.tokens[port] = r.headers["X-Auth-Token"]
            await r.read()

    async def poll(self, t: Target) -> list:
        headers = {"X-Auth-Token": self.tokens[t.port], "Accept": "application/json", "OData-Version": "4.0"}
        base = f"http://127.0.0.1:{t.port}"
        gen = walk(t.tags, time.time_ns())
        try:
            path = next(gen)
            while True:
                async with self.session.get(base + path, headers=headers, allow_redirects=False) as r:
                    body = await r.read()
                    if r.status == 404:
                        path = gen.throw(ResourceMissing(path))
                        continue
                    r.raise_for_status()
                path = gen.send(json.loads(body))
        except StopIteration as done:
            return done.value

    async def close(self) -> None:
        await self.session.close()


class DmtfPoller:
    """The collector as it was: the DMTF library's blocking client per BMC, in 16 threads."""

    def __init__(self, ports: list[int]) -> None:
        import logging
        import warnings

        import redfish
        warnings.filterwarnings("ignore", category=UserWarning, module=r"redfish(\.|$)")
        logging.getLogger("redfish").setLevel(logging.WARNING)
        self.pool = concurrent.futures.ThreadPoolExecutor(16)
        self.clients = {}
        for p in ports:
            c = redfish.redfish_client(base_url=f"http://127.0.0.1:{p}", username=USER, password=PASSWORD,
                                       timeout=10, max_retry=0)
            c.login(auth="session")
            self.clients[p] = c

    def _walk(self, t: Target) -> list:
        client = self.clients[t.port]

        def get(path: str) -> dict:
            resp = client.get(path)
            if resp.status == 404:
                raise ResourceMissing(path)
            return resp.dict
        return samples_from_resources(get, t.tags, time.time_ns())

    async def poll(self, t: Target) -> list:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._walk, t)

    def close(self) -> None:
        for c in self.clients.values():
            try:
                c.logout()
            except Exception:
                pass
        self.pool.shutdown()


async def one_round(poll, targets: list[Target], seconds: float) -> tuple[int, float, float]:
    """Poll every BMC concurrently until ``seconds`` pass; (polls, cpu_s, wall_s)."""
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        results = await asyncio.gather(*(poll(t) for t in targets))
        assert all(len(r) == len(results[0]) > 0 for r in results)
        n += len(results)
    return n, time.process_time() - c0, time.perf_counter() - t0


async def main_async(args: argparse.Namespace) -> int:
    child, ports = start_child_server(__file__, str(args.bmcs))
    try:
        tags = {"site": "bench", "hall": "h1", "rack": "r1", "device": "bmc"}
        targets = [Target(device_id=f"bmc{p}", protocol="redfish", host="127.0.0.1", port=p, timeout_s=5.0,
                          tags=tags, secrets={"username": SecretValue(USER), "password": SecretValue(PASSWORD)})
                   for p in ports]
        ours, peer = RedfishCollector(), AiohttpWalker()
        for p in ports:
            await peer.login(p)
        contenders = {"A ours (httpget + walk)": ours.poll, "B aiohttp (same walk)": peer.poll}
        dmtf = None
        if not args.no_dmtf:
            dmtf = DmtfPoller(ports)
            contenders["C DMTF redfish lib, 16 threads"] = dmtf.poll
        # sanity and warm-up (sessions logged in, connections open): every contender reads the same samples
        first = {name: await poll(targets[0]) for name, poll in contenders.items()}
        shapes = {name: [(s.tags, s.fields) for s in got] for name, got in first.items()}
        assert all(v == next(iter(shapes.values())) for v in shapes.values()), "contenders disagree"
        print(f"{len(ports)} twin BMCs in a child process; {len(first[next(iter(first))])} samples per poll, "
              f"5 GETs per poll (service root, Chassis, Chassis/1, Power, Thermal)")
        cpu = {name: [] for name in contenders}
        rate = {name: [] for name in contenders}
        deadline = time.perf_counter() + args.seconds
        runs = dropped = 0
        while time.perf_counter() < deadline and runs < args.max_runs:
            before = calibrate(300_000)
            got = {name: await one_round(poll, targets, args.round) for name, poll in contenders.items()}
            after = calibrate(300_000)
            runs += 1
            if not stable(before, after):
                dropped += 1
                continue
            for name, (n, c, w) in got.items():
                cpu[name].append(c / n * 1e3)
                rate[name].append(n / w)
        await ours.close()
        await peer.close()
        if dmtf:
            dmtf.close()
    finally:
        stop_child_server(child)
    kept = len(next(iter(cpu.values())))
    if not kept:
        print(f"all {runs} runs dropped: the machine's speed drifted too much; rerun")
        return 1
    print(f"runs: {kept} kept, {dropped} dropped (calibration drift); medians; CPU is shared, ratios are the figure")
    a = median(cpu["A ours (httpget + walk)"])
    for name in contenders:
        m = median(cpu[name])
        print(f"{name:<34} {median(rate[name]):7.0f} polls/s  {m:6.3f} ms CPU/poll  ({m / a:5.2f}x ours)")
    b = median(cpu["B aiohttp (same walk)"])
    print(f"ours / aiohttp CPU per poll: {a / b:.2f}x; ours {a:.3f} ms CPU per BMC poll "
          f"(target <= 1.5 ms: {'MET' if a <= 1.5 else 'NOT MET'})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bmcs", type=int, default=50)
    ap.add_argument("--round", type=float, default=2.0, help="seconds per contender per run")
    ap.add_argument("--seconds", type=float, default=40.0, help="stop starting new runs after this")
    ap.add_argument("--max-runs", type=int, default=6)
    ap.add_argument("--no-dmtf", action="store_true", help="leave out the DMTF library")
    ap.add_argument("--quick", action="store_true", help="about 15 s")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.quick:
        args.round, args.seconds, args.bmcs = 1.0, 10.0, 20
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
