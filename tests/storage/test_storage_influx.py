"""Tiers on a real influxd 1.6, filled from what ``dcim run`` writes from the twin.

The collectors are the producer: ``dcim run`` polls the example site's twin into
raw, and every bucket of a tier is checked against the same aggregate computed
here from the raw points read back (``rollup_truth``).
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dcim.cli import main
from inventory.loader import load_site
from rollup_truth import count_points, expected, field_types, mismatches, read_series
from localservers.site import load_relocated, write_site
from localservers.twin import TwinThread

MEASUREMENTS = ("pdu", "ups", "meter", "gpu")
STEP_NS = 10 * 10**9


def _wait(cond, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last is True or (last and not isinstance(last, (list, str))):
            return last
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout:.0f} s; last: {str(last)[:1500]}")


def _config(tmp_path, site_file, influx_server, db, mechanism: str, rp: str = "rollup_s10") -> str:
    cfg = tmp_path / f"run-{mechanism}.yaml"
    cfg.write_text(
        f"site: {site_file}\n"
        f"influxdb: {{url: '{influx_server.url}', database: {db}, api: v1}}\n"
        "storage:\n"
        "  raw: {retention: 1d}\n"
        f"  tiers: [{{name: s10, step: 10s, retention: 1h, rp: {rp}}}]\n"
        f"  mechanism: {mechanism}\n")
    return str(cfg)


@pytest.fixture(scope="module")
def twin_site(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    for k, v in (("DCIM_SNMP_COMMUNITY", "public"), ("DCIM_BMC_USER", "u"), ("DCIM_BMC_PASSWORD", "p")):
        mp.setenv(k, v)
    site = load_relocated()
    site.defaults.interval_s = 2.0
    for d in site.all_devices():
        d.interval_s = None
    d = tmp_path_factory.mktemp("storage_site")
    site_file = write_site(site, d / "site.yaml")
    with TwinThread(load_site(site_file), refresh_s=1.0):
        yield site_file
    mp.undo()


def _run(cfg: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dcim.cli", "run", "--config", cfg, "--duration", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _polled_twice(influx_server, db) -> int:
    body = influx_server.query('SELECT count("ok") FROM "autogen"."poll" GROUP BY "device"', db=db)
    return sum(1 for s in body["results"][0].get("series", []) if s["values"][0][1] >= 2)


def _raw_span(influx_server, db) -> tuple[int, int]:
    """First and last raw instant of any device: every poll writes a ``poll`` sample."""
    def at(fn: str) -> int:
        body = influx_server.query(f'SELECT {fn}("duration_ms") FROM "autogen"."poll"', db=db)
        return body["results"][0]["series"][0]["values"][0][0]
    return at("first"), at("last")


def test_continuous_queries_fill_the_tier_while_dcim_run_writes(tmp_path, influx_server, influx_db, twin_site, capsys):
    cfg = _config(tmp_path, twin_site, influx_server, influx_db, "continuous_queries")
    proc = _run(cfg, 45)
    try:
        # every device polled twice, so every field it writes is known when init reads them
        _wait(lambda: _polled_twice(influx_server, influx_db) >= len(load_site(twin_site).polled_devices()), 60,
              "every device polled twice")
        assert main(["storage", "init", "--config", cfg]) == 0
        created = time.time_ns()
        cqs = influx_server.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
        names = [r[0] for s in cqs if s["name"] == influx_db for r in s["values"]]
        assert any(n.startswith("dcim_s10_pdu_") for n in names) and not any("_alert_" in n for n in names)
        # a second init changes nothing (idempotent): only the tier table is rewritten
        capsys.readouterr()
        assert main(["storage", "init", "--config", cfg, "--dry-run"]) == 0
        assert capsys.readouterr().out == ""                      # no statement planned
        assert main(["storage", "status", "--config", cfg]) == 0
        status = capsys.readouterr().out
        assert "s10  rollup_s10" in status and "[present]" in status
        assert proc.wait(timeout=120) == 0, proc.stderr.read()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    first_ns, last_ns = _raw_span(influx_server, influx_db)
    # buckets wholly after the queries existed, up to the last raw point
    lo = created - created % STEP_NS + STEP_NS
    hi = last_ns - last_ns % STEP_NS
    assert hi - lo >= 2 * STEP_NS, "the run was too short to leave complete buckets"
    buckets = set(range(lo, hi, STEP_NS))
    compared = {}

    def settled():
        bad = []
        for m in MEASUREMENTS:
            types = field_types(influx_server, influx_db, "autogen", m)
            want = expected(read_series(influx_server, influx_db, "autogen", m, lo, hi), types, STEP_NS)
            got = read_series(influx_server, influx_db, "rollup_s10", m, lo, hi)
            compared[m] = sum(len([b for b in per if b in buckets]) for per in want.values())
            bad += mismatches(want, got, buckets)
        return bad or True

    _wait(lambda: settled(), 60, "tier buckets equal to the aggregates of raw", every=2.0)
    assert all(compared[m] >= 2 for m in MEASUREMENTS), compared


def test_backfill_and_a_crashed_rollup_job_resumed(tmp_path, influx_server, influx_db, twin_site):
    cfg = _config(tmp_path, twin_site, influx_server, influx_db, "job")
    proc = _run(cfg, 12)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-2000:]
    # InfluxDB computes no bucket that has not ended yet (a rollup of an open bucket would be
    # partial): wait until the last raw bucket has closed, so backfill and job see every bucket
    last_ns = _raw_span(influx_server, influx_db)[1]
    closes = (last_ns - last_ns % STEP_NS + STEP_NS) / 1e9 + 1.0
    while time.time() < closes:
        time.sleep(0.2)
    assert main(["storage", "init", "--config", cfg]) == 0
    assert not [s for s in (influx_server.query("SHOW CONTINUOUS QUERIES")["results"][0].get("series") or [])
                if s["name"] == influx_db and s.get("values")], "mechanism job must create no continuous queries"
    first_ns, last_ns = _raw_span(influx_server, influx_db)
    frm, to = str(first_ns // 10**9 - 20), str(last_ns // 10**9 + 20)
    iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(s)))  # noqa: E731
    assert main(["storage", "backfill", "--config", cfg, "--from", iso(frm), "--to", iso(to)]) == 0

    measurements = sorted({r[0] for r in influx_server.query("SHOW MEASUREMENTS", db=influx_db)["results"][0]
                           ["series"][0]["values"]} - {"alert", "trap"})
    assert set(MEASUREMENTS) <= set(measurements)

    def check(rp: str) -> dict[str, int]:
        counts = {}
        for m in measurements:
            types = field_types(influx_server, influx_db, "autogen", m)
            want = expected(read_series(influx_server, influx_db, "autogen", m, 0, 2 ** 62), types, STEP_NS)
            got = read_series(influx_server, influx_db, rp, m, 0, 2 ** 62)
            bad = mismatches(want, got)
            assert bad == [], (m, bad[:3])
            counts[m] = count_points(influx_server, influx_db, rp, m)
            assert counts[m] == sum(len(per) for per in want.values())     # no extra buckets
        return counts

    once = check("rollup_s10")
    assert main(["storage", "backfill", "--config", cfg, "--from", iso(frm), "--to", iso(to)]) == 0
    assert check("rollup_s10") == once                                  # again: same points, none doubled

    # the rollup job, killed mid-window, resumed from its checkpoint
    cfg2 = _config(tmp_path, twin_site, influx_server, influx_db, "job", rp="rollup_j10")
    assert main(["storage", "init", "--config", cfg2]) == 0
    state = tmp_path / "job-state"
    base = [sys.executable, "-m", "dcim.cli", "storage", "rollup", "--config", cfg2, "--state-dir", str(state),
            "--once", "--lag", "0", "--since", iso(frm)]
    crashed = subprocess.run(base + ["--crash-after-points", "25"], capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 70, crashed.stderr[-2000:]
    partial = sum(count_points(influx_server, influx_db, "rollup_j10", m) for m in measurements)
    assert partial == 25 < sum(once.values())
    assert not (state / "rollup-checkpoint.json").exists()              # the window never completed
    resumed = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (state / "rollup-checkpoint.json").exists()
    assert check("rollup_j10") == once
