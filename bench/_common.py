"""Helpers shared by the bench scripts: CPU calibration and medians, the calibrated A/B round loop
(:func:`alternate`), the child process that serves endpoints (:func:`start_child_server`, twin BMCs:
:func:`start_twin_bmcs`) and gzip'd
line-protocol loads (:class:`LineBatches`).

These machines are shared and their speed drifts; every bench measures a
peer in the same run, alternates A B A B, brackets runs with a fixed CPU
calibration loop and discards rounds where the calibration moved by more
than ``tolerance``.
"""
from __future__ import annotations

import statistics
import time


def calibrate(n: int = 2_000_000) -> float:
    """CPU seconds for a fixed pure-Python loop."""
    t = time.process_time()
    x = 0
    for i in range(n):
        x += i * i % 7
    return time.process_time() - t


def stable(before: float, after: float, tolerance: float = 0.25) -> bool:
    return abs(after - before) / max(before, 1e-9) <= tolerance


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def proc_cpu_s(pid: int) -> float:
    """utime+stime of another process, in seconds, from /proc (Linux)."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_twin(scale: str, site_path, control_port: int, python: str | None = None):
    """``dcim simulate --scale`` in its own process (so its CPU is measured apart); returns the Popen."""
    import subprocess
    import sys

    from localservers.process import wait_for_port

    proc = subprocess.Popen([python or sys.executable, "-m", "dcim.cli", "simulate", "--scale", scale,
                             "--write-site", str(site_path), "--control-port", str(control_port), "--duration", "900"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(control_port, timeout=120, proc=proc)
    except Exception:
        proc.kill()
        raise
    return proc


def start_child_server(script: str, *argv: str):
    """``script --serve ARGV...`` in a child process (so the endpoints' CPU is not counted for either side);
    returns the Popen and the ports it printed as one JSON line (see :func:`serve_until_stdin_closed`)."""
    import json
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, script, "--serve", *argv],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        return child, json.loads(child.stdout.readline())
    except BaseException:
        stop_child_server(child)
        raise


def stop_child_server(child) -> None:
    """Ends a :func:`start_child_server` child: stdin closed (its signal to stop), then killed after 5 s."""
    import subprocess

    child.stdin.close()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()


async def start_twin_bmcs(count: int) -> list:
    """``count`` twin BMCs (Redfish with session login) on their own loopback ports, each serving
    ``redfish_resources`` built per request (the twin itself builds them once per model step):
    the Redfish benches' peer."""
    from simulator.http_endpoints import HttpEndpoint, json_body, redfish_resources
    from simulator.model import DeviceState

    state = DeviceState(power_w=9_800.0)
    endpoints = []
    for i in range(count):
        def route(path: str, node=f"bench-n{i}"):
            res = redfish_resources(node, state).get(path)
            return json_body(res) if res is not None else None
        endpoints.append(await HttpEndpoint(route, sessions=True).start("127.0.0.1", 0))
    return endpoints


async def serve_until_stdin_closed(ports: list[int]) -> None:
    """The child's side: print the ports it listens on, then serve until the parent closes its stdin."""
    import asyncio
    import json
    import sys

    print(json.dumps(ports), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def post_lines(http, url: str, db: str, rp: str, lines: list[str], timeout_s: float = 600.0) -> None:
    """Line protocol (seconds) gzip'd into ``db``.``rp`` in one POST; a refusal raises with InfluxDB's words."""
    import gzip

    body = gzip.compress("\n".join(lines).encode(), 1)
    r = http.request("POST", f"{url}/write?db={db}&rp={rp}&precision=s", body=body,
                     headers={"Content-Encoding": "gzip"}, timeout=timeout_s, retries=False)
    if r.status != 204:
        raise RuntimeError(f"write failed {r.status}: {r.data[:300]!r}")


class LineBatches:
    """Lines posted 50,000 at a time into one retention policy; ``n`` counts what was sent."""

    def __init__(self, url: str, db: str, rp: str, timeout_s: float = 600.0) -> None:
        import urllib3

        self.http, self.url, self.db, self.rp = urllib3.PoolManager(), url, db, rp
        self.timeout_s = timeout_s
        self.lines: list[str] = []
        self.n = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= 50_000:
            self.flush()

    def flush(self) -> int:
        if self.lines:
            post_lines(self.http, self.url, self.db, self.rp, self.lines, self.timeout_s)
            self.n += len(self.lines)
            self.lines = []
        return self.n


class Alternated:
    """What :func:`alternate` measured: wall seconds per kept round for A and B, rounds discarded for calibration
    drift, the last results of A and B, and whether a round's results disagreed (then the loop stopped)."""

    def __init__(self) -> None:
        self.a_s: list[float] = []
        self.b_s: list[float] = []
        self.skipped = 0
        self.last_a = self.last_b = None
        self.disagreed = False


def alternate(a, b, rounds: int, budget_s: float, agree=None) -> Alternated:
    """A then B, ``rounds`` times at most and no new round after ``budget_s``; a calibration loop brackets each
    pair and a pair where the machine's speed moved is discarded. ``agree(result_a, result_b)``, when given, is
    checked every round before the drift test: a disagreement stops the loop."""
    import time

    out = Alternated()
    stop = time.monotonic() + budget_s
    for _ in range(rounds):
        if time.monotonic() > stop:
            break
        before = calibrate()
        t = time.perf_counter()
        out.last_a = a()
        d_a = time.perf_counter() - t
        t = time.perf_counter()
        out.last_b = b()
        d_b = time.perf_counter() - t
        if agree is not None and not agree(out.last_a, out.last_b):
            out.disagreed = True
            break
        if not stable(before, calibrate()):
            out.skipped += 1
            continue
        out.a_s.append(d_a)
        out.b_s.append(d_b)
    return out
