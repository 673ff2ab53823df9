"""A CDU's Redfish service, built from the twin's loop model (``ThermalEquipment/CDUs/1``).

The resource shapes follow DMTF's schemas as the OCP Coolant Distribution Unit and
Liquid Cooling Baseline profiles' examples write them (``CoolingUnit.v1_1_2``,
``CoolantConnector.v1_0_2``, ``Pump.v1_1_0``, ``Reservoir.v1_0_2``,
``LeakDetection.v1_0_1``, ``LeakDetector.v1_1_0``, ``EnvironmentMetrics.v1_3_0``) and
``Filter.v1_1_0`` (``DeltaLiquidPressurekPa``, added in v1.1.0).  One resource per path,
built on request from the model's state (a CDU's service is a dozen small resources):

* ``SecondaryCoolantConnectors/{loop}``: one connector per inventory loop, its ``Id`` the
  loop id (the ``loop`` tag the collector writes); ``PrimaryCoolantConnectors/1`` the
  facility water.
* ``Pumps/1``, ``Pumps/2``: the lead runs (``Enabled``), the other is ``StandbySpare``; a
  failed pump is ``Critical``; pumps stopped by the low-level switch are ``Disabled``.
* ``LeakDetection/LeakDetectors/unit`` (the drip tray) and one detector per rack on the
  unit's loops, ``Id`` the rack id and ``Location.Placement.Rack`` the rack: a leak names
  the rack.  ``DetectorState`` ``OK`` when dry, ``Critical`` when wet.
"""
from __future__ import annotations

from simulator.cooling import (FILTER_RATED_HOURS, PRIMARY_SUPPLY_KPA, RESERVOIR_L, UNIT_DETECTOR, CduCooling,
                               LoopState, loop_low_flow, loop_warm, primary_dp_kpa)

__all__ = ["CDU_ROOT", "cdu_resources"]

CDU_ROOT = "/redfish/v1/ThermalEquipment/CDUs/1"
_COOLANT = {"CoolantType": "Water", "SpecificHeatkJoulesPerKgK": 3.9, "DensityKgPerCubicMeter": 1030}


def _status(health: str = "OK", state: str = "Enabled") -> dict:
    return {"State": state, "Health": health}


def _ref(path: str) -> dict:
    return {"@odata.id": path}


def _collection(path: str, odata_type: str, name: str, members: list[str]) -> dict:
    return {"@odata.id": path, "@odata.type": f"#{odata_type}.{odata_type}", "Name": name,
            "Members@odata.count": len(members), "Members": [_ref(m) for m in members]}


def _reading(value: float, digits: int = 1) -> dict:
    return {"Reading": round(value, digits)}


def _connector(path: str, cid: str, name: str, health: str, rated_lpm: float, flow: float, supply: float,
               ret: float, supply_kpa: float, return_kpa: float, heat_w: float, loop_name: str | None) -> dict:
    out = {"@odata.id": path, "@odata.type": "#CoolantConnector.v1_0_2.CoolantConnector", "Id": cid, "Name": name,
           "Status": _status(health), "CoolantConnectorType": "Pair", "Coolant": dict(_COOLANT),
           "RatedFlowLitersPerMinute": round(rated_lpm, 1), "FlowLitersPerMinute": _reading(flow),
           "SupplyTemperatureCelsius": _reading(supply), "ReturnTemperatureCelsius": _reading(ret),
           "DeltaTemperatureCelsius": _reading(ret - supply), "SupplyPressurekPa": _reading(supply_kpa),
           "ReturnPressurekPa": _reading(return_kpa), "DeltaPressurekPa": _reading(supply_kpa - return_kpa),
           "HeatRemovedkW": _reading(heat_w / 1000.0, 2)}
    if loop_name is not None:
        out["CoolingLoopName"] = loop_name
    return out


def _loop_health(l: LoopState) -> str:
    if l.flow_lpm <= 0 or loop_low_flow(l):
        return "Critical"
    if loop_warm(l):
        return "Warning"
    return "OK"


def _unit_health(c: CduCooling) -> str:
    if c.leaking or c.reservoir_state != "ok" or any(_loop_health(l) == "Critical" for l in c.loops.values()):
        return "Critical"
    if c.unit_state != "running":
        return "Warning"
    return "OK"


