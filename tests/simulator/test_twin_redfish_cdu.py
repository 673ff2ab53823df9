"""The twin serves a Redfish CDU (``ThermalEquipment/CDUs/1``) from its loop model, in DMTF's shape.

The example site's cdu-2 speaks Redfish.  Its resources are read over plain HTTP and
checked against the DMTF schema properties a client relies on (``@odata.id`` equal to
the path, ``@odata.type`` of the right schema, collections whose members resolve, the
enum values the schemas allow), against the inventory (one secondary connector per
loop, a leak detector per rack on the loop) and against the model; then the project's
Redfish collector reads it, and a pump failure shows on the wire and on the DCGM pages
of exactly the nodes on that loop.
"""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from contract import cooling as C
from inventory.loops import LoopIndex
from simulator.cooling import HW_THERMAL, SW_THERMAL
from testkit.collect import poll_device

CDU = "cdu-2"
ROOT = "/redfish/v1/ThermalEquipment/CDUs/1"
#: schema -> values its enums allow, for the properties the twin serves (DSP8010 bundle)
HEALTH = {"OK", "Warning", "Critical"}
STATES = {"Enabled", "Disabled", "StandbySpare", "StandbyOffline", "Absent", "Starting", "InTest", "UnavailableOffline"}
ODATA_TYPE = re.compile(r"^#([A-Za-z]+)\.v\d+_\d+_\d+\.\1$|^#([A-Za-z]+Collection)\.\2$")


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        return json.loads(r.read())


def _walk(port: int) -> dict[str, dict]:
    """Every resource reachable from the service root by ``@odata.id`` links."""
    seen: dict[str, dict] = {}
    todo = ["/redfish/v1"]
    while todo:
        path = todo.pop()
        if path in seen or "SessionService" in path:
            continue
        seen[path] = res = _get(port, path)
        todo += re.findall(r'"@odata.id": "([^"]+)"', json.dumps(res))
        todo += [d["DataSourceUri"] for g in res.get("LeakDetectorGroups", []) for d in g["Detectors"]]
    return seen


def _status_ok(res: dict) -> None:
    assert res["Status"]["Health"] in HEALTH and res["Status"]["State"] in STATES, res["@odata.id"]


def test_every_resource_has_the_dmtf_shape_and_the_inventory_loops_and_racks(twin, twin_site):
    port = twin_site.device(CDU).port
    res = _walk(port)
    for path, r in res.items():
        if path != "/redfish/v1/SessionService":
            assert r["@odata.id"] == path
            assert ODATA_TYPE.match(r["@odata.type"]), r["@odata.type"]
        if "Members" in r:
            assert r["Members@odata.count"] == len(r["Members"]) and all(m["@odata.id"] in res for m in r["Members"])
    unit = res[ROOT]
    assert unit["@odata.type"].startswith("#CoolingUnit.") and unit["EquipmentType"] == "CDU"
    _status_ok(unit)
    for link in ("PrimaryCoolantConnectors", "SecondaryCoolantConnectors", "Pumps", "Filters", "Reservoirs",
                 "LeakDetection", "EnvironmentMetrics"):
        assert unit[link]["@odata.id"] == f"{ROOT}/{link}"
    index = LoopIndex(twin_site)
    loops = index.loops_of_cdu(CDU)
    secondary = [res[m["@odata.id"]] for m in res[f"{ROOT}/SecondaryCoolantConnectors"]["Members"]]
    assert sorted(c["Id"] for c in secondary) == sorted(loop for _, loop in loops)
    for conn in secondary + [res[f"{ROOT}/PrimaryCoolantConnectors/1"]]:
        assert conn["@odata.type"].startswith("#CoolantConnector.") and conn["CoolantConnectorType"] == "Pair"
        _status_ok(conn)
        for prop in ("FlowLitersPerMinute", "SupplyTemperatureCelsius", "ReturnTemperatureCelsius",
                     "DeltaTemperatureCelsius", "SupplyPressurekPa", "ReturnPressurekPa", "DeltaPressurekPa",
                     "HeatRemovedkW"):
            assert isinstance(conn[prop]["Reading"], (int, float)), prop
        assert conn["DeltaTemperatureCelsius"]["Reading"] == pytest.approx(
            conn["ReturnTemperatureCelsius"]["Reading"] - conn["SupplyTemperatureCelsius"]["Reading"], abs=0.11)
    pumps = [res[m["@odata.id"]] for m in res[f"{ROOT}/Pumps"]["Members"]]
    assert [p["Status"]["State"] for p in pumps] == ["Enabled", "StandbySpare"]
    for p in pumps:
        assert p["@odata.type"].startswith("#Pump.") and p["PumpType"] == "Liquid"
        assert 0 <= p["PumpSpeedPercent"]["Reading"] <= 100 and p["PumpSpeedPercent"]["SpeedRPM"] >= 0
    flt = res[f"{ROOT}/Filters/1"]
    assert flt["@odata.type"] == "#Filter.v1_1_0.Filter" and "Reading" in flt["DeltaLiquidPressurekPa"]
    tank = res[f"{ROOT}/Reservoirs/1"]
    assert tank["ReservoirType"] in {"Reserve", "Overflow", "Inline", "Immersion"}
    assert tank["FluidLevelStatus"] in HEALTH and 0 <= tank["FluidLevelPercent"]["Reading"] <= 100
    detectors = [res[m["@odata.id"]] for m in res[f"{ROOT}/LeakDetection/LeakDetectors"]["Members"]]
    racks = {rack for key in loops for rack in index.racks_on(key)}
    assert racks and {d["Id"] for d in detectors} == racks | {"unit"}
    for d in detectors:
        assert d["DetectorState"] in HEALTH and d["LeakDetectorType"] in {"Moisture", "FloatSwitch"}
        if d["Id"] != "unit":
            assert d["Location"]["Placement"]["Rack"] == d["Id"]
    summary = res[f"{ROOT}/LeakDetection"]["LeakDetectorGroups"][0]["Detectors"]
    assert {s["DataSourceUri"] for s in summary} == {d["@odata.id"] for d in detectors}


