"""``dcim probe dcgm://`` and ``redfish://`` against the real-data fixtures, as an operator would run it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from testkit.redfish import RedfishMockupServer
from testkit.testdata import shared_testdata

PAGE = shared_testdata() / "gpu" / "nvidia-aicr_h100x8_dcgm-exporter_sample.prom"


def _probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcim.cli", "probe", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_probe_dcgm_prints_one_gpu_sample_per_gpu(page_server):
    page_server.routes["/metrics"] = ("length", PAGE.read_bytes())
    proc = _probe(f"dcgm://127.0.0.1:{page_server.port}")
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    want = {re.search(r'gpu="(\d+)"', l).group(1): float(l.rsplit(" ", 1)[1])
            for l in PAGE.read_text().splitlines() if l.startswith("DCGM_FI_DEV_POWER_USAGE{")}
    assert {s["tags"]["gpu"]: s["fields"]["power_w"] for s in samples} == want
    assert all(s["measurement"] == "gpu" and s["tags"]["host"] == "gpu-node-1" for s in samples)


def test_probe_dcgm_garbage_is_a_one_line_protocol_error(page_server):
    page_server.routes["/metrics"] = ("length", b'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 30\nDCGM_FI_DEV_GPU_TEMP{gpu="1"\n')
    proc = _probe(f"dcgm://127.0.0.1:{page_server.port}", "--retries", "0")
    assert proc.returncode != 0 and proc.stdout == ""
    assert "protocol" in proc.stderr and "line 2" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_probe_redfish_with_session_credentials():
    mockup = shared_testdata() / "redfish" / "dell_poweredge-r650"
    power = json.loads((mockup / "redfish/v1/Chassis/System.Embedded.1/Power/index.json").read_text())
    with RedfishMockupServer(mockup, credentials=("root", "calvin-xyz")) as server:
        ok = _probe(f"redfish://root@127.0.0.1:{server.port}", "--password-env", "BMC_PW", env={"BMC_PW": "calvin-xyz"})
        bad = _probe(f"redfish://root@127.0.0.1:{server.port}", "--password-env", "BMC_PW", "--retries", "0",
                     env={"BMC_PW": "not-the-pw"})
    assert ok.returncode == 0, ok.stderr
    samples = [json.loads(line) for line in ok.stdout.splitlines()]
    chassis = [s for s in samples if s["tags"].get("source") == "power"]
    assert [s["fields"]["power_w"] for s in chassis] == [power["PowerControl"][0]["PowerConsumedWatts"]]
    assert bad.returncode != 0 and "auth" in bad.stderr and "not-the-pw" not in bad.stderr + bad.stdout


def test_probe_redfish_cdu_prints_its_loops():
    """A CDU's Redfish service (root links ThermalEquipment): probe prints the cdu samples."""
    mockup = Path(__file__).resolve().parent / "redfish_cdu" / "ocp-cdu-1.0.0"
    with RedfishMockupServer(mockup) as server:
        proc = _probe(f"redfish://127.0.0.1:{server.port}")
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    loops = {(s["tags"]["side"], s["tags"]["loop"]): s["fields"]["supply_temp_c"] for s in samples if "side" in s["tags"]}
    assert loops == {("primary", "1"): 28.0, ("secondary", "1"): 29.0}   # the OCP examples' SupplyTemperatureCelsius
    assert all(s["measurement"] == "cdu" for s in samples)
