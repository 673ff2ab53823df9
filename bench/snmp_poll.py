"""SNMP poll cost: each engine vs prometheus-snmp-exporter against real net-snmp agents.

N snmpd agents (default 50) each serve a 100-OID PDU-shaped MIB (4 scalars +
4 columns x 24 outlets, via ``override`` directives: snmpd answers them from
memory, no extend/pass scripts).  For a fixed number of rounds every agent is
polled once per round, all concurrently:

- each engine through ``SnmpCollector`` end to end: poll -> Samples -> line
  protocol text (the writer's ``sinks.lineprotocol``; nothing is sent anywhere).  CPU is this
  process's ``time.process_time()`` (the agents are other processes).
- prometheus-snmp-exporter (Debian's Go binary) with an snmp.yml module for the
  same OIDs, scraped over HTTP with ``?target=``; CPU is the exporter process's
  utime+stime from /proc (our HTTP client's CPU is not counted for it).

Runs alternate A B C A B C ..., report medians, and bracket the whole run with
a fixed CPU calibration loop (the VM's speed drifts; a run whose calibration
moved by more than 25 % is flagged).  Bounded: --max-seconds (120 by default,
--quick: 20 agents, ~20 s).

    python bench/snmp_poll.py [--agents 50] [--rounds 4] [--reps 3] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.base import PollError, Target  # noqa: E402
from collectors.snmp.collector import SnmpCollector  # noqa: E402
from collectors.snmp.engine import ENGINES  # noqa: E402
from collectors.snmp.profiles import load_profile  # noqa: E402
from inventory.secrets import SecretValue  # noqa: E402
from sinks.lineprotocol import sample_line  # noqa: E402
from localservers.process import ManagedProcess, ServerStartError, free_port, wait_for_port  # noqa: E402
from testkit.snmp import SnmpdServer  # noqa: E402

ENT = "1.3.6.1.4.1.99999.1"
OUTLETS = 24
COMMUNITY = "bench"


def agent_config(seed: int) -> list[str]:
    lines = [f"override .1.3.6.1.2.1.1.2.0 object_id .{ENT}"]
    scal = [230_000 + seed, 2301, 1234 + seed, 98765]
    for i, v in enumerate(scal, 1):
        t = "counter" if i == 4 else "integer"
        lines.append(f"override .{ENT}.2.{i}.0 {t} {v}")
    for r in range(1, OUTLETS + 1):
        lines.append(f"override .{ENT}.1.1.2.{r} integer {100 + r + seed}")
        lines.append(f"override .{ENT}.1.1.3.{r} integer {2300 + r}")
        lines.append(f"override .{ENT}.1.1.4.{r} integer {200 + r}")
        lines.append(f"override .{ENT}.1.1.5.{r} counter {50_000 + r * 7}")
    return lines


def exporter_yaml() -> str:
    cols = {2: "outlet_current", 3: "outlet_voltage", 4: "outlet_power", 5: "outlet_energy"}
    # the same requests as the profile: one walk of the table Entry, one GET of the scalars
    lines = ["bench_pdu:", "  version: 2", "  max_repetitions: 100", "  retries: 1", "  timeout: 3s",
             "  auth:", f"    community: {COMMUNITY}", "  walk:", f"  - {ENT}.1.1"]
    lines += ["  get:"] + [f"  - {ENT}.2.{i}.0" for i in range(1, 5)]
    lines += ["  metrics:"]
    for i, name in enumerate(["pdu_power", "pdu_voltage", "pdu_current", "pdu_energy"], 1):
        lines += [f"  - name: {name}", f"    oid: {ENT}.2.{i}", "    type: gauge"]
    for c, name in cols.items():
        lines += [f"  - name: {name}", f"    oid: {ENT}.1.1.{c}", "    type: gauge",
                  "    indexes:", "    - labelname: outlet", "      type: gauge"]
    return "\n".join(lines) + "\n"


_LINE_CACHE: dict = {}


def line_protocol(samples, cache: dict) -> str:
    """The writer's own encoding (sinks.lineprotocol, with its tag-set cache), as ``dcim run`` does."""
    return "\n".join(line for line in (sample_line(s, cache) for s in samples) if line is not None)


def calibrate() -> float:
    t = time.process_time()
    x = 0
    for i in range(300_000):
        x += i * i % 7
    return time.process_time() - t


