"""The whole site on this machine: the twin serves every endpoint, one ``dcim run`` with rules and
derived metrics polls them all into a real InfluxDB, for a bounded number of intervals.

What it runs (all on loopback, every process started here and stopped by pid):
- the site from ``inventory.generate`` (``--halls``, 24 = the full 386 MW site, ≈52,700 endpoints),
  loopback plan (one 127.0.0.0/8 address per device) on free ports, at ``--interval`` (60 s);
- a real influxd with docs/storage.md's server settings (the ``tsi1`` index, ``GOGC=200`` and a
  ``GOMEMLIMIT``, a 4 GiB write cache written out at 1.25 GiB: ``--influx-index``,
  ``--influx-memory-limit``, ``--influx-cache-max``, ``--influx-snapshot``; ``GOGC=100`` in the environment runs
  Go's default to compare) and Mosquitto (localservers), the twin (``dcim simulate --site``), at nice -10 when
  run as root (``--twin-nice``): it stands in for devices with CPUs of their own, and starved of the
  shared cores it answered late, so the collectors timed out on the twin's load, not their own;
- ``dcim run --derived --alerts alerts/rules/site.yaml --mqtt …`` for ``--intervals`` intervals,
  then the same site with ``--shards N`` processes (``dcim run --shard i/N --alerts …``) and the
  site-level ``dcim derived run --alerts …`` beside them, so the cost of sharding is measured
  beside one process in the same run.

What it prints: first, with ``--shards`` > 1, one shard started by itself (as on its own collector
host: process start → "polling" → its first batch written, then SIGTERM → exit); then per run:
start-up (every process started at once → all "polling" logged → first write in InfluxDB, and each
process's own first batch);
polls per interval against the devices (from InfluxDB, interval windows aligned on the
scheduler's start: every device should be polled for its tick in every window, within half an
interval of it, ``poll_windows``); skipped ticks and failed polls
(from ``dcim run``'s own stop line); collector CPU per device-poll (the run's CPU over the
measured windows / polls); the derived computations in the measured intervals and the CPU of each (the
job's own ``dcim_derived`` points); RSS of each
process; the CPU of the twin, influxd and the derived job over the same windows (the whole
machine's budget); and the projection to a 10 s interval (cores, shards at one
core each).  Collector CPU by protocol comes from ``--by-protocol``: one short extra run per
protocol (the same site with only that protocol's devices polled).

The machine is 2 shared cores: absolute figures drift with the other engineers' load, so the
calibration loop is printed before and after, and ratios (N shards vs 1) are the figure to trust.

    python bench/site_full.py --halls 2 --intervals 2                  # ≈4,400 endpoints, a few minutes
    python bench/site_full.py                                           # the full site: shards only here
    python bench/site_full.py --halls 24 --intervals 1 --shards 3 --no-single   # 6 twins here
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, proc_cpu_s, stable  # noqa: E402
from localservers.process import free_port, wait_for_port  # noqa: E402

RULES = ROOT / "alerts" / "rules" / "site.yaml"
_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hard_files() -> int:
    """The open-file hard limit of this process (and of the processes it starts)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def log_time(line: str) -> float | None:
    """Epoch seconds of a ``dcim`` log line (local time, as logging writes it)."""
    m = _TS.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) + int(m.group(1)[20:]) / 1000


#: what the writer logs once, when InfluxDB has taken a process's first batch (sinks/influx_writer.py)
FIRST_BATCH = "first batch written to InfluxDB"


def first_logged(log: Path, needle: str) -> float | None:
    """Epoch seconds of the first line of ``log`` that contains ``needle``."""
    for line in log.read_text().splitlines():
        if needle in line:
            return log_time(line)
    return None


