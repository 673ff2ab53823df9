"""Logs under attack: seven twin devices answer garbage or slowly while ``dcim run`` polls them every 2 s.

Counted on the real process's stderr, with ``RUST_BACKTRACE=1`` set (gufo-snmp's
panics on garbage would print a backtrace each): at most one line per device per
failure kind per repeat window (5 s here, 60 s by default), later ones carrying
the count held back; no backtrace, no line longer than a screen, no reply body.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter

from localservers.process import free_port, wait_for_port

RUN_S = 16
REPEAT_S = 5
FAULTS = {"h01-r01-k01-pdu-a": "garbage", "h01-ups-a01": "garbage", "h01-cdu-1": "garbage",
          "h01-r01-k01-n01": "garbage", "h01-r01-k02-pdu-b": "slow", "h01-crah-1": "slow", "h01-r01-k02-n02": "slow"}


def _inject(control: str, fault: str, device: str) -> None:
    req = urllib.request.Request(f"{control}/faults", data=json.dumps({"fault": fault, "device": device}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["active"] is True


def test_garbage_and_slow_devices_do_not_flood_the_log(influx_server, influx_db, tmp_path):
    site = tmp_path / "slice.yaml"
    control_port = free_port()
    twin = subprocess.Popen([sys.executable, "-m", "dcim.cli", "simulate", "--scale",
                             "halls=1,rows=1,racks=2,nodes=2,ups=2,cdus=1,bmcs=1", "--write-site", str(site),
                             "--control-port", str(control_port), "--duration", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(control_port, timeout=60, proc=twin)
        control = f"http://127.0.0.1:{control_port}"
        for device, fault in FAULTS.items():
            _inject(control, fault, device)
        # a poll is cut at its deadline, timeout x tries + 0.1 s per retry (at most 0.95 of the interval): a
        # garbage reply is told apart from silence when the request's own 0.4 s runs out, and at a 1 s
        # interval (deadline 0.9 s) a CI run's load once ate the 0.5 s between the two, so every poll of
        # the garbage CDU read as a timeout; at 2 s with 2 retries the deadline is 1.4 s
        text = site.read_text().replace("  interval_s: 10\n  timeout_s: 2\n  retries: 1\n",
                                        "  interval_s: 2\n  timeout_s: 0.4\n  retries: 2\n", 1)
        assert "interval_s: 2\n" in text
        site.write_text(text)
        cfg = tmp_path / "dcim.yaml"
        cfg.write_text(f"site: {site}\ninfluxdb: {{url: {influx_server.url}, database: {influx_db}, api: v1}}\n")
        env = {**os.environ, "RUST_BACKTRACE": "1", "DCIM_LOG_REPEAT_S": str(REPEAT_S), "DCIM_SNMP_COMMUNITY": "public",
               "DCIM_BMC_USER": "admin", "DCIM_BMC_PASSWORD": "admin", "PYTHONUNBUFFERED": "1"}
        run = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--duration", str(RUN_S)],
                             capture_output=True, text=True, timeout=RUN_S + 60, env=env)
    finally:
        twin.send_signal(signal.SIGTERM)
        twin.wait(timeout=30)
    lines = run.stderr.splitlines()
    assert run.returncode == 0, run.stderr[-3000:]
    assert not any("stack backtrace" in l or re.match(r"\s+\d+: ", l) for l in lines), "a Rust backtrace reached the log"
    assert not any(l.startswith("Traceback") for l in lines), run.stderr[-3000:]
    assert max(len(l) for l in lines) < 800
    failed = Counter()
    held = 0
    for l in lines:
        m = re.search(r"dcim\.scheduler: (\S+): poll failed \((\w+)\)", l)
        if m:
            failed[m.groups()] += 1
            held += int(re.search(r"\(\+(\d+) like this since\)", l).group(1)) if "like this since" in l else 0
    windows = RUN_S // REPEAT_S + 2
    assert set(FAULTS) <= {d for d, _ in failed}, failed
    # devices behind the garbage/slow Modbus gateway may time out too; no (device, kind) repeats within a window
    assert all(n <= windows for n in failed.values()), failed
    assert held > len(FAULTS), "repeats were neither written nor counted"
    for device, fault in FAULTS.items():
        kinds = {k for d, k in failed if d == device}
        assert ("protocol" in kinds) if fault == "garbage" else (kinds == {"timeout"}), (device, kinds)
    assert sum("panicked" in l for l in lines) <= windows and all("dcim.native" in l for l in lines if "panicked" in l)
    assert not any(re.search(r"(0x[0-9a-f]{1,2} ){20}", l) for l in lines), "a frame dump reached the log"
    # the whole log: start-up lines, one line per (device, kind) per window, a few capped library lines
    assert len(lines) <= 10 + len(failed) * windows + 10 * windows, "\n".join(lines[-40:])
