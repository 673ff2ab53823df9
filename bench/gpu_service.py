"""GPU nodes, whole service path: the collection service vs Prometheus scraping and storing the same DCGM pages.

A child process (its CPU is counted for neither side) serves ``--nodes`` twin
DCGM exporter pages (the twin's own ``dcgm_page``: 8 GPUs x 11 counters = 88
samples, built per request) on keep-alive HTTP/1.1 endpoints, and counts the
requests of each side by User-Agent.

- A (ours): the service path of ``dcim run`` in this process: ``Scheduler`` (polls
  spread over the interval by each device's phase, as in production) ->
  ``DcgmCollector`` -> samples -> plausibility screen -> ``poll`` sample ->
  ``InfluxWriter`` (line protocol, batching, gzip) -> a null transport (no
  database: its CPU is not part of either side), with ``dcim run``'s garbage-collection
  setting while polling (dcim/gc_policy.py).  CPU: this process's ``time.process_time``.
- B (peer): Debian's Prometheus (``/usr/bin/prometheus``) with a temp config and
  TSDB directory on a loopback port, scraping the same pages at the same interval
  and storing them.  CPU: its utime+stime from /proc.

Windows alternate A B A B: during A, Prometheus is paused (SIGSTOP); during B our
scheduler is stopped.  Each window settles ``--settle`` seconds, then measures
``--window`` seconds; pages are counted by the child.  A calibration loop brackets
each pair; pairs where it moved by more than 25 % are dropped.  Medians of the
per-pair CPU per page and of their ratio are printed; the machine is shared, so
the ratio is the figure, not the absolute times.

    python bench/gpu_service.py                     # 360 nodes at 5 s, 4 pairs: about 2.5 min
    python bench/gpu_service.py --quick             # about 1 min
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import calibrate, median, proc_cpu_s, stable  # noqa: E402
from collectors.base import Target  # noqa: E402
from collectors.gpu.dcgm import DcgmCollector  # noqa: E402
from collectors.scheduler import Job, Scheduler  # noqa: E402
from dcim.gc_policy import young_threshold  # noqa: E402
from sinks.influx_writer import InfluxConfig, InfluxWriter  # noqa: E402
from localservers.process import free_port, wait_for_port  # noqa: E402


# ---------------------------------------------------------------------------- child: the twin pages

async def serve(count: int) -> None:
    from simulator.http_endpoints import dcgm_page
    from simulator.model import DeviceState, GpuState

    counts = {"ours": 0, "prometheus": 0}

    def state(i: int) -> DeviceState:
        gpus = [GpuState(util=0.5 + 0.05 * g, power_w=600.0 + i % 50 + g, temp_c=55.0 + g, memory_temp_c=60.0 + g,
                         energy_mj=3.6e9 * (i + 1) + g) for g in range(8)]
        return DeviceState(power_w=5_000.0, gpus=gpus)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, node: str, s: DeviceState) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                counts["prometheus" if b"Prometheus/" in head else "ours"] += 1
                for g in s.gpus:  # values move a little, as the twin's do
                    g.power_w += 0.125
                    g.energy_mj += 1234.0
                page = dcgm_page(node, s)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(page), page))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = []
    for i in range(count):
        node, s = f"bench-n{i:04d}", state(i)
        servers.append(await asyncio.start_server(lambda r, w, n=node, st=s: handle(r, w, n, st), "127.0.0.1", 0))
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        print(json.dumps(counts), flush=True)


class Twin:
    def __init__(self, nodes: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(nodes)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ports = json.loads(self.proc.stdout.readline())

    def counts(self) -> dict[str, int]:
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------- B: Prometheus

def start_prometheus(ports: list[int], interval_s: float, work: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.path.exists(binary):
        raise SystemExit("prometheus not found: apt-get install prometheus")
    cfg = work / "prometheus.yml"
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    cfg.write_text(f"global: {{scrape_interval: {interval_s:g}s, scrape_timeout: {max(1.0, interval_s * 0.8):g}s}}\n"
                   f"scrape_configs:\n- job_name: dcgm\n  static_configs:\n  - targets: [{targets}]\n")
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={work / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"))
    wait_for_port(port, proc=proc, timeout=60)
    return proc, port


# ---------------------------------------------------------------------------- A: our service path

class NullTransport:
    """The writer's transport with no database behind it: the payload (gzip'd line protocol) is dropped."""

    def __init__(self) -> None:
        self.bytes = 0

    def send(self, payload: bytes) -> None:
        self.bytes += len(payload)


class Service:
    """Scheduler -> DcgmCollector -> writer, wired as ``CollectionService`` wires them."""

    def __init__(self, ports: list[int], interval_s: float) -> None:
        tags = {"site": "bench", "hall": "h1", "row": "r1", "vendor": "nvidia", "model": "dgx-h100"}
        self.targets = [Target(device_id=f"bench-n{i:04d}", protocol="dcgm", host="127.0.0.1", port=p,
                               timeout_s=2.0, retries=1, interval_s=interval_s,
                               tags={**tags, "rack": f"k{i // 8:02d}", "device": f"bench-n{i:04d}"},
                               options={"gpus": 8}) for i, p in enumerate(ports)]
        self.collector = DcgmCollector()
        self.transport = NullTransport()
        self.writer = InfluxWriter(InfluxConfig(url="http://127.0.0.1:1", api="v1"), transport=self.transport)
        self.polls = 0
        self.failed = 0

    def emit(self, samples) -> None:
        self.writer.write(samples)

    async def start(self) -> None:
        await self.writer.start()

    async def window(self, settle: float, seconds: float) -> tuple[float, int]:
        """Run the scheduler ``settle + seconds``; (CPU s, polls) of the measured part."""
        scheduler = Scheduler([Job(t, self.collector) for t in self.targets], self.emit)
        with young_threshold():  # the collector's garbage-collection setting while polling, as in dcim run
            scheduler.start()
            await asyncio.sleep(settle)
            c0, p0 = time.process_time(), scheduler.stats.polls
            await asyncio.sleep(seconds)
            cpu, polls = time.process_time() - c0, scheduler.stats.polls - p0
        self.failed += scheduler.stats.failed
        await scheduler.stop()
        return cpu, polls

    async def close(self) -> None:
        await self.writer.close(5)
        await self.collector.close()


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="gpu-service-bench-"))
    twin = Twin(args.nodes)
    prom = None
    try:
        prom, _ = start_prometheus(twin.ports, args.interval, work)
        service = Service(twin.ports, args.interval)
        await service.start()
        print(f"{args.nodes} twin DCGM pages (88 samples each) in a child process; interval {args.interval:g} s; "
              f"windows of {args.settle:g} s settle + {args.window:g} s measured")
        ours, peer, ratios = [], [], []
        dropped = 0
        await asyncio.sleep(args.settle)  # Prometheus's first scrapes, TSDB head created
        for pair in range(args.pairs):
            before = calibrate(300_000)
            # A: ours, Prometheus paused
            prom.send_signal(signal.SIGSTOP)
            cpu_a, polls_a = await service.window(args.settle, args.window)
            prom.send_signal(signal.SIGCONT)
            # B: Prometheus, our scheduler stopped
            await asyncio.sleep(args.settle)
            c0, n0 = proc_cpu_s(prom.pid), twin.counts()["prometheus"]
            await asyncio.sleep(args.window)
            cpu_b, pages_b = proc_cpu_s(prom.pid) - c0, twin.counts()["prometheus"] - n0
            after = calibrate(300_000)
            if not stable(before, after) or not polls_a or not pages_b:
                dropped += 1
                print(f"  pair {pair + 1} dropped: calibration {before * 1e3:.1f} -> {after * 1e3:.1f} ms, "
                      f"{polls_a} polls, {pages_b} Prometheus pages", flush=True)
                continue
            a, b = cpu_a / polls_a * 1e3, cpu_b / pages_b * 1e3
            ours.append(a)
            peer.append(b)
            ratios.append(a / b)
            print(f"  pair {pair + 1}: ours {a:.3f} ms CPU/page ({polls_a} polls), "
                  f"Prometheus {b:.3f} ms ({pages_b} pages), ratio {a / b:.2f}", flush=True)
        await service.close()
        if service.failed:
            print(f"  note: {service.failed} of our polls failed")
    finally:
        if prom:
            prom.send_signal(signal.SIGCONT)
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
        twin.stop()
        shutil.rmtree(work, ignore_errors=True)
    if not ratios:
        print(f"all pairs dropped ({dropped}): the machine's speed drifted too much; rerun")
        return 1
    r = median(ratios)
    print(f"pairs: {len(ratios)} kept, {dropped} dropped (calibration drift); medians; the CPU is shared: ratios are the figure")
    print(f"A ours (scheduler -> DCGM collector -> writer, gzip, null sink): {median(ours):.3f} ms CPU per page")
    print(f"B Prometheus {subprocess.run(['/usr/bin/prometheus', '--version'], capture_output=True, text=True).stdout.split()[2]} "
          f"(scrape + store):           {median(peer):.3f} ms CPU per page")
    print(f"ratio ours / Prometheus: {r:.2f}x (target <= 0.5: {'MET' if r <= 0.5 else 'NOT MET'})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=360)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=10.0, help="measured seconds per window")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before each window is measured")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="about 1 min")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.quick:
        args.pairs, args.window = 2, 8.0
    if not (1 <= args.nodes <= 5000 and 1 <= args.pairs <= 20 and 1 <= args.window <= 120):
        raise SystemExit("--nodes 1..5000, --pairs 1..20, --window 1..120")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
