"""``dcim simulate`` as a process: serves the site, takes faults over its control API, stops on SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from localservers.process import free_port, wait_for_port
from dcim.commands.simulate import parse_scale


def _dcim(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcim.cli", *args], capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture()
def running_twin(tmp_path):
    site = tmp_path / "slice.yaml"
    control = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dcim.cli", "simulate", "--scale",
                             "halls=1,rows=1,racks=2,nodes=2,ups=2,cdus=1,bmcs=1", "--write-site", str(site),
                             "--control-port", str(control), "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(control, timeout=30, proc=proc)
        yield proc, site, f"http://127.0.0.1:{control}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_fault_control_round_trip_and_clean_stop(running_twin, monkeypatch):
    proc, site, control = running_twin
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    r = _dcim("simulate", "fault", "inject", "ups_on_battery", "h01-ups-a01", "--control", control)
    assert r.returncode == 0, r.stderr
    listed = json.loads(_dcim("simulate", "fault", "list", "--control", control).stdout)
    assert {"fault": "ups_on_battery", "device": "h01-ups-a01", "params": {}} in listed["faults"]
    time.sleep(1.5)  # one model step with the UPS on battery
    truth = json.loads(urllib.request.urlopen(f"{control}/truth/h01-ups-a01", timeout=5).read())
    assert truth["input_w"] == 0 and truth["power_w"] > 0
    # the generated site file polls the twin: a probe of its UPS agent answers
    from inventory.loader import load_site
    ups = load_site(site).device("h01-ups-a01")
    probe = _dcim("probe", f"snmp://public@{ups.host}:{ups.port}")
    assert probe.returncode == 0, probe.stderr
    assert any(json.loads(l)["fields"].get("state") == "battery" for l in probe.stdout.splitlines())
    bad = _dcim("simulate", "fault", "inject", "ups_on_battery", "no-such-device", "--control", control)
    assert bad.returncode == 2 and "no device" in bad.stderr
    assert _dcim("simulate", "fault", "clear", "ups_on_battery", "h01-ups-a01", "--control", control).returncode == 0
    # a CDU fault with a parameter, through the same API: every pump of the unit fails, its loops stop
    cdu = next(d.id for d in load_site(site).all_devices() if d.kind == "cdu")
    r = _dcim("simulate", "fault", "inject", "cdu_pump_fail", cdu, "--param", "pump=all", "--control", control)
    assert r.returncode == 0, r.stderr
    listed = json.loads(_dcim("simulate", "fault", "list", "--control", control).stdout)
    assert {"fault": "cdu_pump_fail", "device": cdu, "params": {"pump": "all"}} in listed["faults"]
    time.sleep(1.5)  # one model step with the pumps stopped
    truth = json.loads(urllib.request.urlopen(f"{control}/truth/{cdu}", timeout=5).read())
    assert truth["values"]["flow_lpm"] == 0 and truth["values"]["unit_state"] == "alarm"
    bad = _dcim("simulate", "fault", "inject", "cdu_pump_fail", cdu, "--param", "pump=9", "--control", control)
    assert bad.returncode == 2 and "has 1, 2, all" in bad.stderr
    bad = _dcim("simulate", "fault", "inject", "cdu_low_flow", cdu, "--param", "pct", "--control", control)
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    assert _dcim("simulate", "fault", "clear", "cdu_pump_fail", cdu, "--control", control).returncode == 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "twin stopped" in out


def test_fault_client_without_a_twin_says_so():
    r = _dcim("simulate", "fault", "list", "--control", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 2 and "no twin answering" in r.stderr


@pytest.mark.parametrize("text,msg", [("halls=0", "at least 1"), ("floors=2", "use KEY=N"), ("racks=ten", "whole number")])
def test_scale_errors_are_clear(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_scale(text)


def _raw(control: str, request: bytes) -> tuple[int, dict]:
    """One raw HTTP request to the control API (headers exactly as a browser or an attacker sends them)."""
    import socket

    host, port = control.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_control_api_refuses_what_a_web_page_could_send(running_twin):
    """DNS rebinding (a foreign Host), a cross-origin page, a form post: refused, and no fault injected."""
    _, _, control = running_twin
    port = control.rsplit(":", 1)[1]
    body = b'{"fault": "ups_on_battery", "device": "h01-ups-a01"}'

    def post(headers: str, ctype: str = "application/json") -> tuple[int, dict]:
        return _raw(control, f"POST /faults HTTP/1.1\r\n{headers}Content-Type: {ctype}\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    assert post("Host: attacker.example:80\r\n")[0] == 403
    assert post("")[0] == 403                                                  # no Host at all
    assert post(f"Host: 127.0.0.1:{port}\r\nOrigin: http://attacker.example\r\n")[0] == 403
    assert post(f"Host: 127.0.0.1:{port}\r\nOrigin: null\r\n")[0] == 403
    assert post(f"Host: localhost:{port}\r\nSec-Fetch-Site: cross-site\r\n")[0] == 403
    status, obj = post(f"Host: 127.0.0.1:{port}\r\n", ctype="text/plain")    # a "simple" cross-site form post
    assert status == 415 and "application/json" in obj["error"]
    assert _raw(control, f"GET /faults HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())[1]["faults"] == []
    ok, obj = post(f"Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n")
    assert ok == 200 and obj["active"] is True                                 # the operator's own tools still work
