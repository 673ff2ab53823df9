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

INTERVAL = 0.5
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


def _all_ticks(times: list[int], step: int) -> bool:
    """No tick lost: one sample per interval over the span (±1 for the ends), no gap of two ticks."""
    expected = (times[-1] - times[0]) / step + 1
    return len(times) >= expected - 1 and max((b - a for a, b in zip(times, times[1:])), default=0) < 2 * step


def test_kill_9_while_spooling_then_restart_and_sigterm(pdu_agent, influx_server, influx_db, tmp_path):
    cfg = _config(tmp_path, influx_server.url, influx_db, pdu_agent.port)
    spool = tmp_path / "spool"
    log = open(tmp_path / "run.log", "wb")
    influx_server.stop()
    t_start = time.time_ns()
    run1 = _start(cfg, log)
    try:
        deadline = time.monotonic() + 30  # start-up time drifts with the machine's load: wait for the spool
        while not list(spool.glob("*.lp.gz")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(spool.glob("*.lp.gz")), "run 1 should be spooling while InfluxDB is down"
        time.sleep(1.0)  # a little more spooled history before the kill
        t_kill = time.time_ns()
        run1.send_signal(signal.SIGKILL)
        run1.wait(10)
    finally:
        if run1.poll() is None:
            run1.kill()
    influx_server.start_same()
    run2 = _start(cfg, log)
    try:
        time.sleep(3.0)
        t_term = time.time_ns()
        run2.send_signal(signal.SIGTERM)
        assert run2.wait(20) == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        if run2.poll() is None:
            run2.kill()
    assert not list(spool.glob("*.lp.gz")), "the spool must be empty after the replay"

    q = InfluxQuery(influx_server.url, influx_db)
    series = q.query('SELECT "ok" FROM "poll" GROUP BY "device"')
    assert {s.tags["device"] for s in series} == {"pdu-0", "pdu-1", "pdu-2"}
    step = int(INTERVAL * 1e9)
    for s in series:
        times = [r["time"] for r in s.rows()]
        assert len(times) == len(set(times))
        run1 = [t for t in times if t < t_kill]
        run2 = [t for t in times if t > t_kill]
        # run 1: every tick there (a sample's time is when the reply arrived, so single gaps
        # jitter with the agent's load: count ticks rather than demand an exact spacing), and it
        # reaches to within the unflushed window of the kill
        assert run1 and _all_ticks(run1, step)
        assert run1[0] - t_start < 3e9
        assert t_kill - run1[-1] < FLUSH * 1e9 + 2 * step
        # run 2: polled until SIGTERM and flushed on the way out
        assert run2 and _all_ticks(run2, step)
        assert t_term - run2[-1] < 1.6 * step
    pdu_rows = q.query('SELECT count("power_w") FROM "pdu" WHERE "device" = \'pdu-0\' AND "pdu" = \'1\'')
    assert pdu_rows and pdu_rows[0].values[0][1] >= 8
