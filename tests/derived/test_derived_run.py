"""``dcim derived run``, the sharded site's derived job, as a process: it reads back what the
collectors wrote (the twin of the example site, polled and written by the real writer), writes
the site's figures, and says what each computation cost and read (``dcim_derived``)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from contract import derived as D
from localservers.site import EXAMPLE_SITE
from sinks.influx_query import InfluxQuery
from tests.derived.conftest import poll_example_site

pytestmark = pytest.mark.usefixtures("demo_secrets")


def test_derived_run_writes_the_site_figures_and_its_own_cost_every_interval(influx_server, influx_db, tmp_path):
    site, now = poll_example_site(influx_server, influx_db, time.time())
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text(f"site: {EXAMPLE_SITE}\ninfluxdb: {{url: '{influx_server.url}', database: {influx_db}, api: v1}}\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "derived", "run", "--config", str(cfg),
                           "--interval", "1", "--duration", "3.5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    client = InfluxQuery(influx_server.url, influx_db)
    rows = [r for s in client.query("SELECT * FROM dcim_derived") for r in s.rows()]
    assert len(rows) >= 2, proc.stderr  # one per computation, one a second for 3.5 s
    # what the first computation read back: every polled series the sums and loops count
    assert rows[0]["read_samples"] > 50 and rows[0]["compute_cpu_s"] > 0 and rows[0]["read_s"] >= 0
    assert all(r["series"] == rows[0]["series"] > 50 and r["samples"] > 10 for r in rows)
    power = [r for s in client.query(f"SELECT {D.FACILITY_W}, {D.IT_W}, {D.MISSING} FROM {D.SITE_POWER} "
                                     f"WHERE hall = ''") for r in s.rows()]
    assert len(power) == len(rows)
    assert all(r[D.FACILITY_W] > r[D.IT_W] > 10_000 and r[D.MISSING] == 0 for r in power)


def _derived_after_first_computation(url: str, db: str, tmp_path, interval: str, extra: str = "") -> subprocess.Popen:
    """``dcim derived run`` on the example site (its own spool under ``tmp_path``), once its first
    computation is in InfluxDB."""
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text(f"site: {EXAMPLE_SITE}\ninfluxdb: {{url: '{url}', database: {db}, api: v1, {extra}"
                   f"spool_dir: {tmp_path / 'spool'}}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "dcim.cli", "derived", "run", "--config", str(cfg),
                             "--interval", interval], stderr=subprocess.PIPE, text=True)
    client = InfluxQuery(url, db)
    deadline = time.monotonic() + 60
    while not client.query("SELECT count(compute_cpu_s) FROM dcim_derived"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no computation written: {proc.communicate()[1]}")
        time.sleep(0.2)
    return proc


def _sigterm(proc: subprocess.Popen) -> tuple[str, float]:
    """SIGTERM, then (stderr, seconds to exit)."""
    import signal

    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    return err, time.monotonic() - t0


def test_derived_run_stops_on_sigterm_with_exit_0(influx_server, influx_db, tmp_path):
    poll_example_site(influx_server, influx_db, time.time())
    proc = _derived_after_first_computation(influx_server.url, influx_db, tmp_path, "1")
    try:
        err, took = _sigterm(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and took < 10, err
    assert (tmp_path / "spool" / "derived" / ".lock").exists()  # its own spool, beside the shards'


def test_derived_run_stops_within_10_s_when_influxdb_stalls(own_influx, tmp_path):
    """influxd frozen (SIGSTOP: it holds its connections and answers nothing, as one did under the
    full site's writes): the read-back and any write wait on it, and SIGTERM still ends the job
    with exit 0 within 10 s, what it had not written in its spool."""
    import os
    import signal

    server, db = own_influx
    poll_example_site(server, db, time.time())
    proc = _derived_after_first_computation(server.url, db, tmp_path, "0.5", extra="timeout_s: 60, ")
    influxd = server.process.proc.pid
    try:
        os.kill(influxd, signal.SIGSTOP)
        time.sleep(2.0)  # the next read-back (every 0.5 s) is now waiting on the frozen server
        err, took = _sigterm(proc)
    finally:
        os.kill(influxd, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and took < 10, err
    assert "derived metrics stopped after" in err and "spooled batch(es) pending" in err


def test_a_read_back_in_progress_neither_holds_the_engine_nor_the_stop():
    """The read-back runs in a daemon thread: while it is blocked the rule engine still ticks every
    second, and a stop returns at once without it (SIGTERM must not wait for a slow InfluxDB)."""
    import asyncio
    import threading

    from dcim.commands.derived import _in_daemon_thread, _while_ticking

    release = threading.Event()

    class Ticks:
        n = 0

        async def tick(self):
            self.n += 1

    async def go():
        stop, ticks = asyncio.Event(), Ticks()
        blocked = _in_daemon_thread(release.wait, 60)
        waiter = asyncio.ensure_future(_while_ticking(blocked, stop, ticks))
        while ticks.n < 3:  # the engine ticks while the read is blocked
            await asyncio.sleep(0.05)
        stop.set()
        got = await asyncio.wait_for(waiter, 5)
        assert got is None and not blocked.done()
        done = await _while_ticking(_in_daemon_thread(sum, [1, 2, 3]), asyncio.Event(), None)
        assert done == 6
    try:
        asyncio.run(go())
    finally:
        release.set()


def test_computations_keep_a_fixed_cadence_whatever_a_read_back_takes():
    from dcim.commands.derived import next_due

    # due at 0, 60, 120 … while each computation takes under an interval, however long
    due = 0.0
    for started in (0.0, 60.5, 121.0, 199.0):  # the last one started 19 s late: still due at 240
        due = next_due(due, 60.0, started)
    assert due == 240.0
    # more than an interval late: the cadence starts again from then, no computations back to back
    assert next_due(240.0, 60.0, 400.0) == 460.0
    assert next_due(240.0, 60.0, 300.0) == 360.0
