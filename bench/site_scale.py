"""Scale: a twin slice polled by N collector shards; projected cores for the whole site.

What it runs (all on loopback, all bounded in time):
- the twin of a generated loopback slice (``dcim simulate --scale``), its own process;
- a null InfluxDB (answers ``/ping`` as 1.8 and ``/write`` with 204, counts lines), its own process,
  so the collectors do their whole job (poll → samples → line protocol → gzip → HTTP) without a
  database competing for the 2 cores;
- N shards of ``dcim run --shard i/N`` against the slice, for a fixed duration.

It prints samples/s per collector CPU-second, CPU per device-poll, the twin's CPU beside it, and
the projected collector cores for the full 386 MW site (its endpoint mix from the generator) at a
10 s interval.  Peer in the same run: the same slice polled by one shard (N=1) — the ratio shows
what sharding costs (it should cost nothing: shards share no state).

    python bench/site_scale.py [--scale halls=1,rows=1,racks=12,nodes=18] [--shards 2] [--seconds 30] [--warmup 15]
"""
from __future__ import annotations

import argparse
import http.server
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, proc_cpu_s, stable, start_twin  # noqa: E402
from localservers.process import free_port, wait_for_port  # noqa: E402


def _null_influx(port: int, points, polls) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, code: int) -> None:
            self.send_response(code)
            self.send_header("X-Influxdb-Version", "1.8.10")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self._reply(204)

        def do_HEAD(self):
            self._reply(204)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                import gzip
                body = gzip.decompress(body)
            lines = body.split(b"\n")
            with points.get_lock():
                points.value += sum(1 for line in lines if line)
                polls.value += sum(1 for line in lines if line.startswith(b"poll,"))
            self._reply(204)

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def run_shards(site: Path, shards: int, warmup: float, seconds: float, influx_port: int, workdir: Path,
               points, polls) -> tuple[float, int, int]:
    """(collector CPU seconds, polls, points) of N shard processes over a window after warm-up.

    Start-up (imports, inventory load, SNMP profile detection) is left out: a
    collector runs for months, so the figure that sizes the fleet is the steady
    state.  Polls and points are counted where they arrive (the null InfluxDB).
    """
    cfg = workdir / f"run-{shards}.yaml"
    cfg.write_text(f"site: {site}\ninfluxdb: {{url: 'http://127.0.0.1:{influx_port}', database: bench, api: v1}}\n"
                   "concurrency: {snmp: 1000, modbus: 200, dcgm: 1000, redfish: 100}\nlog_level: warning\n")
    procs = [subprocess.Popen([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--shard", f"{i}/{shards}",
                               "--duration", str(warmup + seconds + 30)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
             for i in range(shards)]
    try:
        time.sleep(warmup)
        c0 = sum(proc_cpu_s(p.pid) for p in procs)
        p0, q0 = points.value, polls.value
        time.sleep(seconds)
        c1 = sum(proc_cpu_s(p.pid) for p in procs)
        print(f"  run: {shards} shard process(es); CPU since start per process (s): "
              f"{[round(proc_cpu_s(p.pid), 2) for p in procs]}", flush=True)
        p1, q1 = points.value, polls.value
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode not in (0, -15):
                raise SystemExit(f"shard failed ({p.returncode}):\n{err[-2000:]}")
    return c1 - c0, q1 - q0, p1 - p0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="halls=1,rows=1,racks=12,nodes=18,ups=4,cdus=2,bmcs=1")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window per run (two runs: 1 shard, then N)")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds before the window (start-up, detection)")
    args = ap.parse_args()
    if not (1 <= args.shards <= 8) or not (5 <= args.seconds <= 300):
        raise SystemExit("--shards 1..8, --seconds 5..300")
    os.environ.setdefault("DCIM_SNMP_COMMUNITY", "public")
    os.environ.setdefault("DCIM_BMC_USER", "bench")
    os.environ.setdefault("DCIM_BMC_PASSWORD", "bench")
    from inventory.generate import FULL_SITE, generate_site, iter_devices
    from inventory.loader import load_site

    points, polls = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
    influx_port = free_port()
    sink = multiprocessing.Process(target=_null_influx, args=(influx_port, points, polls), daemon=True)
    sink.start()
    wait_for_port(influx_port)
    with tempfile.TemporaryDirectory() as tmp:
        site_path = Path(tmp) / "slice.yaml"
        twin = start_twin(args.scale, site_path, free_port())
        try:
            site = load_site(site_path)
            mix = Counter(d.protocol for d in site.polled_devices())
            cal0 = calibrate()
            results = {}
            for n in (1, args.shards):
                t0 = proc_cpu_s(twin.pid)
                results[n] = run_shards(site_path, n, args.warmup, args.seconds, influx_port, Path(tmp), points, polls) \
                    + (proc_cpu_s(twin.pid) - t0,)
            cal1 = calibrate()
        finally:
            twin.terminate()
            twin.wait(timeout=30)
            sink.terminate()
    polled = sum(mix.values())
    print(f"slice {args.scale}: {polled} endpoints ({', '.join(f'{k} {v}' for k, v in sorted(mix.items()))}), "
          f"interval 10 s, {args.seconds:.0f} s per run")
    print(f"{'shards':>6} {'polls':>7} {'points':>9} {'collector CPU s':>16} {'ms CPU/poll':>12} {'samples/CPU-s':>14} {'twin CPU s':>11}")
    for n, (cpu, polls, points, twin_cpu) in results.items():
        print(f"{n:6d} {polls:7d} {points:9d} {cpu:16.2f} {1000 * cpu / max(polls, 1):12.3f} {points / max(cpu, 1e-9):14,.0f} {twin_cpu:11.2f}")
    cpu, polls, points, _ = results[args.shards]
    per_poll = cpu / max(polls, 1)
    full = generate_site(FULL_SITE)
    full_endpoints = sum(1 for d in iter_devices(full) if d.get("protocol"))
    cores = full_endpoints / 10.0 * per_poll
    print(f"N-shard vs 1-shard CPU per poll: {per_poll / (results[1][0] / max(results[1][1], 1)):.2f}x")
    print(f"full site: {full_endpoints:,} endpoints at 10 s -> {full_endpoints / 10:,.0f} polls/s x {1000 * per_poll:.3f} ms "
          f"= {cores:.1f} collector cores (at this slice's protocol mix)")
    print(f"calibration {cal0:.3f}s -> {cal1:.3f}s ({'stable' if stable(cal0, cal1) else 'UNSTABLE: rerun'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
