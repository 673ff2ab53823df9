"""``dcim agent``: the NVML node agent writes what it read, tagged from the inventory, into InfluxDB.

On a machine with an NVIDIA GPU it must write ``gpu`` samples; without one it
must still run, and its ``poll`` samples must say why nothing was read.
"""
from __future__ import annotations

import subprocess
import sys

from localservers.site import EXAMPLE_SITE


def _gpu_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


def test_agent_writes_gpu_or_says_why_not(tmp_path, influx_server, influx_db):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"site: {EXAMPLE_SITE}\ninfluxdb: {{url: '{influx_server.url}', database: {influx_db}, api: v1}}\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "agent", "--config", str(cfg), "--device", "h1-r01-k01-n1",
                           "--interval", "1", "--duration", "3.5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    polls = influx_server.query('SELECT "ok", "error", "protocol", "rack" FROM "poll"', db=influx_db)
    rows = polls["results"][0]["series"][0]["values"]
    assert len(rows) >= 2
    assert all(r[3] == "nvml" and r[4] == "h1-r01-k01" for r in rows)  # tagged from the inventory
    if _gpu_present():
        assert all(r[1] for r in rows)
        gpus = influx_server.query('SELECT count("power_w") FROM "gpu" GROUP BY "gpu"', db=influx_db)
        assert gpus["results"][0]["series"]
    else:
        assert not any(r[1] for r in rows)
        assert all("NVML" in (r[2] or "") or "nvml" in (r[2] or "").lower() for r in rows), rows


def test_agent_refuses_an_unknown_node(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"site: {EXAMPLE_SITE}\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "agent", "--config", str(cfg), "--device", "no-such-node"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no device 'no-such-node'" in proc.stderr
