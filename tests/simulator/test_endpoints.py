"""The twin's endpoints are real protocol servers whose answers equal the model.

SNMP is checked with net-snmp's own command-line tools (an independent
implementation) and with the project's collector; Modbus with the collector;
DCGM and Redfish over plain HTTP.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from collectors.base import PollError
from collectors.snmp.collector import SnmpCollector
from collectors.targets import build_targets
from inventory.generate import SiteShape, generate_site, iter_devices
from simulator.model import PF, VOLTAGE
from localservers.process import require_binary
from testkit.collect import poll_device, poll_each


def _snmp(tool: str, site, device_id: str, *oids: str) -> str:
    require_binary(tool, "snmp")
    dev = site.device(device_id)
    proc = subprocess.run([tool, "-v2c", "-c", "public", "-On", "-Oe", "-t", "5", "-r", "0",
                           f"udp:127.0.0.1:{dev.port}", *oids], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_net_snmp_reads_the_pdu_outlets_the_model_holds(twin, twin_site):
    pdu = "h1-r01-k02-pdu-a"
    out = _snmp("snmpget", twin_site, pdu, "1.3.6.1.2.1.1.2.0")
    assert "1.3.6.1.4.1.318.1.3.4.6" in out
    walk = _snmp("snmpbulkwalk", twin_site, pdu, "1.3.6.1.4.1.318.1.1.26.9.4.3.1.7")
    got = {int(line.split(" = ")[0].rsplit(".", 1)[1]): int(line.rsplit(" ", 1)[1]) for line in walk.splitlines()}
    truth = twin.twin.truth(pdu).outlets
    assert len(got) == 24
    for outlet, watts in got.items():
        assert watts == round(truth.get(outlet, 0.0)), outlet
    assert sum(got.values()) == pytest.approx(twin.twin.truth(pdu).power_w, abs=24)


def test_collector_reads_pdu_inlet_and_phases_like_the_model(twin, twin_site):
    pdu = "h1-r02-k01-pdu-b"
    samples = poll_device(twin_site, pdu)
    truth = twin.twin.truth(pdu)
    inlet = [s for s in samples if s.measurement == "pdu" and "power_w" in s.fields
             and not {"outlet", "phase", "branch"} & set(s.tags)]
    assert inlet, [s.to_json() for s in samples[:5]]
    assert inlet[0].fields["power_w"] == pytest.approx(truth.power_w, abs=10)  # hundredths of kW on the wire
    phases = {s.tags["phase"]: s for s in samples if s.measurement == "pdu" and "phase" in s.tags and "current_a" in s.fields}
    assert len(phases) == 3
    for i, w in enumerate(truth.values["phase_w"]):
        amps = [p for p in phases.values() if p.tags["phase"].endswith(str(i + 1))][0].fields["current_a"]
        assert amps == pytest.approx(w / (VOLTAGE * PF), abs=0.06)
    assert all(s.tags["device"] == pdu and s.tags["rack"] == "h1-r02-k01" for s in samples if s.measurement == "pdu")


def test_ups_on_battery_shows_on_the_wire(twin, twin_site):
    twin.call(twin.twin.inject, "ups_on_battery", "ups-1b")
    try:
        twin.call(twin.twin.step)
        samples = poll_device(twin_site, "ups-1b")
        # UPS-MIB upsOutputSource: battery(5)
        assert _output_state(samples) == "battery"  # the ups_output vocabulary word (contract.states)
    finally:
        twin.call(twin.twin.clear, "ups_on_battery", "ups-1b")
        twin.call(twin.twin.step)
    samples = poll_device(twin_site, "ups-1b")
    assert _output_state(samples) == "normal"


def _output_state(samples) -> str:
    (state,) = [s.fields["state"] for s in samples if s.tags.get("stage") == "output" and "state" in s.fields]
    return state


def test_modbus_meters_behind_the_gateway_read_the_model(twin, twin_site):
    for meter in ("meter-util-a", "meter-ups-1a", "meter-pv-1"):
        samples = poll_device(twin_site, meter)
        total = [s for s in samples if s.measurement == "meter" and "power_w" in s.fields and "phase" not in s.tags]
        assert total, meter
        assert total[0].fields["power_w"] == pytest.approx(twin.twin.truth(meter).power_w, rel=0.002, abs=2), meter
        energy = [s.fields["energy_kwh"] for s in samples if "energy_kwh" in s.fields and "phase" not in s.tags]
        assert energy and energy[0] == pytest.approx(twin.twin.truth(meter).energy_kwh, abs=0.11), meter


def test_chiller_trip_reaches_the_collector(twin, twin_site):
    twin.call(twin.twin.inject, "chiller_trip", "chiller-2")
    try:
        twin.call(twin.twin.step)
        samples = poll_device(twin_site, "chiller-2")
        running = [s.fields["running"] for s in samples if "running" in s.fields]
        assert running == [False]
    finally:
        twin.call(twin.twin.clear, "chiller_trip", "chiller-2")
        twin.call(twin.twin.step)


def _http(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read()


def test_dcgm_page_carries_the_model_gpu_power(twin, twin_site):
    node = "h1-r01-k01-n2"
    status, body = _http(twin_site.device(node).port, "/metrics")
    assert status == 200
    lines = [l for l in body.decode().splitlines() if l.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    assert len(lines) == 8
    gpus = twin.twin.truth(node).gpus
    for line in lines:
        idx = int(line.split('gpu="')[1].split('"')[0])
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(gpus[idx].power_w, abs=0.01)


def test_redfish_follows_odata_links_to_chassis_power(twin, twin_site):
    bmc = twin_site.device("h1-r01-k01-n1-bmc")
    _, root = _http(bmc.port, "/redfish/v1")
    chassis = json.loads(_http(bmc.port, json.loads(root)["Chassis"]["@odata.id"])[1])
    first = json.loads(_http(bmc.port, chassis["Members"][0]["@odata.id"])[1])
    power = json.loads(_http(bmc.port, first["Power"]["@odata.id"])[1])
    assert power["PowerControl"][0]["PowerConsumedWatts"] == round(twin.twin.truth("h1-r01-k01-n1").power_w)


@pytest.mark.parametrize("device", ["h1-r01-k03-pdu-a", "meter-util-b"])
def test_no_answer_times_out(twin, twin_site, device):
    twin.call(twin.twin.inject, "no_answer", device)
    try:
        with pytest.raises(PollError) as err:
            poll_device(twin_site, device, timeout_s=0.5, retries=0)
        assert err.value.kind == "timeout"
    finally:
        twin.call(twin.twin.clear, "no_answer", device)
    assert poll_device(twin_site, device)  # answers again


@pytest.mark.parametrize("device", ["h1-r01-k03-pdu-b", "meter-util-b"])
def test_garbage_is_a_protocol_or_timeout_error_never_a_reading(twin, twin_site, device):
    twin.call(twin.twin.inject, "garbage", device)
    try:
        with pytest.raises(PollError) as err:
            poll_device(twin_site, device, timeout_s=0.5, retries=0)
        # SNMP engines drop undecodable datagrams (so the request times out); Modbus names the bad frame
        assert err.value.kind in ("protocol", "timeout")
    finally:
        twin.call(twin.twin.clear, "garbage", device)


def test_slow_device_answers_late(twin, twin_site):
    device = "h1-r02-k03-pdu-a"
    twin.call(twin.twin.inject, "slow", device)
    try:
        t0 = time.monotonic()
        out = _snmp("snmpget", twin_site, device, "1.3.6.1.2.1.1.5.0")  # one request, answered late
        assert time.monotonic() - t0 >= 2.4
        assert device in out
        with pytest.raises(PollError) as err:
            poll_device(twin_site, device, timeout_s=1.0, retries=0)
        assert err.value.kind == "timeout"
    finally:
        twin.call(twin.twin.clear, "slow", device)


def test_every_state_the_twin_serves_decodes_to_a_vocabulary_word(twin, twin_site):
    """One device per (protocol, profile): each enum state field decodes to a contract.states word."""
    from contract.protocols import PROTOCOLS
    from contract.states import RAW_SUFFIX, UPS_OUTPUT, VOCABULARIES

    words = {w for ws in VOCABULARIES.values() for w in ws}
    picked: dict[tuple, str] = {}
    for dev in twin_site.polled_devices():
        if PROTOCOLS[dev.protocol].family in ("snmp", "modbus"):
            picked.setdefault((dev.protocol, dev.profile, dev.kind), dev.id)
    seen_states = 0
    for device_id in picked.values():
        for s in poll_device(twin_site, device_id):
            for name, raw in s.fields.items():
                if not name.endswith(RAW_SUFFIX):
                    continue
                field = name[: -len(RAW_SUFFIX)]
                assert s.fields[field] in words, (device_id, s.measurement, s.tags, field, s.fields[field], raw)
                assert s.fields[field] != "unknown", (device_id, field, raw)  # the twin serves known values
                if s.measurement == "ups" and s.tags.get("stage") == "output" and field == "state":
                    assert s.fields[field] in VOCABULARIES[UPS_OUTPUT]
                seen_states += 1
    assert seen_states >= 3, picked  # UPS battery+output state, CDU pump and unit states at least


def test_the_generated_site_pins_the_profiles_its_pdus_and_upses_are_detected_as(twin, twin_site):
    """``dcim inventory generate`` writes each PDU's and UPS's profile instead of ``auto`` (one detection
    less per agent); what it pins must be what detection picks on the agents the twin serves, and a
    poll with the pinned profile must read what the detected one reads."""
    generated = {d["kind"]: d.get("profile") for d in iter_devices(generate_site(SiteShape(halls=1, rows_per_hall=1,
                 racks_per_row=1, nodes_per_rack=1, ups_per_hall=2))) if d["kind"] in ("pdu", "ups")}
    for kind, device_id in (("pdu", "h1-r02-k01-pdu-b"), ("ups", "ups-1b")):
        (target,), problems = build_targets(twin_site, [twin_site.device(device_id)])
        assert not problems and target.profile == "auto"
        collector = SnmpCollector()
        auto = poll_each(collector, [target])[0]
        detected = collector.detected[device_id][1]
        target.profile = generated[kind]
        pinned = poll_each(SnmpCollector(), [target])[0]
        assert detected == generated[kind], kind
        assert not isinstance(auto, PollError) and not isinstance(pinned, PollError)
        assert {(s.measurement, tuple(sorted(s.tags.items())), tuple(sorted(s.fields))) for s in pinned} == \
               {(s.measurement, tuple(sorted(s.tags.items())), tuple(sorted(s.fields))) for s in auto}
