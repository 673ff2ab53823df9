"""``dcim run`` killed with -9 while it spools, then restarted; and SIGTERM flushing.

Run 1 polls while InfluxDB is down, so every batch goes to the disk spool,
then it is killed with SIGKILL.  Run 2 starts with InfluxDB back, replays the
spool, polls on, and is stopped with SIGTERM.  Afterwards each device's poll
series has no hole in run 1 except the last flush interval before the kill
(lines not yet cut into a batch: the documented window), run 2 is complete up
to the SIGTERM, the spool is empty and nothing is stored twice.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sinks.influx_query import InfluxQuery
from tests.reliability.conftest import RECORDING, site_yaml

INTERVAL = 1.0   # long enough that a loaded machine's late wake-ups stay inside a tick
FLUSH = 0.2


def _config(tmp_path, influx_url: str, db: str, port: int):
    (tmp_path / "site.yaml").write_text(site_yaml(port, devices=3, interval=INTERVAL))
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text(f"""site: site.yaml
influxdb:
  url: {influx_url}
  database: {db}
  api: v1
  flush_interval_s: {FLUSH}
  spool_dir: spool
log_level: info
""")
    return cfg


def _start(cfg, log):
    env = {**os.environ, "REL_COMMUNITY": RECORDING}
    return subprocess.Popen([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def _all_ticks(rows: list[tuple[int, int]], step: int) -> bool:
    """No tick lost: every interval over the span has a poll sample or is counted ``skipped`` by the
    poll after it (an overrun, which a loaded machine causes), ±1 for the ends; no unexplained gap."""
    times = [t for t, _ in rows]
    expected = (times[-1] - times[0]) / step + 1
    accounted = len(rows) + sum(skipped for _, skipped in rows[1:])
    gaps_ok = all(b - a < (2 + skipped) * step for (a, _), (b, skipped) in zip(rows, rows[1:]))
    return accounted >= expected - 1 and gaps_ok


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)


def test_kill_9_while_spooling_then_restart_and_sigterm(pdu_agent, own_influx, tmp_path):
    influx_server, influx_db = own_influx   # its own server: this test stops it
    cfg = _config(tmp_path, influx_server.url, influx_db, pdu_agent.port)
    spool = tmp_path / "spool"
    log = open(tmp_path / "run.log", "wb")
    influx_server.stop()
    run1 = _start(cfg, log)
    try:
        # spooling for a while: batch files on disk for at least 2 s (a condition, not a fixed
        # sleep: start-up takes longer on a loaded machine)
        _wait(lambda: b"polling 3 devices" in (tmp_path / "run.log").read_bytes(), 60, "run 1 polling")
        t_polling = time.time_ns()   # start-up done (it takes long on a loaded machine)
        _wait(lambda: list(spool.glob("*.lp.gz")), 60, "run 1 spooling while InfluxDB is down")
        time.sleep(3.0)
        t_kill = time.time_ns()
        run1.send_signal(signal.SIGKILL)
        run1.wait(10)
    finally:
        if run1.poll() is None:
            run1.kill()
    influx_server.start_same()
    run2 = _start(cfg, log)
    q = InfluxQuery(influx_server.url, influx_db)
    try:
        # replayed and polling again: the spool drained and every device has points after the kill
        _wait(lambda: not list(spool.glob("*.lp.gz")) and len(q.query(
            f'SELECT count("ok") FROM "poll" WHERE time > {t_kill} GROUP BY "device"')) == 3, 60,
            "run 2 replaying the spool and polling")
        time.sleep(3.0)
        t_term = time.time_ns()
        run2.send_signal(signal.SIGTERM)
        assert run2.wait(20) == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        if run2.poll() is None:
            run2.kill()
    assert not list(spool.glob("*.lp.gz")), "the spool must be empty after the replay"

    series = q.query('SELECT "ok", "skipped" FROM "poll" GROUP BY "device"')
    assert {s.tags["device"] for s in series} == {"pdu-0", "pdu-1", "pdu-2"}
    step = int(INTERVAL * 1e9)
    for s in series:
        rows = [(r["time"], int(r.get("skipped") or 0)) for r in s.rows()]
        times = [t for t, _ in rows]
        assert len(times) == len(set(times))
        run1 = [r for r in rows if r[0] < t_kill]
        run2 = [r for r in rows if r[0] > t_kill]
        # run 1: every tick there (a sample's time is when the reply arrived, so single gaps
        # jitter with the agent's load: count ticks rather than demand an exact spacing), and it
        # reaches to within the unflushed window of the kill
        assert run1 and _all_ticks(run1, step)
        assert run1[0][0] - t_polling < 3 * step + 2e9     # spooled from the first poll on
        assert t_kill - run1[-1][0] < FLUSH * 1e9 + 2 * step
        # run 2: polled until SIGTERM and flushed on the way out
        assert run2 and _all_ticks(run2, step)
        assert t_term - run2[-1][0] < 3 * step     # one slow poll at most (a loaded machine)
    # every successful poll of pdu-0 stored its inlet reading too (none lost beside the poll record)
    pdu_rows = q.query('SELECT count("power_w") FROM "pdu" WHERE "device" = \'pdu-0\' GROUP BY *')
    ok_polls = q.query('SELECT count("ok") FROM "poll" WHERE "device" = \'pdu-0\' AND "ok" = true')
    assert pdu_rows and ok_polls and ok_polls[0].values[0][1] >= 4
    assert {s.values[0][1] for s in pdu_rows} == {ok_polls[0].values[0][1]}, [(s.tags, s.values) for s in pdu_rows]
