"""A shard of the full generated site (24 halls, ≈52,700 endpoints): after SIGTERM it exits 0
within 10 s with every poll written or spooled.  (How soon its first write comes is measured by
bench/site_full.py, not bounded here: on this shared machine start-up's wall time is the load's.)

Real parts: the full site from ``inventory.generate`` (loopback plan), its compiled cache
written by a first ``dcim inventory check`` (as a deployment's first start writes it), a real
influxd, ``dcim run --shard 0/8`` as a subprocess.  No twin serves these endpoints: every
poll is refused at once on loopback, and a refused poll is written like any other (its
``poll`` point), which is what the start-up and stop bounds are about.  "Nothing lost" is
counted: the ``poll`` points in InfluxDB plus those in the spool equal the polls the shard
says it made.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from localservers.site import write_loopback_slice
from tests.scale.test_sigterm_large_site import STOP_BOUND_S, _count, _spooled_polls


def test_a_shard_of_the_full_site_stops_within_10_s_with_nothing_lost(tmp_path, influx_server, influx_db):
    env = {**os.environ, "DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "u", "DCIM_BMC_PASSWORD": "p",
           "DCIM_SITE_CACHE": str(tmp_path / "cache")}
    site = write_loopback_slice(tmp_path / "site.yaml")
    check = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", str(site)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stderr[-2000:]
    assert list((tmp_path / "cache").glob("*.marshal")), "the full site's compiled cache was written"
    spool = tmp_path / "spool"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"site: {site}\ninfluxdb: {{url: '{influx_server.url}', database: {influx_db}, api: v1, "
                   f"spool_dir: {spool}}}\nlog_level: info\n")
    log = tmp_path / "run.log"  # a file, not a pipe: every refused device logs, and a full pipe would stall the shard
    started = time.monotonic()
    with open(log, "w") as err_file:
        run = subprocess.Popen([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--shard", "0/8",
                                "--duration", "600"], env=env, stdout=subprocess.DEVNULL, stderr=err_file, text=True)
    try:
        deadline = started + 180
        while _count(influx_server, influx_db, "SELECT count(ok) FROM poll") < 1000:
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the shard wrote fewer than 1,000 polls in 180 s"
            time.sleep(0.2)
        sent = time.monotonic()
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
            raise AssertionError(f"dcim run --shard still running {STOP_BOUND_S:.0f} s after SIGTERM:\n"
                                 f"{log.read_text()[-3000:]}")
        err = log.read_text()
        assert run.returncode == 0, err[-3000:]
        assert time.monotonic() - sent <= STOP_BOUND_S
        m = re.search(r"stopped: (\d+) polls", err)
        assert m, err[-3000:]
        written = _count(influx_server, influx_db, "SELECT count(ok) FROM poll")
        assert written + _spooled_polls(spool) == int(m.group(1)), err[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
