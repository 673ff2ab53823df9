"""Redfish CDUs (ThermalEquipment/CDUs) through the Redfish collector, on published payloads served over HTTP(S).

The OCP Coolant Distribution Unit profile's examples (tests/gpu/redfish_cdu/ocp-cdu-1.0.0,
see its SOURCE.md) are served by a real local Redfish service with sessions; every expected
value below is read by hand from those JSON files, not from the collector.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from collectors.base import PollError, Target
from collectors.gpu.redfish import RedfishCollector
from collectors.gpu.redfish_cdu import cdu_samples, health_state, leak_state, pump_state, unit_state
from contract import cooling as C
from contract.states import VOCABULARIES
from dcim.service import CollectionService
from inventory.loader import load_site_text
from inventory.secrets import SecretValue
from testkit.collect import poll_each
from testkit.redfish import RedfishMockupServer
from testkit.testdata import shared_testdata
from testkit.tls import make_tls

OCP = Path(__file__).resolve().parent / "redfish_cdu" / "ocp-cdu-1.0.0"
DMTF = Path(__file__).resolve().parent / "redfish_cdu" / "dmtf-dsp2046"
CDU1 = ("redfish", "v1", "ThermalEquipment", "CDUs", "1")
BASE = {"site": "tetouan", "hall": "h1", "device": "cdu-1"}

# What the OCP examples say, written out by hand (kW x 1000 -> W).
OCP_EXPECTED = {
    (): {"state": "running", "state_raw": "Enabled/OK", "cooling_capacity_w": 50000.0,
         "power_w": 6438.0, "energy_kwh": 36166.0},
    (("loop", "1"), ("side", "primary")): {
        "supply_temp_c": 28.0, "return_temp_c": 42.0, "flow_lpm": 41.0, "differential_pressure_kpa": 133.0,
        "supply_pressure_kpa": 803.0, "return_pressure_kpa": 936.0, "heat_removed_w": 21030.0},
    (("loop", "1"), ("side", "secondary")): {
        "supply_temp_c": 29.0, "return_temp_c": 50.0, "flow_lpm": 42.0, "differential_pressure_kpa": 37.0,
        "supply_pressure_kpa": 108.0, "return_pressure_kpa": 145.0, "heat_removed_w": 26360.0},
    (("pump", "1"),): {"state": "running", "state_raw": "Enabled/OK", "speed_pct": 38.5},
    (("filter", "1"),): {"state": "ok", "state_raw": "Enabled/OK", "service_hours": 354.0},
    (("reservoir", "1"),): {"state": "ok", "state_raw": "OK"},
    (("detector", "Moisture"),): {"state": "dry", "state_raw": "OK"},
}


# DMTF's schema-guide examples (tests/gpu/redfish_cdu/dmtf-dsp2046/SOURCE.md), by hand: loop "A",
# no pumps, no primary connector, no EnvironmentMetrics, detectors only as LeakDetection excerpts.
DMTF_EXPECTED = {
    (): {"state": "running", "state_raw": "Enabled/OK"},
    (("loop", "A"), ("side", "secondary")): {
        "supply_temp_c": 14.8, "return_temp_c": 38.2, "flow_lpm": 24.3, "differential_pressure_kpa": 31.7,
        "supply_pressure_kpa": 426.6, "return_pressure_kpa": 409.9},
    (("filter", "1"),): {"state": "ok", "state_raw": "Enabled/OK", "service_hours": 5791.0},
    (("detector", "Moisture"),): {"state": "dry", "state_raw": "OK"},
    (("detector", "Leak Detection Rope 1"),): {"state": "dry", "state_raw": "OK"},
    (("detector", "Overflow"),): {"state": "dry", "state_raw": "OK"},
}


def _target(port: int, protocol: str = "redfish", kind: str = "cdu", **options) -> Target:
    secrets = {k: SecretValue(options.pop(k)) for k in ("username", "password") if k in options}
    return Target(device_id="cdu-1", protocol=protocol, host="127.0.0.1", port=port, kind=kind, timeout_s=3.0,
                  tags=dict(BASE), options=options, secrets=secrets)


def _by_series(samples) -> dict:
    out = {}
    for s in samples:
        assert s.measurement == C.CDU, s
        assert {k: s.tags[k] for k in BASE} == BASE
        key = tuple(sorted((k, v) for k, v in s.tags.items() if k not in BASE))
        assert key not in out, key
        out[key] = s.fields
    return out


def test_ocp_cdu_every_sample_with_a_session_login():
    with RedfishMockupServer(OCP, credentials=("ops", "cdu-pw")) as server:
        [samples] = poll_each(RedfishCollector(), [_target(server.port, username="ops", password="cdu-pw")], 60)
        assert server.logins == 1
    assert not isinstance(samples, PollError), samples
    assert _by_series(samples) == OCP_EXPECTED
    for s in samples:  # every state word belongs to its component's vocabulary
        comp = next((t for t in (C.PUMP, C.FILTER, C.RESERVOIR, C.DETECTOR) if t in s.tags), "")
        if C.STATE in s.fields:
            assert s.fields[C.STATE] in VOCABULARIES[C.VOCABULARY_OF[comp]]


def test_dmtf_cdu_loop_a_and_detectors_from_the_leak_detection_excerpts():
    with RedfishMockupServer(DMTF) as server:
        [samples] = poll_each(RedfishCollector(), [_target(server.port)], 60)
    assert not isinstance(samples, PollError), samples
    assert _by_series(samples) == DMTF_EXPECTED


def test_ocp_cdu_over_https_with_the_ca_bundle(tmp_path):
    tls = make_tls(tmp_path)
    with RedfishMockupServer(OCP, tls=(tls.server_cert, tls.server_key)) as server:
        unverified, verified = poll_each(RedfishCollector(), [
            _target(server.port, "redfish-https"), _target(server.port, "redfish-https", ca_bundle=str(tls.ca_cert))], 60)
    assert isinstance(unverified, PollError) and unverified.kind == "auth"
    assert _by_series(verified) == OCP_EXPECTED


def _edited_copy(tmp_path: Path, edits: dict[tuple[str, ...], dict]) -> Path:
    """The OCP mockup with some properties changed (the failure states the examples do not show)."""
    dst = tmp_path / "cdu"
    shutil.copytree(OCP, dst)
    for rel, changes in edits.items():
        f = dst.joinpath(*CDU1, *rel, "index.json")
        body = json.loads(f.read_text())
        body.update(changes)
        f.write_text(json.dumps(body))
    return dst


def test_failed_pump_leak_and_clogged_filter_map_onto_the_vocabularies(tmp_path):
    mockup = _edited_copy(tmp_path, {
        (): {"Status": {"State": "Enabled", "Health": "Critical"}},
        ("Pumps", "1"): {"Status": {"State": "Enabled", "Health": "Critical"}, "PumpSpeedPercent": {"Reading": 0}},
        ("LeakDetection", "LeakDetectors", "Moisture"): {"DetectorState": "Warning"},
        ("Filters", "1"): {"Status": {"State": "Enabled", "Health": "Warning"}, "DeltaLiquidPressurekPa": {"Reading": 48.2}},
        ("Reservoirs", "1"): {"FluidLevelStatus": "Critical", "FluidLevelPercent": {"Reading": 12.5}},
    })
    with RedfishMockupServer(mockup) as server:
        [samples] = poll_each(RedfishCollector(), [_target(server.port)], 60)
    got = _by_series(samples)
    assert got[()]["state"] == "alarm" and got[()]["state_raw"] == "Enabled/Critical"
    assert got[(("pump", "1"),)] == {"state": "fault", "state_raw": "Enabled/Critical", "speed_pct": 0.0}
    assert got[(("detector", "Moisture"),)] == {"state": "leak", "state_raw": "Warning"}
    assert got[(("filter", "1"),)] == {"state": "fault", "state_raw": "Enabled/Warning", "service_hours": 354.0,
                                       "differential_pressure_kpa": 48.2}
    assert got[(("reservoir", "1"),)] == {"state": "fault", "state_raw": "Critical", "level_pct": 12.5}


def test_a_rack_manager_root_gives_its_chassis_and_its_cdus(tmp_path):
    """Not an inventory CDU, but its service root links ThermalEquipment: both walks run."""
    with RedfishMockupServer(OCP) as server:
        [samples] = poll_each(RedfishCollector(), [_target(server.port, kind="rack_manager")], 60)
    assert _by_series(samples) == OCP_EXPECTED  # the OCP root's Chassis collection is absent (404): skipped


def test_a_cdu_device_without_thermal_equipment_is_a_decode_error():
    with RedfishMockupServer(shared_testdata() / "redfish" / "dmtf-public-rackmount1") as server:
        [err] = poll_each(RedfishCollector(), [_target(server.port)], 60)
    assert isinstance(err, PollError) and err.kind == "decode" and "ThermalEquipment/CDUs" in err.message


@pytest.mark.parametrize("state,health,unit,pump", [
    ("Enabled", "OK", "running", "running"),
    ("Enabled", "Warning", "alarm", "running"),
    ("Enabled", "Critical", "alarm", "fault"),
    ("StandbySpare", "OK", "standby", "standby"),
    ("Disabled", None, "off", "off"),
    ("Absent", None, "off", "off"),
    ("Updating", "OK", "maintenance", "unknown"),
    (None, None, "unknown", "unknown"),
])
def test_status_words(state, health, unit, pump):
    assert unit_state(state, health) == unit
    assert pump_state(state, health) == pump


def test_health_and_detector_words():
    assert [health_state(h) for h in ("OK", "Warning", "Critical", None)] == ["ok", "fault", "fault", "unknown"]
    assert [leak_state(d, "OK") for d in ("OK", "Warning", "Critical")] == ["dry", "leak", "leak"]
    assert leak_state(None, "Critical") == "fault" and leak_state(None, None) == "unknown"


SITE = """
site: {{id: tetouan, name: Test}}
defaults: {{credentials: {{redfish: cdu-bmc}}}}
credentials:
  cdu-bmc: {{username: {{env: CDU_USER}}, password: {{env: CDU_PW}}}}