async def engine_run(collector: SnmpCollector, targets: list[Target], rounds: int) -> tuple[float, float, int, int]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ok = errors = 0
    nbytes = 0
    cache = _LINE_CACHE  # one tag-set cache, as the one writer of a process has
    for _ in range(rounds):
        results = await asyncio.gather(*(collector.poll(t) for t in targets), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                errors += 1
                if not isinstance(r, PollError):
                    raise r
            else:
                ok += 1
                nbytes += len(line_protocol(r, cache))
    return time.process_time() - cpu0, time.perf_counter() - wall0, ok, errors


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def exporter_run(pid: int, port: int, agents: list[int], rounds: int, pool: ThreadPoolExecutor):
    def scrape(agent_port: int) -> bool:
        url = f"http://127.0.0.1:{port}/snmp?module=bench_pdu&target=127.0.0.1:{agent_port}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
        return b"outlet_power{" in body and b"snmp_scrape_pdus_returned" in body
    cpu0, wall0 = proc_cpu(pid), time.perf_counter()
    ok = errors = 0
    for _ in range(rounds):
        for good in pool.map(scrape, agents):
            ok += good
            errors += not good
    return proc_cpu(pid) - cpu0, time.perf_counter() - wall0, ok, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4, help="polls of every agent per measured run")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs per contender (medians reported)")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="20 agents, 2 reps: about 20 s")
    ap.add_argument("--no-exporter", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.agents, args.rounds, args.reps, args.max_seconds = 20, 3, 2, 20.0
    start = time.monotonic()
    deadline = start + args.max_seconds
    prof = load_profile(Path(__file__).with_name("snmp_bench_pdu.yaml"))
    work = Path(tempfile.mkdtemp(prefix="snmp-bench-"))
    agents: list[SnmpdServer] = []
    exporter = None
    try:
        for i in range(args.agents):
            agents.append(SnmpdServer(community=COMMUNITY, extra_config=agent_config(i), workdir=work / f"a{i}").start())
        print(f"{len(agents)} snmpd agents up in {time.monotonic() - start:.1f}s")
        contenders = list(ENGINES)
        if not args.no_exporter:
            binary = shutil.which("prometheus-snmp-exporter") or "/usr/bin/prometheus-snmp-exporter"
            if not os.path.exists(binary):
                raise ServerStartError("prometheus-snmp-exporter not found: apt-get install prometheus-snmp-exporter")
            cfg = work / "snmp.yml"
            cfg.write_text(exporter_yaml())
            eport = free_port()
            exporter = ManagedProcess([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{eport}",
                                       "--log.level=warn"], work / "exporter.log").start(
                lambda p: wait_for_port(eport, proc=p.proc))
            contenders.append("snmp_exporter")
        calib0 = calibrate()
        collectors = {e: SnmpCollector(engine=e, profiles={prof.name: prof}) for e in ENGINES}
        targets = [Target(f"pdu{i}", "snmp", "127.0.0.1", a.port, profile=prof.name, timeout_s=3.0, retries=1,
                          secrets={"community": SecretValue(COMMUNITY)}) for i, a in enumerate(agents)]
        pool = ThreadPoolExecutor(16)
        loop = asyncio.new_event_loop()
        # warm-up: sessions, imports, exporter connections (not measured)
        for e in ENGINES:
            loop.run_until_complete(engine_run(collectors[e], targets, 1))
        if exporter:
            exporter_run(exporter.pid, eport, [a.port for a in agents], 1, pool)
        results: dict[str, list[tuple[float, float, int, int]]] = {c: [] for c in contenders}
        for rep in range(args.reps):
            for c in contenders:
                if time.monotonic() > deadline:
                    break
                if c == "snmp_exporter":
                    results[c].append(exporter_run(exporter.pid, eport, [a.port for a in agents], args.rounds, pool))
                else:
                    results[c].append(loop.run_until_complete(engine_run(collectors[c], targets, args.rounds)))
        for c in collectors.values():
            loop.run_until_complete(c.close())
        loop.close()
        pool.shutdown()
        calib1 = calibrate()
        drift = abs(calib1 - calib0) / calib0
        print(f"\n{args.agents} agents x {args.rounds} rounds x {args.reps} reps, 100 OIDs per PDU poll "
              f"(calibration {calib0 * 1000:.0f} -> {calib1 * 1000:.0f} ms, drift {drift:.0%}"
              f"{' - UNRELIABLE, rerun' if drift > 0.25 else ''})")
        print(f"{'contender':<16}{'PDUs/s':>10}{'ms CPU/PDU':>13}{'errors':>8}   vs snmp_exporter   vs pysnmp")
        summary = {}
        for c, runs in results.items():
            if not runs:
                continue
            cpu_per = statistics.median(r[0] / max(r[2], 1) for r in runs) * 1000
            rate = statistics.median(r[2] / r[1] for r in runs)
            errs = sum(r[3] for r in runs)
            summary[c] = (rate, cpu_per, errs)
        for c, (rate, cpu_per, errs) in summary.items():
            vs_exp = f"{cpu_per / summary['snmp_exporter'][1]:.2f}x" if "snmp_exporter" in summary else "-"
            vs_py = f"{cpu_per / summary['pysnmp'][1]:.3f}x" if "pysnmp" in summary else "-"
            print(f"{c:<16}{rate:>10.0f}{cpu_per:>13.3f}{errs:>8}   {vs_exp:>16}   {vs_py:>9}")
        if "gufo" in summary:
            cpu = summary["gufo"][1]
            line = f"\ngufo end to end: {cpu:.3f} ms CPU per 100-OID PDU; ~{10_000 / cpu:.0f} PDUs per 10 s per core"
            if "snmp_exporter" in summary:
                ratio = cpu / summary["snmp_exporter"][1]
                line += f"; {ratio:.2f}x prometheus-snmp-exporter (target <= 0.5x: {'MET' if ratio <= 0.5 else 'NOT MET'})"
            print(line + " - the CPU is shared: the ratio is the figure")
        print(f"total {time.monotonic() - start:.1f}s")
        return 0
    finally:
        if exporter:
            exporter.stop()
        for a in agents:
            a.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
