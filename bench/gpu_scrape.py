"""DCGM scrape throughput and CPU: our parser vs prometheus_client's, same HTTP, same mapping.

A child process (so its CPU is not counted) serves ``--endpoints`` asyncio
HTTP/1.1 keep-alive endpoints, each returning the same exporter page: the
real 8xH100 capture (``--page real``, 30 samples) or that page's labels with
every DCGM default counter (``--page full``, 200 samples for 8 GPUs,
the size a stock dcgm-exporter serves).  The bench process scrapes every
endpoint concurrently, round after round:

- A (ours):   DcgmCollector.poll -> HttpGetter -> promtext.parse -> samples_from_page
- B (peer):   the same HttpGetter -> prometheus_client text_string_to_metric_families
              -> (name, labels, value) triples -> the same samples_from_page

Rounds alternate A B A B, each ``--round`` seconds; CPU is this process's
``time.process_time``.  A calibration loop brackets each pair; pairs where the
machine's speed moved more than 25% are dropped.  Medians are printed with the
ratio B/A and the cores needed to scrape 43,000 nodes every 10 s.

    python bench/gpu_scrape.py                 # about 30 s
    python bench/gpu_scrape.py --page full     # the 200-sample page
    python bench/gpu_scrape.py --quick         # about 10 s
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    calibrate, median, serve_until_stdin_closed, stable, start_child_server, stop_child_server)
from collectors.base import Target  # noqa: E402
from collectors.gpu.dcgm import DcgmCollector, samples_from_page  # noqa: E402
from collectors.gpu.httpget import HttpGetter  # noqa: E402
from collectors.gpu.promtext import parse  # noqa: E402
from testkit.testdata import shared_testdata  # noqa: E402

NODES, INTERVAL_S = 43_000, 10.0


def real_page() -> bytes:
    return (shared_testdata() / "gpu" / "nvidia-aicr_h100x8_dcgm-exporter_sample.prom").read_bytes()


def full_page() -> bytes:
    """Every counter of default-counters.csv for the 8 GPUs of the real page, with HELP/TYPE like the exporter."""
    labels = {}
    for line in real_page().decode().splitlines():
        m = re.match(r'\w+\{(gpu="(\d+)".*)\} ', line)
        if m and m.group(2) not in labels:
            labels[m.group(2)] = m.group(1)
    out = []
    for row in (shared_testdata() / "gpu" / "default-counters.csv").read_text().splitlines():
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        name, kind, help_text = (p.strip() for p in row.split(",", 2))
        if kind == "label":
            continue
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}")
        for g, lab in sorted(labels.items()):
            out.append(f"{name}{{{lab}}} {int(g) * 7 + len(name)}.{len(lab) % 1000}")
    return ("\n".join(out) + "\n").encode()


# ---------------------------------------------------------------------------- child: the endpoints

async def serve(count: int, page: bytes) -> None:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(page))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await reader.readuntil(b"\r\n\r\n")
                if not req:
                    break
                writer.write(head + page)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(count)]
    await serve_until_stdin_closed([s.sockets[0].getsockname()[1] for s in servers])


# ---------------------------------------------------------------------------- parent: the scrapers

def prom_triples(body: bytes) -> list[tuple[str, dict, float]]:
    """prometheus_client's samples as triples.  It renames counter samples X -> X_total
    (OpenMetrics style); DCGM names never end in lower-case ``_total``, so undo that."""
    from prometheus_client.parser import text_string_to_metric_families
    out = []
    for fam in text_string_to_metric_families(body.decode()):
        counter = fam.type == "counter"
        for s in fam.samples:
            name = s.name[:-6] if counter and s.name.endswith("_total") else s.name
            out.append((name, s.labels, s.value))
    return out


async def round_a(collector: DcgmCollector, targets: list[Target], seconds: float) -> tuple[int, float, float, int]:
    """Full collector path until ``seconds`` pass; (pages, cpu_s, wall_s, samples in the last page)."""
    n, last = 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        results = await asyncio.gather(*(collector.poll(t) for t in targets))
        n += len(results)
        last = len(results[-1])
    return n, time.process_time() - c0, time.perf_counter() - t0, last


async def round_b(http: HttpGetter, targets: list[Target], seconds: float) -> tuple[int, float, float, int]:
    async def one(t: Target) -> int:
        body = await http.get(t.host, t.port, "/metrics", t.timeout_s)
        return len(samples_from_page(prom_triples(body), t.tags, time.time_ns()))
    n, last = 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        results = await asyncio.gather(*(one(t) for t in targets))
        n += len(results)
        last = results[-1]
    return n, time.process_time() - c0, time.perf_counter() - t0, last


def parse_only(page: bytes, seconds: float = 1.0) -> tuple[float, float]:
    """CPU microseconds per page for the two parsers alone (no HTTP, no mapping)."""
    out = []
    for fn in (lambda: parse(page), lambda: prom_triples(page)):
        n, c0 = 0, time.process_time()
        while time.process_time() - c0 < seconds:
            fn()
            n += 1
        out.append((time.process_time() - c0) / n * 1e6)
    return out[0], out[1]


async def main_async(args: argparse.Namespace, page: bytes) -> int:
    child, ports = start_child_server(__file__, str(args.endpoints), "--page", args.page)
    try:
        tags = {"site": "bench", "hall": "h1", "rack": "r1", "device": "n"}
        targets = [Target(device_id=f"n{p}", protocol="dcgm", host="127.0.0.1", port=p, timeout_s=5.0,
                          tags=tags, options={"path": "/metrics"}) for p in ports]
        collector, http = DcgmCollector(), HttpGetter()
        # sanity: both paths see the same samples
        a = await collector.poll(targets[0])
        b = samples_from_page(prom_triples(await http.get("127.0.0.1", ports[0], "/metrics", 5.0)), tags, 0)
        assert [(s.tags, s.fields) for s in a] == [(s.tags, s.fields) for s in b], "parsers disagree"
        print(f"page: {args.page}, {len(page)} bytes, {len(parse(page))} metric samples -> {len(a)} gpu samples; "
              f"{len(ports)} endpoints in a child process")
        ours_us, peer_us = parse_only(page, 0.5 if args.quick else 1.0)
        print(f"parse only, CPU per page: promtext {ours_us:.0f} us, prometheus_client {peer_us:.0f} us "
              f"(x{peer_us / ours_us:.1f})")
        cpu_a, cpu_b, rate_a, rate_b = [], [], [], []
        deadline = time.perf_counter() + args.seconds
        pairs = dropped = 0
        while time.perf_counter() < deadline and pairs < args.max_pairs:
            before = calibrate(300_000)
            na, ca, wa, _ = await round_a(collector, targets, args.round)
            nb, cb, wb, _ = await round_b(http, targets, args.round)
            after = calibrate(300_000)
            pairs += 1
            if not stable(before, after):
                dropped += 1
                continue
            cpu_a.append(ca / na * 1e3)
            cpu_b.append(cb / nb * 1e3)
            rate_a.append(na / wa)
            rate_b.append(nb / wb)
        await collector.close()
        await http.close()
    finally:
        stop_child_server(child)
    if not cpu_a:
        print(f"all {pairs} pairs dropped: the machine's speed drifted too much; rerun")
        return 1
    ma, mb = median(cpu_a), median(cpu_b)
    print(f"pairs: {len(cpu_a)} kept, {dropped} dropped (calibration drift)")
    print(f"A ours  (HTTP + promtext + mapping):          {median(rate_a):8.0f} pages/s  {ma:.3f} ms CPU/page")
    print(f"B peer  (HTTP + prometheus_client + mapping): {median(rate_b):8.0f} pages/s  {mb:.3f} ms CPU/page")
    print(f"ratio B/A CPU per page: {mb / ma:.2f}x")
    per_s = NODES / INTERVAL_S
    print(f"projected for {NODES} nodes every {INTERVAL_S:.0f} s ({per_s:.0f} pages/s): "
          f"A {per_s * ma / 1e3:.1f} cores, B {per_s * mb / 1e3:.1f} cores (one Python process per core)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", type=int, default=20)
    ap.add_argument("--page", choices=["real", "full"], default="real")
    ap.add_argument("--round", type=float, default=2.0, help="seconds per A or B round")
    ap.add_argument("--seconds", type=float, default=30.0, help="stop starting new A/B pairs after this")
    ap.add_argument("--max-pairs", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="about 10 s")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    page = real_page() if args.page == "real" else full_page()
    if args.serve:
        asyncio.run(serve(args.serve, page))
        return 0
    if args.quick:
        args.round, args.seconds = 1.0, 6.0
    return asyncio.run(main_async(args, page))


if __name__ == "__main__":
    raise SystemExit(main())