devices:
  - {{id: chiller-1, kind: chiller, rated_kw: 500}}
halls:
  - id: h1
    devices:
      - {{id: cdu-1, kind: cdu, vendor: contoso, model: LCOOL6000, rated_kw: 50, protocol: redfish,
         host: 127.0.0.1, port: {port}, interval_s: 1, cooled_by: [chiller-1],
         loops: [{{id: "1", rated_kw: 50, design_flow_lpm: 35, design_supply_c: 29}}]}}
"""


def test_an_inventory_redfish_cdu_through_the_collection_service(monkeypatch):
    """Site file -> target (kind cdu, session credentials from the environment) -> scheduler -> samples
    whose loop ids are the inventory's."""
    monkeypatch.setenv("CDU_USER", "ops")
    monkeypatch.setenv("CDU_PW", "cdu-pw")
    with RedfishMockupServer(OCP, credentials=("ops", "cdu-pw")) as server:
        site = load_site_text(SITE.format(port=server.port), "site.yaml")
        seen: list = []

        async def run() -> None:
            service = CollectionService(site, None, devices=[site.device("cdu-1")])
            service.add_consumer(seen.extend)
            await service.start()
            deadline = time.monotonic() + 15
            try:
                while time.monotonic() < deadline and not any(s.measurement == C.CDU for s in seen):
                    await asyncio.sleep(0.05)
            finally:
                await service.stop()
        asyncio.run(run())
    cdu = [s for s in seen if s.measurement == C.CDU]
    first_poll = {s.time_ns for s in cdu}
    one = min(first_poll)
    got = {tuple(sorted((k, v) for k, v in s.tags.items() if k not in ("site", "hall", "device", "vendor", "model"))): s.fields
           for s in cdu if s.time_ns == one}
    assert got == OCP_EXPECTED
    assert {(s.tags["site"], s.tags["hall"], s.tags["device"]) for s in cdu} == {("tetouan", "h1", "cdu-1")}
    loops = {s.tags[C.LOOP] for s in cdu if s.tags.get(C.SIDE) == C.SECONDARY}
    assert loops == {lp.id for lp in site.device("cdu-1").loops}