def count(influx, db: str, q: str) -> int:
    series = influx.query(q, db=db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


#: seconds after the last window's end that the run goes on, so that window's last polls finish
#: (retries and queueing included: the site's default deadline is 2 s x 2 attempts)
POLL_MARGIN_S = 10.0


def polled_for_tick(scheduled: list[float], lo: float, interval: float) -> bool:
    """Whether a device whose scheduled polls started at ``scheduled`` (s, oldest first) was polled
    for its tick in the window ``[lo, lo + interval)``: its ticks are its first scheduled poll plus
    whole intervals (the scheduler is fixed-rate), and one poll must start within half an interval
    of the tick that falls in the window."""
    if not scheduled:
        return False
    tick = scheduled[0] + math.ceil((lo - scheduled[0]) / interval) * interval
    return any(abs(x - tick) < interval / 2 for x in scheduled)


def poll_windows(influx, db: str, w0: float, interval: float, intervals: int,
                 devices: int) -> tuple[list[tuple[int, int]], list[str]]:
    """Per measured window, (polls that started in it, devices polled for their tick in it); and,
    for a few devices that missed a tick, their polls around it.

    A ``poll`` point is stamped when the poll ends; its start is that time less ``duration_ms`` and
    ``queue_ms``.  Each device is polled at a fixed phase of the interval, and the phases spread
    evenly, so some devices always sit on a window's edge: a poll ±0.3 s from its tick there (the
    timer wheel's slot, the loop's lag) lands in the window before or after, and counting polls per
    window showed ≈100–300 devices missing in one window and twice in the next, every one polled on
    time.  So a device counts for a window when one of its scheduled polls (not a trap-triggered
    extra) was for its tick there (:func:`polled_for_tick`); a skipped tick, or a poll later than
    half an interval, still counts as missing."""
    a, b = w0 - interval, w0 + intervals * interval + POLL_MARGIN_S
    q = (f"SELECT duration_ms, queue_ms, ok, triggered FROM poll WHERE time >= {int(a * 1e9)} "
         f"AND time < {int(b * 1e9)} GROUP BY device")
    series = influx.query(q, db=db, method="POST")["results"][0].get("series") or []
    polls, polled = [0] * intervals, [0] * intervals
    notes: list[str] = []
    for s in series:
        rows = s["values"]
        starts = [(t - int(((dur or 0) + (queue or 0)) * 1e6)) / 1e9 for t, dur, queue, _ok, _tr in rows]
        scheduled = [x for x, (*_, triggered) in zip(starts, rows) if not triggered]
        missed = []
        for k in range(intervals):
            lo = w0 + k * interval
            polls[k] += sum(lo <= x < lo + interval for x in starts)
            if polled_for_tick(scheduled, lo, interval):
                polled[k] += 1
            else:
                missed.append(k + 1)
        if missed and len(notes) < 5:
            notes.append(f"{s['tags']['device']} missed its tick in interval(s) {missed}: polls (start, end s from "
                         "the first window; ok; triggered) " + "; ".join(
                             f"{x - w0:.1f}, {t / 1e9 - w0:.1f}, {ok}, {bool(tr)}"
                             for x, (t, _d, _q, ok, tr) in zip(starts, rows)))
    if len(series) < devices:
        notes.append(f"{devices - len(series):,} device(s) with no poll at all from one interval before the "
                     "first window to the end")
    return list(zip(polls, polled)), notes


def outcomes_by_protocol(influx, db: str, a: float, b: float) -> dict[str, tuple[int, int]]:
    """protocol -> (polls, failed) with a time in [a, b)."""
    q = (f"SELECT count(ok) FROM poll WHERE time >= {int(a * 1e9)} AND time < {int(b * 1e9)} GROUP BY protocol; "
         f"SELECT count(ok) FROM poll WHERE ok = false AND time >= {int(a * 1e9)} AND time < {int(b * 1e9)} "
         "GROUP BY protocol")
    res = influx.query(q, db=db)["results"]
    out: dict[str, list[int]] = {}
    for k, r in enumerate(res):
        for series in r.get("series") or []:
            out.setdefault(series["tags"]["protocol"], [0, 0])[k] = int(series["values"][0][1])
    return {p: (n, f) for p, (n, f) in sorted(out.items())}


@dataclasses.dataclass
class RunResult:
    label: str
    procs: int
    startup_polling_s: float
    first_write_s: float
    #: each process's own first batch taken by InfluxDB, s after the processes were started
    first_writes: list[float]
    windows: list[tuple[int, int]]
    polls: int
    failed: int
    skipped: int
    cpu_s: float
    derived_cpu: list[float]
    rss: list[float]
    stop_s: list[float]
    exit_codes: list[int]
    by_protocol: dict[str, tuple[int, int]]
    #: CPU seconds of the other processes over the measured windows (twin, influxd, the derived job)
    others_cpu: dict[str, float]


#: influxd's own counters (``/debug/vars``) the run prints, summed over its shards
ENGINE_VARS = {"tsm1_cache": ("snapshotCount",),
               "httpd": ("writeReq", "writeReqDurationNs", "pointsWrittenOK", "serverError"),
               "tsm1_engine": ("cacheCompactions", "cacheCompactionDuration", "tsmLevel1Compactions",
                               "tsmLevel2Compactions", "tsmLevel3Compactions", "tsmFullCompactions",
                               "tsmLevel1CompactionDuration", "tsmLevel2CompactionDuration",
                               "tsmLevel3CompactionDuration", "tsmFullCompactionDuration")}


def engine_vars(influx) -> dict[str, float]:
    """influxd's write and compaction counters now (cumulative since it started)."""
    try:
        return influx.counters(ENGINE_VARS)
    except OSError as exc:  # a stalled influxd is a finding to print, not a reason to lose the run
        print(f"  influxd did not answer /debug/vars: {exc}", flush=True)
        return {}


def engine_line(d: dict[str, float], snapshot_running: float = 0) -> str:
    """``d``: the counters' growth over the measured intervals; ``snapshot_running``: the cache's
    ``snapshotCount`` at their end (a snapshot being written: counted in ``cacheCompactions`` only
    once it is done).  Why say when there was none: with a snapshot threshold of a few intervals'
    keys (docs/storage.md) a short run can fall between two snapshots and leave their cost out."""
    comp = sum(d.get(f"tsmLevel{k}Compactions", 0) for k in (1, 2, 3)) + d.get("tsmFullCompactions", 0)
    comp_s = sum(d.get(f"tsmLevel{k}CompactionDuration", 0) for k in (1, 2, 3)) + d.get("tsmFullCompactionDuration", 0)
    writes = d.get("writeReq", 0)
    return (f"{d.get('pointsWrittenOK', 0):,.0f} points in {writes:,.0f} writes "
            f"({d.get('writeReqDurationNs', 0) / 1e6 / max(writes, 1):,.0f} ms each on average), "
            f"{d.get('cacheCompactions', 0):.0f} cache snapshots ({d.get('cacheCompactionDuration', 0) / 1e9:.1f} s), "
            f"{comp:.0f} TSM compactions ({comp_s / 1e9:.1f} s), "
            f"{d.get('serverError', 0):.0f} answered 5xx (a full write cache, or a write past influxd's write-timeout)"
            + snapshot_note(d.get("cacheCompactions", 0), snapshot_running))


def snapshot_note(done: float, running: float) -> str:
    """What the influxd line adds about snapshots: one still running at the end, or none at all."""
    if running:
        return "; a snapshot still being written at the end"
    if not done:
        return "; NO snapshot in the measured intervals: they leave its cost out (run more --intervals)"
    return ""


def write_run_config(path: Path, site: Path, influx, db: str, spool: Path) -> Path:
    """The service config every ``dcim run`` here reads: the site, this run's database and spool."""
    path.write_text(f"site: {site}\ninfluxdb: {{url: '{influx.url}', database: {db}, api: v1, "
                    f"spool_dir: {spool}}}\n"
                    "concurrency: {snmp: 1000, modbus: 200, dcgm: 1000, redfish: 200}\nlog_level: info\n")
    return path


def alert_args(state_dir: Path, mqtt: str) -> list[str]:
    return ["--alerts", str(RULES), "--state-dir", str(state_dir), "--mqtt", mqtt]


def wait_exit(proc: subprocess.Popen) -> int:
    """``proc``'s exit code, killed after 60 s (a stop that hangs is the figure, not a stuck bench)."""
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def run_collectors(label: str, site: Path, shards: int, interval: float, intervals: int, influx, db: str,
                   mqtt: str, work: Path, env: dict, devices: int, derived: bool = True,
                   alerts: bool = True, others: dict[str, list[int]] | None = None) -> RunResult:
    """``shards`` dcim run processes for ``intervals`` whole intervals after start-up.

    ``others``: name -> pids whose CPU over the measured windows is reported beside the collectors'."""
    cfg = write_run_config(work / f"run-{label}.yaml", site, influx, db, work / f"spool-{label}")
    procs, logs, helpers = [], [], []
    t_start = time.time()
    for i in range(shards):
        argv = [sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--duration", "3600"]
        if shards > 1:
            argv += ["--shard", f"{i}/{shards}"]
        if derived and shards == 1:
            argv += ["--derived"]
        if alerts:
            argv += alert_args(work / f"state-{label}-{i}", mqtt)
        log = work / f"run-{label}-{i}.log"
        logs.append(log)
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w")))
    if derived and shards > 1:
        # a sharded site computes derived metrics in one site-level job (dcim derived run), reading
        # the shards' latest readings from InfluxDB: its CPU and the queries' load on influxd count too
        argv = [sys.executable, "-m", "dcim.cli", "derived", "run", "--config", str(cfg), "--interval",
                f"{interval:g}", "--duration", "3600"]
        if alerts:
            argv += alert_args(work / f"state-{label}-derived", mqtt)
        derived_log = work / f"run-{label}-derived.log"
        helpers.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(derived_log, "w")))
    try:
        # start-up: every process logged "polling", then the first poll point arrived
        t0s: list[float] = []
        deadline = time.time() + 600
        while len(t0s) < shards:
            t0s = []
            for p, log in zip(procs, logs):
                if p.poll() is not None:
                    raise SystemExit(f"{label}: dcim run exited {p.returncode}:\n{log.read_text()[-3000:]}")
                for line in log.read_text().splitlines():
                    if "dcim.service: polling " in line:
                        t0s.append(log_time(line) or time.time())
                        break
            if time.time() > deadline:
                raise SystemExit(f"{label}: not polling after 600 s")
            time.sleep(0.5)
        first = None
        while first is None and time.time() < deadline:
            if count(influx, db, f"SELECT count(ok) FROM poll WHERE time >= {int(t_start * 1e9)}"):
                first = time.time()
            else:
                time.sleep(0.2)
        t0 = max(t0s)
        # measured: whole intervals after the first one (start-up transients left out)
        w0 = t0 + interval
        end = w0 + intervals * interval
        while time.time() < w0:
            time.sleep(0.5)
        others = {**(others or {}), **({"dcim derived run": [h.pid for h in helpers]} if helpers else {})}
        c0 = sum(proc_cpu_s(p.pid) for p in procs)
        o0 = {k: sum(proc_cpu_s(pid) for pid in pids) for k, pids in others.items()}
        e0 = engine_vars(influx)
        while time.time() < end + 2.0:  # polls that end just after the window
            time.sleep(0.5)
        c1 = sum(proc_cpu_s(p.pid) for p in procs)
        e1 = engine_vars(influx)
        if e0 and e1:
            print(f"  influxd over the measured intervals (GOGC={influx.environment()['GOGC']}): "
                  f"{engine_line({k: e1[k] - e0.get(k, 0) for k in e1}, e1.get('snapshotCount', 0))}; RSS {rss_mib(influx.process.proc.pid):,.0f} MiB",
                  flush=True)
        others_cpu = {k: sum(proc_cpu_s(pid) for pid in pids) - o0[k] for k, pids in others.items()}
        rss = [rss_mib(p.pid) for p in procs]
        while time.time() < end + POLL_MARGIN_S:  # the window's last polls finish (poll_windows counts by start)
            time.sleep(0.5)
    finally:
        for h in helpers:
            if h.poll() is None:
                h.send_signal(signal.SIGTERM)
        t_helpers = time.time()
        for h in helpers:
            code = wait_exit(h)
            print(f"  dcim derived run: SIGTERM -> exit {time.time() - t_helpers:.1f} s, code {code}", flush=True)
        stops = []
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        t_term = time.time()
        codes = []
        for p in procs:
            codes.append(wait_exit(p))
            stops.append(time.time() - t_term)
    time.sleep(1.0)
    if (gone := influx.process.proc.poll()) is not None:  # what the run found, not a traceback
        print(f"  shards: SIGTERM -> exit {', '.join(f'{x:.1f}' for x in stops)} s, codes {codes}", flush=True)
        raise SystemExit(f"influxd exited during the run (code {gone}"
                         f"{': killed, for memory? see dmesg' if gone == -9 else ''}); nothing left to count")
    windows, notes = poll_windows(influx, db, w0, interval, intervals, devices)
    for note in notes:
        print(f"  {note}", flush=True)
    polls = failed = skipped = 0
    derived_cpu: list[float] = []
    for log in logs:
        text = log.read_text()
        for what in ("polling stopped in", "stopped in"):
            t_stop = re.findall(rf"dcim.service: {what} ([\d.]+) s", text)
            if t_stop:
                print(f"  {log.name}: {what} {t_stop[-1]} s", flush=True)
        gc_line = re.findall(r"garbage collection while polling: (.*)", text)
        if gc_line:
            print(f"  {log.name}: garbage collection while polling: {gc_line[-1]}", flush=True)
        m = re.search(r"stopped: (\d+) polls \((\d+) failed\)", text)
        if m:
            polls += int(m.group(1))
            failed += int(m.group(2))
    skipped = count(influx, db, f"SELECT sum(skipped) FROM poll WHERE time >= {int(t_start * 1e9)}")
    # the derived job's own points (one per computation) in the measured intervals: as many as
    # intervals when it keeps up, none when one computation takes longer than the window
    rows = influx.query(f"SELECT compute_cpu_s, read_s FROM dcim_derived WHERE time >= {int(w0 * 1e9)} "
                        f"AND time < {int(end * 1e9)}", db=db)
    for series in rows["results"][0].get("series") or []:
        derived_cpu += [float(v[1]) for v in series["values"]]
        reads = [v[2] for v in series["values"] if v[2] is not None]  # from dcim derived run only
        if reads:
            print("  derived computations' read-back: " + ", ".join(f"{x:.1f}" for x in reads) + " s", flush=True)
    measured_polls = sum(w[0] for w in windows)
    first_writes = [(t or float("nan")) - t_start for t in (first_logged(log, FIRST_BATCH) for log in logs)]
    return RunResult(label, shards, t0 - t_start, (first or float("nan")) - t_start, first_writes, windows, measured_polls,
                     failed, skipped, c1 - c0, derived_cpu, rss, stops, codes,
                     outcomes_by_protocol(influx, db, w0, end), others_cpu)


