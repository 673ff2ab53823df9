"""SIGTERM on a large site: polling stops at once, everything polled is written or
spooled, and ``dcim run`` exits 0 within 10 s.

Real parts only: a generated hall (≈2,200 endpoints: DCGM, Redfish, SNMP, Modbus)
served by the twin in its own process, a real influxd, ``dcim run --derived`` as a
subprocess.  "Nothing lost" is counted, not timed: the ``poll`` points in InfluxDB
plus those left in the spool equal the polls ``dcim run`` says it made.
"""
from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from localservers.process import free_port, wait_for_port
from localservers.site import write_loopback_slice

STOP_BOUND_S = 10.0


def _count(influx_server, db: str, q: str) -> int:
    series = influx_server.query(q, db=db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def _spooled_polls(spool: Path) -> int:
    n = 0
    for f in spool.glob("*.lp.gz"):
        n += sum(1 for line in gzip.decompress(f.read_bytes()).splitlines() if line.startswith(b"poll,"))
    return n


def test_sigterm_stops_polling_flushes_and_exits_0_within_10_s(tmp_path, influx_server, influx_db):
    env = {**os.environ, "DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "u", "DCIM_BMC_PASSWORD": "p",
           "DCIM_SITE_CACHE": str(tmp_path / "cache")}
    site = write_loopback_slice(tmp_path / "site.yaml", halls=1)
    control = free_port()
    twin = subprocess.Popen([sys.executable, "-m", "dcim.cli", "simulate", "--site", str(site),
                             "--control-port", str(control), "--duration", "300"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = None
    try:
        wait_for_port(control, timeout=120, proc=twin)
        spool = tmp_path / "spool"
        cfg = tmp_path / "run.yaml"
        cfg.write_text(f"site: {site}\ninfluxdb: {{url: '{influx_server.url}', database: {influx_db}, api: v1, "
                       f"spool_dir: {spool}}}\nlog_level: info\n")
        run = subprocess.Popen([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--derived",
                                "--duration", "600"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        # wait until polling is in full swing (a third of the devices' polls written) and derived
        # metrics have been computed from readings once
        deadline = time.monotonic() + 120
        while (_count(influx_server, influx_db, "SELECT count(ok) FROM poll") < 700
               or _count(influx_server, influx_db, "SELECT count(load_w) FROM capacity") == 0):
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "dcim run wrote too few polls in 120 s"
            time.sleep(0.5)
        sent = time.monotonic()
        run.send_signal(signal.SIGTERM)
        try:
            _, err = run.communicate(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            run.kill()
            _, err = run.communicate()
            raise AssertionError(f"dcim run still running {STOP_BOUND_S:.0f} s after SIGTERM:\n{err[-3000:]}")
        took = time.monotonic() - sent
        assert run.returncode == 0, err[-3000:]
        assert took <= STOP_BOUND_S
        m = re.search(r"stopped: (\d+) polls", err)
        assert m, err[-3000:]
        polled = int(m.group(1))
        assert polled >= 700
        written = _count(influx_server, influx_db, "SELECT count(ok) FROM poll")
        assert written + _spooled_polls(spool) == polled, err[-3000:]
        assert "did not stop" not in err
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait(10)
        twin.terminate()
        twin.wait(30)