def test_a_lying_cdu_gives_what_it_can_and_never_raises():
    """Strings, nulls, NaN, lists and missing Ids where the schema has numbers and objects: each bad
    property is left out (never zero), the good ones stay, the walk goes on."""
    unit = {"Id": "1", "Status": "OK", "CoolingCapacityWatts": "50 kW"}
    conn = {"Id": "2", "SupplyTemperatureCelsius": {"Reading": "29"}, "ReturnTemperatureCelsius": {"Reading": None},
            "FlowLitersPerMinute": {"Reading": float("nan")}, "DeltaPressurekPa": [37],
            "SupplyPressurekPa": {"Reading": True}, "ReturnPressurekPa": {"Reading": 145}, "HeatRemovedkW": 26.36}
    pump = {"@odata.id": "/redfish/v1/ThermalEquipment/CDUs/1/Pumps/7", "Status": {"State": 3, "Health": "Critical"},
            "PumpSpeedPercent": "fast"}
    det = {"Id": "tray", "DetectorState": 2}
    samples = cdu_samples(unit, {"primary": [], "secondary": [conn]}, [pump], [], [], [det], None, {"device": "cdu-9"}, 1,
                          leak={"LeakDetectorGroups": "none"})
    by = {tuple(sorted((k, v) for k, v in s.tags.items() if k != "device")): s.fields for s in samples}
    assert by[()] == {"state": "unknown", "state_raw": "unknown"}
    assert by[(("loop", "2"), ("side", "secondary"))] == {"return_pressure_kpa": 145.0}
    assert by[(("pump", "7"),)] == {"state": "fault", "state_raw": "Critical"}
    assert by[(("detector", "tray"),)] == {"state": "unknown", "state_raw": "unknown"}
