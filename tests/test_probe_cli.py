"""``dcim probe URL``: one poll, JSON lines on stdout, a one-line reason and a non-zero exit otherwise."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from localservers.process import free_port
from testkit.modbus import ModbusTestServer
from tests.modbus.modbus_cases import image_from_case, load_case
from testkit.snmp import SnmpsimServer
from testkit.testdata import shared_testdata


def _probe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcim.cli", "probe", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def apc_agent():
    server = SnmpsimServer([shared_testdata() / "snmp" / "apc_ap8959eu3.snmprec"]).start()
    yield server
    server.stop()


def test_probe_snmp_auto_prints_json_lines(apc_agent):
    proc = _probe(f"snmp://apc_ap8959eu3@127.0.0.1:{apc_agent.port}", "--profile", "auto")
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    assert samples and all(set(s) == {"measurement", "tags", "fields", "time"} for s in samples)
    assert all(isinstance(s["time"], int) and s["time"] > 1_600_000_000 * 10**9 for s in samples)
    rows = {r["sensor_oid"]: r for r in csv.DictReader(open(shared_testdata() / "snmp" / "apc_ap8959eu3.sensors.csv"))}
    want_w = float(rows[".1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"]["librenms_poller_sensor_current"])
    device = [s for s in samples if s["measurement"] == "pdu" and s["tags"].get("pdu") == "1" and "power_w" in s["fields"]
              and not {"phase", "outlet", "bank"} & set(s["tags"])]
    assert device and device[0]["fields"]["power_w"] == pytest.approx(want_w, abs=0.01)


@pytest.mark.parametrize("case", ["eastron_sdm630", "trane_rthd_pic", "template_cdu"])
def test_probe_modbus_returns_the_registers_values(case):
    """The device images and hand-computed expectations of tests/modbus/testcases, through the CLI."""
    device, expected = load_case(case)
    unit = int(device["unit"])
    with ModbusTestServer({unit: image_from_case(device)}) as server:
        proc = _probe(f"modbus://127.0.0.1:{server.port}/{unit}", "--profile", device["profile"])
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    for want in expected:
        got = [s for s in samples if s["measurement"] == want["measurement"] and s["tags"].get("device") is None
               and {k: v for k, v in s["tags"].items() if k not in ("vendor", "model")} == want["tags"]]
        assert len(got) == 1, (want, samples)
        for field, value in want["fields"].items():
            assert got[0]["fields"][field] == (pytest.approx(value) if isinstance(value, float) else value), field


def test_probe_dead_device_fails_with_one_line_reason():
    proc = _probe(f"snmp://public@127.0.0.1:{free_port()}", "--timeout", "0.3", "--retries", "0")
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "timeout" in proc.stderr


def test_probe_bad_url_is_a_usage_error():
    proc = _probe("ftp://127.0.0.1/x")
    assert proc.returncode == 2 and "unsupported URL scheme" in proc.stderr and "Traceback" not in proc.stderr