def start_alone(site: Path, shard: str, influx, db: str, mqtt: str, work: Path, env: dict,
                alerts: bool = True) -> tuple[float, float, float, int]:
    """One ``dcim run --shard`` started by itself, as on its own collector host (warm site cache,
    the twin serving, influxd idle), stopped by SIGTERM once its first batch is in InfluxDB.

    Returns (s to "polling", s to its first batch written, s from SIGTERM to exit, exit code).
    The sharded run starts every shard and the derived job at once on these 2 cores; this is
    the start-up of one of them where nothing else starts beside it."""
    cfg = write_run_config(work / "run-alone.yaml", site, influx, db, work / "spool-alone")
    argv = [sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--duration", "600", "--shard", shard]
    if alerts:
        argv += alert_args(work / "state-alone", mqtt)
    log = work / "run-alone.log"
    t_start = time.time()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        deadline = t_start + 180
        while first_logged(log, FIRST_BATCH) is None:
            if proc.poll() is not None:
                raise SystemExit(f"alone: dcim run exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.time() > deadline:
                raise SystemExit("alone: no batch written within 180 s")
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        t_term = time.time()
        code = wait_exit(proc)
        stop = time.time() - t_term
    polling = first_logged(log, "dcim.service: polling ")
    return ((polling or float("nan")) - t_start, (first_logged(log, FIRST_BATCH) or float("nan")) - t_start, stop, code)


def only_protocol(site_text: str, protocol: str) -> str:
    """The same site with only ``protocol``'s devices polled (the others: ``protocol: none``)."""
    import yaml

    from inventory.generate import dump_site, iter_devices

    data = yaml.load(site_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for d in iter_devices(data):
        if d.get("protocol") not in (None, protocol):
            for k in ("protocol", "host", "port", "unit", "profile", "credentials"):
                d.pop(k, None)
    return dump_site(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--halls", type=int, default=24, help="halls of the generated site (24: the full site)")
    ap.add_argument("--interval", type=float, default=60.0, help="poll interval, s (default 60)")
    ap.add_argument("--intervals", type=int, default=3, help="measured intervals per run (after one warm-up)")
    ap.add_argument("--shards", type=int, default=2, help="second run with N shard processes (1: skip it)")
    ap.add_argument("--by-protocol", action="store_true", help="also one short run per protocol (CPU per poll)")
    ap.add_argument("--no-alerts", action="store_true", help="leave the rule engine out")
    ap.add_argument("--twin-shards", type=int, default=0,
                    help="twin processes (dcim simulate --shard i/K; default: as few as the open-file hard limit "
                         "allows, a listening socket per endpoint and a keep-alive connection per HTTP one: "
                         "the full site needs 6 under 20,000)")
    ap.add_argument("--refresh", type=float, default=None,
                    help="the twin's model step, s (default: half of --interval, at least 10 s: a device is "
                         "polled once per interval, stepping the model more often is work nobody reads)")
    ap.add_argument("--twin-nice", type=int, default=None,
                    help="niceness of the twin processes (default -10 as root, else 0): the twin stands in for "
                         "devices that have CPUs of their own; starved of the shared cores, its answers came "
                         "late and the collectors counted timeouts that were the twin's, not theirs")
    ap.add_argument("--influx-index", choices=("tsi1", "inmem"), default="tsi1",
                    help="influxd's series index (default tsi1, docs/storage.md's production setting; "
                         "inmem: the tests' setting, every series key in influxd's heap)")
    ap.add_argument("--influx-memory-limit", default="10GiB",
                    help="influxd's GOMEMLIMIT (default 10GiB: what this 24 GB machine has left beside the "
                         "shards and the twin; at 8GiB the snapshot of the whole cache ran with 42 %% of "
                         "influxd's CPU in Go's collector; '' for none)")
    ap.add_argument("--influx-cache-max", type=float, default=4.0,
                    help="influxd's cache-max-memory-size, GiB (default 4, docs/storage.md's setting: room for "
                         "a snapshot being written and the cache refilling beside it; at influxd's own 1 GiB "
                         "writes are refused)")
    ap.add_argument("--influx-snapshot", type=float, default=1.25,
                    help="influxd's cache-snapshot-memory-size, GiB (default 1.25, docs/storage.md's setting: "
                         "every series x field key stays in the cache for several intervals; 0: influxd's own "
                         "25 MiB, a snapshot every few seconds)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the run's logs (dcim run, twin, derived) in this directory")
    ap.add_argument("--no-single", action="store_true",
                    help="skip the 1-process run (the full site's ≈45,600 HTTP connections exceed one process's 20,000 files)")
    args = ap.parse_args()
    if not (1 <= args.halls <= 24 and 1 <= args.intervals <= 10 and 10 <= args.interval <= 300
            and 1 <= args.shards <= 8):
        raise SystemExit("--halls 1..24, --intervals 1..10, --interval 10..300, --shards 1..8")
    from localservers.influx import InfluxServer
    from localservers.mosquitto import MosquittoServer
    from localservers.site import write_loopback_slice

    refresh = args.refresh if args.refresh is not None else max(10.0, args.interval / 2)
    env = {**os.environ, "DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "bench", "DCIM_BMC_PASSWORD": "bench",
           "PYTHONPATH": str(ROOT)}
    cal0 = calibrate()
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="site-full-") as tmp:
        work = Path(tmp)
        env["DCIM_SITE_CACHE"] = str(work / "cache")
        site = write_loopback_slice(work / "site.yaml", halls=args.halls, interval_s=args.interval)
        from inventory.loader import load_site

        os.environ["DCIM_SITE_CACHE"] = env["DCIM_SITE_CACHE"]
        t = time.process_time()
        mix = Counter(d.protocol for d in load_site(site).polled_devices())  # also fills the cache
        print(f"site: {args.halls} hall(s), {sum(mix.values()):,} endpoints "
              f"({', '.join(f'{k} {v:,}' for k, v in sorted(mix.items()))}), interval {args.interval:.0f} s; "
              f"first load {time.process_time() - t:.1f} s CPU", flush=True)
        devices = sum(mix.values())
        if args.twin_shards < 1:
            files = devices + mix.get("dcgm", 0) + mix.get("redfish", 0)
            args.twin_shards = max(1, -(-files // int(0.85 * hard_files())))  # head room: logs, pipes
        influx = InfluxServer(work / "influx", index=args.influx_index,
                              memory_limit=args.influx_memory_limit or None,
                              cache_max_bytes=int(args.influx_cache_max * 2**30),
                              snapshot_bytes=int(args.influx_snapshot * 2**30) if args.influx_snapshot else None).start()
        mosquitto = MosquittoServer(work / "mqtt").start()
        t = time.time()
        twin_nice = args.twin_nice if args.twin_nice is not None else (-10 if os.geteuid() == 0 else 0)
        twins = []
        for i in range(args.twin_shards):
            control = free_port()
            argv = [sys.executable, "-m", "dcim.cli", "simulate", "--site", str(site), "--control-port", str(control),
                    "--duration", "7200", "--refresh", f"{refresh:g}"]
            if args.twin_shards > 1:
                argv += ["--shard", f"{i}/{args.twin_shards}"]
            twins.append((subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                           stderr=open(work / f"twin-{i}.log", "w"),
                                           preexec_fn=(lambda: os.nice(twin_nice)) if twin_nice else None), control))
        try:
            for (twin, control), i in zip(twins, range(len(twins))):
                try:
                    wait_for_port(control, timeout=900, proc=twin)
                except Exception:
                    raise SystemExit(f"twin {i} did not start:\n{(work / f'twin-{i}.log').read_text()[-2000:]}")
            print(f"twin: {len(twins)} process(es) at nice {twin_nice}, model step every {refresh:g} s, serving after "
                  f"{time.time() - t:.1f} s, RSS "
                  f"{', '.join(f'{rss_mib(tw.pid):.0f}' for tw, _ in twins)} MiB", flush=True)
            single = not args.no_single
            if single and devices > 0.85 * hard_files():  # a connection or socket per device in one process
                print(f"1-process run left out: {devices:,} devices need more files than one process may open "
                      f"({hard_files():,}, ulimit -Hn)", flush=True)
                single = False
            runs = ([("1-process", 1)] if single else []) + \
                ([(f"{args.shards}-shards", args.shards)] if args.shards > 1 else [])
            twin_cpu = {}
            if args.shards > 1:
                influx.create_database("balone")
                polling, first, stop, code = start_alone(site, f"0/{args.shards}", influx, "balone", mosquitto.url,
                                                         work, env, alerts=not args.no_alerts)
                print(f"[shard 0/{args.shards} alone] started by itself (nothing else starting): polling after "
                      f"{polling:.1f} s, first batch written after {first:.1f} s; SIGTERM -> exit {stop:.1f} s, "
                      f"code {code}", flush=True)
            for label, n in runs:
                db = f"b{label.replace('-', '')}"
                influx.create_database(db)
                tc = sum(proc_cpu_s(tw.pid) for tw, _ in twins)
                others = {"twin": [tw.pid for tw, _ in twins], "influxd": [influx.process.proc.pid]}
                r = run_collectors(label, site, n, args.interval, args.intervals, influx, db, mosquitto.url,
                                   work, env, devices, alerts=not args.no_alerts, others=others)
                twin_cpu[label] = sum(proc_cpu_s(tw.pid) for tw, _ in twins) - tc
                results.append(r)
                report(r, devices, args.interval, twin_cpu[label])
            if args.by_protocol:
                text = site.read_text()
                print("by protocol (one short run each, same twin, 10 s interval, no rules or derived):", flush=True)
                for proto in sorted(mix):
                    p_site = work / f"site-{proto}.yaml"
                    p_text = only_protocol(text, proto).replace(f"interval_s: {int(args.interval)}", "interval_s: 10", 1)
                    p_site.write_text(p_text)
                    db = f"p{proto.replace('-', '')}"
                    influx.create_database(db)
                    r = run_collectors(proto, p_site, 1, 10.0, 2, influx, db, mosquitto.url, work, env,
                                       mix[proto], derived=False, alerts=False)
                    print(f"  {proto:8s} {mix[proto]:6,} devices: {r.polls:7,} polls, "
                          f"{1000 * r.cpu_s / max(r.polls, 1):.3f} ms collector CPU per device-poll "
                          f"({r.failed} failed, {r.skipped} skipped ticks)", flush=True)
        finally:
            for twin, _ in twins:
                twin.terminate()
            for twin, _ in twins:
                try:
                    twin.wait(60)
                except subprocess.TimeoutExpired:
                    twin.kill()
            mosquitto.stop()
            influx.stop()
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                for log in [*work.glob("*.log"), *(work / "influx").glob("*.log")]:  # influxd's own too
                    shutil.copy2(log, args.keep / log.name)
                print(f"logs kept in {args.keep}", flush=True)
    cal1 = calibrate()
    if len(results) == 2:
        a, b = results
        pa, pb = a.cpu_s / max(a.polls, 1), b.cpu_s / max(b.polls, 1)
        print(f"{b.label} vs 1 process, collector CPU per device-poll: {pb / pa:.2f}x "
              f"(1 process runs rules and derived metrics itself; the shards run rules, and dcim derived run beside them is counted apart)")
    print(f"calibration {cal0:.3f} s -> {cal1:.3f} s ({'stable' if stable(cal0, cal1) else 'UNSTABLE: the load moved'}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


def report(r: RunResult, devices: int, interval: float, twin_cpu: float) -> None:
    per_poll = r.cpu_s / max(r.polls, 1)
    full = 52_707
    cores10 = full / 10.0 * per_poll
    print(f"[{r.label}] {r.procs} process(es) started together: all polling after {r.startup_polling_s:.1f} s, "
          f"first write after {r.first_write_s:.1f} s (each process's own first batch: "
          f"{', '.join(f'{x:.1f}' for x in r.first_writes)} s); RSS {', '.join(f'{x:.0f}' for x in r.rss)} MiB",
          flush=True)
    for k, (n, devs) in enumerate(r.windows):
        print(f"  interval {k + 1}: {n:,} polls, {devs:,} devices polled for their tick / {devices:,} "
              f"({'every device' if devs == devices else f'{devices - devs:,} missing'})", flush=True)
    span = len(r.windows) * interval
    print(f"  skipped ticks {r.skipped:,}; failed polls {r.failed:,} (whole run); collector CPU {r.cpu_s:.1f} s over "
          f"{len(r.windows)} intervals = {1000 * per_poll:.3f} ms per device-poll "
          f"({r.cpu_s / span:.2f} cores); whole run's twin CPU {twin_cpu:.1f} s", flush=True)
    print("  measured intervals, polls (failed) by protocol: "
          + ", ".join(f"{p} {n:,} ({f:,})" for p, (n, f) in r.by_protocol.items()), flush=True)
    print("  measured intervals, other processes: "
          + ", ".join(f"{k} {c:.1f} s CPU ({c / span:.2f} cores)" for k, c in r.others_cpu.items())
          + f"; all together with the collectors {(r.cpu_s + sum(r.others_cpu.values())) / span:.2f} of "
          f"{os.cpu_count()} cores", flush=True)
    kept_up = "" if len(r.derived_cpu) >= len(r.windows) else " (derived metrics NOT keeping up)"
    print(f"  derived: {len(r.derived_cpu)} computation(s) in the {len(r.windows)} measured interval(s){kept_up}"
          + (f", compute {', '.join(f'{x:.3f}' for x in r.derived_cpu)} s CPU each" if r.derived_cpu else ""),
          flush=True)
    print(f"  SIGTERM -> exit: {', '.join(f'{s:.1f}' for s in r.stop_s)} s, codes {r.exit_codes}", flush=True)
    print(f"  projection, full site ({full:,} endpoints) at 10 s: {full / 10:,.0f} polls/s x {1000 * per_poll:.3f} ms "
          f"= {cores10:.1f} cores -> {max(1, round(cores10 / 0.7 + 0.499))} shards at 70 % of a core each", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