def cdu_resources(cdu_id: str, c: CduCooling, power_w: float, energy_kwh: float, manufacturer: str | None = None,
                  model: str | None = None) -> dict[str, dict]:
    """Path -> resource for one CDU's Redfish service (detectors other than ``unit`` are named for their rack)."""
    sessions = "/redfish/v1/SessionService/Sessions"
    u = CDU_ROOT
    out: dict[str, dict] = {
        "/redfish/v1": {"@odata.id": "/redfish/v1", "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot", "Id": "RootService",
                        "Name": "Root Service", "RedfishVersion": "1.17.0",
                        "ThermalEquipment": _ref("/redfish/v1/ThermalEquipment"),
                        "SessionService": _ref("/redfish/v1/SessionService"), "Links": {"Sessions": _ref(sessions)}},
        "/redfish/v1/SessionService": {"@odata.id": "/redfish/v1/SessionService", "Sessions": _ref(sessions)},
        "/redfish/v1/ThermalEquipment": {"@odata.id": "/redfish/v1/ThermalEquipment",
                                         "@odata.type": "#ThermalEquipment.v1_1_2.ThermalEquipment",
                                         "Id": "ThermalEquipment", "Name": "Thermal Equipment", "Status": _status(),
                                         "CDUs": _ref("/redfish/v1/ThermalEquipment/CDUs")},
        "/redfish/v1/ThermalEquipment/CDUs": _collection("/redfish/v1/ThermalEquipment/CDUs", "CoolingUnitCollection",
                                                         "Cooling Distribution Unit Collection", [u]),
        u: {"@odata.id": u, "@odata.type": "#CoolingUnit.v1_1_2.CoolingUnit", "Id": "1", "EquipmentType": "CDU",
            "Name": cdu_id, "Manufacturer": manufacturer or "Iozera twin", "Model": model or "CDU",
            "SerialNumber": f"TWIN-{cdu_id}", "Status": _status(_unit_health(c)), "Coolant": dict(_COOLANT),
            "CoolingCapacityWatts": round(sum(l.spec.rated_w for l in c.loops.values())),
            "EnvironmentMetrics": _ref(f"{u}/EnvironmentMetrics"),
            "PrimaryCoolantConnectors": _ref(f"{u}/PrimaryCoolantConnectors"),
            "SecondaryCoolantConnectors": _ref(f"{u}/SecondaryCoolantConnectors"),
            "Pumps": _ref(f"{u}/Pumps"), "Filters": _ref(f"{u}/Filters"), "Reservoirs": _ref(f"{u}/Reservoirs"),
            "LeakDetection": _ref(f"{u}/LeakDetection")},
        f"{u}/EnvironmentMetrics": {"@odata.id": f"{u}/EnvironmentMetrics",
                                    "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
                                    "Name": f"{cdu_id} environment metrics", "PowerWatts": _reading(power_w, 0),
                                    "EnergykWh": _reading(energy_kwh, 3)},
    }
    # connectors: the facility water, then one per secondary loop
    pri = f"{u}/PrimaryCoolantConnectors/1"
    out[f"{u}/PrimaryCoolantConnectors"] = _collection(f"{u}/PrimaryCoolantConnectors", "CoolantConnectorCollection",
                                                       "Primary coolant connectors", [pri])
    out[pri] = _connector(pri, "1", "Facility water", "OK", sum(l.spec.design_flow_lpm for l in c.loops.values()),
                          c.primary_flow_lpm, c.primary_supply_c, c.primary_return_c, PRIMARY_SUPPLY_KPA,
                          PRIMARY_SUPPLY_KPA - primary_dp_kpa(c),
                          c.heat_w, None)
    secondary = []
    for l in c.loops.values():
        path = f"{u}/SecondaryCoolantConnectors/{l.spec.id}"
        secondary.append(path)
        out[path] = _connector(path, l.spec.id, f"Secondary loop {l.spec.id}", _loop_health(l), l.spec.design_flow_lpm,
                               l.flow_lpm, l.supply_c, l.return_c, l.supply_kpa, l.return_kpa, l.heat_w,
                               f"{cdu_id}:{l.spec.id}")
    out[f"{u}/SecondaryCoolantConnectors"] = _collection(f"{u}/SecondaryCoolantConnectors", "CoolantConnectorCollection",
                                                         "Secondary coolant connectors", secondary)
    # pumps
    pumps = []
    for p in c.pumps:
        path = f"{u}/Pumps/{p.id}"
        pumps.append(path)
        state = {"running": ("OK", "Enabled"), "standby": ("OK", "StandbySpare"), "off": ("OK", "Disabled"),
                 "fault": ("Critical", "Enabled")}[p.state]
        out[path] = {"@odata.id": path, "@odata.type": "#Pump.v1_1_0.Pump", "Id": p.id, "Name": f"Secondary pump {p.id}",
                     "PumpType": "Liquid", "Status": _status(*state), "ServiceHours": round(p.service_h, 2),
                     "PumpSpeedPercent": {"Reading": round(p.speed_pct, 1), "SpeedRPM": round(p.rpm)},
                     "Location": {"PartLocation": {"ServiceLabel": f"Pump {p.id}"}}}
    out[f"{u}/Pumps"] = _collection(f"{u}/Pumps", "PumpCollection", "Pumps", pumps)
    # filter
    flt = f"{u}/Filters/1"
    out[f"{u}/Filters"] = _collection(f"{u}/Filters", "FilterCollection", "Filters", [flt])
    out[flt] = {"@odata.id": flt, "@odata.type": "#Filter.v1_1_0.Filter", "Id": "1", "Name": "Secondary strainer",
                "Status": _status("OK" if c.filter_state == "ok" else "Critical"), "ServiceHours": round(c.filter_hours, 2),
                "RatedServiceHours": FILTER_RATED_HOURS, "Replaceable": True, "HotPluggable": False,
                "DeltaLiquidPressurekPa": _reading(c.filter_dp_kpa, 2),
                "Location": {"PartLocation": {"ServiceLabel": "Secondary strainer"}}}
    # reservoir
    res = f"{u}/Reservoirs/1"
    out[f"{u}/Reservoirs"] = _collection(f"{u}/Reservoirs", "ReservoirCollection", "Reservoirs", [res])
    level_health = "OK" if c.reservoir_state == "ok" else "Critical"
    out[res] = {"@odata.id": res, "@odata.type": "#Reservoir.v1_0_2.Reservoir", "Id": "1", "Name": "Expansion tank",
                "ReservoirType": "Reserve", "CapacityLiters": RESERVOIR_L, "Status": _status(level_health),
                "FluidLevelPercent": _reading(c.reservoir_pct), "FluidLevelStatus": level_health,
                "Location": {"PartLocation": {"ServiceLabel": "Expansion tank"}}}
    # leak detection
    ld = f"{u}/LeakDetection"
    det_paths, summary = [], []
    for det, state in c.detectors.items():
        path = f"{ld}/LeakDetectors/{det}"
        det_paths.append(path)
        reading = "OK" if state == "dry" else "Critical"
        rack = None if det == UNIT_DETECTOR else det
        name = "Drip tray leak detector" if rack is None else f"Leak detector under rack {rack}"
        location: dict = {"PartLocation": {"ServiceLabel": name}}
        if rack:
            location["Placement"] = {"Rack": rack}
        out[path] = {"@odata.id": path, "@odata.type": "#LeakDetector.v1_1_0.LeakDetector", "Id": det, "Name": name,
                     "LeakDetectorType": "Moisture", "DetectorState": reading, "Status": _status(reading),
                     "Location": location}
        summary.append({"DataSourceUri": path, "DeviceName": name, "DetectorState": reading})
    out[f"{ld}/LeakDetectors"] = _collection(f"{ld}/LeakDetectors", "LeakDetectorCollection", "Leak detectors", det_paths)
    out[ld] = {"@odata.id": ld, "@odata.type": "#LeakDetection.v1_0_1.LeakDetection", "Id": "LeakDetection",
               "Name": f"Leak detection for {cdu_id}", "Status": _status("Critical" if c.leaking else "OK"),
               "LeakDetectorGroups": [{"GroupName": f"Detectors of {cdu_id} and its racks", "Detectors": summary}],
               "LeakDetectors": _ref(f"{ld}/LeakDetectors")}
    return out