def test_the_collector_reads_what_the_model_holds(twin, twin_site):
    c = twin.twin.model.cooling[CDU]
    samples = poll_device(twin_site, CDU)
    assert all(s.measurement == C.CDU for s in samples)
    by = {tuple(sorted((k, v) for k, v in s.tags.items() if k in C.COMPONENT_TAGS)): s.fields for s in samples}
    loop = c.loops["1"]
    sec = by[((C.LOOP, "1"), (C.SIDE, C.SECONDARY))]
    assert sec[C.FLOW_LPM] == pytest.approx(loop.flow_lpm, abs=0.05)
    assert sec[C.SUPPLY_TEMP_C] == pytest.approx(loop.supply_c, abs=0.05)
    assert sec[C.RETURN_TEMP_C] == pytest.approx(loop.return_c, abs=0.05)
    assert sec[C.HEAT_REMOVED_W] == pytest.approx(loop.heat_w, abs=5.0)
    assert by[((C.PUMP, "1"),)][C.STATE] == "running" and by[((C.PUMP, "2"),)][C.STATE] == "standby"
    assert by[((C.RESERVOIR, "1"),)][C.LEVEL_PCT] == pytest.approx(c.reservoir_pct, abs=0.05)
    assert {s.tags[C.DETECTOR]: s.fields[C.STATE] for s in samples if C.DETECTOR in s.tags} == {d: "dry" for d in c.detectors}
    assert by[()][C.STATE] == "running"


def test_pump_failure_shows_on_the_wire_and_on_that_loops_gpus_only(twin, twin_site):
    index = LoopIndex(twin_site)
    on = [d.id for key in index.loops_of_cdu(CDU) for d in index.gpu_nodes_on(key)]
    off = [d.id for key in index.loops_of_cdu("cdu-1") for d in index.gpu_nodes_on(key)]

    def reasons(node: str) -> list[int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{twin_site.device(node).port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{")]

    twin.call(twin.twin.inject, "cdu_pump_fail", CDU)
    try:
        for _ in range(2):
            twin.call(twin.twin.step)
        samples = poll_device(twin_site, CDU)
        pumps = {s.tags[C.PUMP]: s.fields[C.STATE] for s in samples if C.PUMP in s.tags}
        assert pumps == {"1": "fault", "2": "fault"}
        sec = next(s for s in samples if s.tags.get(C.SIDE) == C.SECONDARY)
        assert sec.fields[C.FLOW_LPM] == 0
        assert next(s for s in samples if not set(s.tags) & set(C.COMPONENT_TAGS)).fields[C.STATE] == "alarm"
        busy = [n for n in on if twin.twin.truth(n).values["util_pct"] > 50]
        assert busy
        for n in busy:
            assert all(r & (SW_THERMAL | HW_THERMAL) for r in reasons(n)), n
        hot_overtemp = {n for n in off if twin.twin.model.has("gpu_overtemp", n)}
        for n in set(off) - hot_overtemp:
            assert not any(r & (SW_THERMAL | HW_THERMAL) for r in reasons(n)), n
    finally:
        twin.call(twin.twin.clear, "cdu_pump_fail", CDU)
        for _ in range(2):
            twin.call(twin.twin.step)
    assert {s.fields[C.STATE] for s in poll_device(twin_site, CDU) if C.PUMP in s.tags} == {"running", "standby"}
