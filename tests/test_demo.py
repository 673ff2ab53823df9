"""The README's first command, end to end: ``dcim demo`` on the example site.

Starts its own InfluxDB and Mosquitto, the twin, collectors, rules and derived
metrics; injects a UPS-on-battery fault; writes dashboards and the PUE report.
"""
from __future__ import annotations

import json
import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "demo", "--duration", "36", "--interval", "2",
                           "--no-live", "--out", str(out)], capture_output=True, text=True, timeout=240)
    text = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PUE 1." in text  # the instantaneous PUE status line, from the meters
    assert "fault inject ups_on_battery on ups-1a" in text
    assert "firing   critical ups-on-battery ups-1a" in text
    assert "resolved critical ups-on-battery ups-1a" in text
    assert "polls ok" in text and "failed 0" in text
    dashboards = list((out / "grafana").rglob("*.json"))
    assert len(dashboards) >= 5
    for d in dashboards:
        assert json.loads(d.read_text())["panels"]
    report = json.loads((out / "pue-report.json").read_text())
    assert report["site_id"] == "tetouan" and report["meters"]
    assert (out / "pue-report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "influxdb").is_dir()
