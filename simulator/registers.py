"""Model state -> Modbus registers, laid out by the same vendor register maps.

The twin emulates each device per the register map its inventory profile
names (``collectors/modbus/profiles``: address, type, word order, scale and
offset from the vendor's manual): the model's engineering value is unscaled
(offset, scale, °F where the point converts), clamped to the register type's
range, and laid out with :func:`collectors.modbus.orders.encode`, the inverse
of the collector's word-order decoder that lives beside it (so the twin cannot
catch a word-order bug in that module: the register values written from the vendors' manuals in
``tests/modbus/testcases`` do).  A point the model has no quantity for reads 0,
and so do reserved registers between points, as on the real meters.
"""
from __future__ import annotations

from collectors.modbus.orders import encode
from collectors.modbus.profile import Point, Profile, load_profile
from inventory.model import Device
from simulator.model import PF, VOLTAGE, DeviceState
from simulator.modbus_server import UnitImage

__all__ = ["quantities", "unit_image"]

_RANGES = {"int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1),
           "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1),
           "bitfield": (0, 2**16 - 1), "bitfield32": (0, 2**32 - 1)}


def quantities(dev: Device, s: DeviceState) -> dict[str, object]:
    """Engineering values by ``field`` or ``field|tag=value``, from the model state."""
    q: dict[str, object] = {}
    v = s.values
    if dev.kind == "meter":
        p = s.power_w
        q.update({"power_w": p, "apparent_power_va": p / PF, "reactive_power_var": p * 0.2, "power_factor": PF,
                  "frequency_hz": 50.0, "energy_kwh": s.energy_kwh, "energy_export_kwh": 0.0,
                  "voltage_avg_v": VOLTAGE, "current_avg_a": p / 3 / VOLTAGE / PF,
                  "volume_l": v.get("volume_l", 0.0), "flow_lpm": v.get("flow_lpm", 0.0)})
        for ph in ("L1", "L2", "L3"):
            q.update({f"voltage_v|phase={ph}": VOLTAGE, f"current_a|phase={ph}": p / 3 / VOLTAGE / PF,
                      f"power_w|phase={ph}": p / 3, f"power_factor|phase={ph}": PF,
                      f"apparent_power_va|phase={ph}": p / 3 / PF, f"energy_kwh|phase={ph}": s.energy_kwh / 3})
    elif dev.kind == "chiller":
        running = bool(v.get("running", True))
        q.update({"temp_c|sensor=chw_supply": v.get("supply_c", 7.0), "temp_c|sensor=chw_return": v.get("return_c", 12.0),
                  "temp_c|sensor=cw_supply": v.get("cw_supply_c", 25.0), "temp_c|sensor=cw_return": v.get("cw_return_c", 30.0),
                  "temp_c|sensor=evap_refrigerant_c1": v.get("supply_c", 7.0) - 2.0,
                  "temp_c|sensor=cond_refrigerant_c1": v.get("cw_return_c", 30.0) + 3.0,
                  "chw_setpoint_c": 7.0, "capacity_pct": min(100.0, v.get("cooling_w", 0.0) / ((dev.rated_kw or 1000) * 10.0)),
                  "current_limit_pct": 100.0, "running": running, "power_w": s.power_w,
                  "cooling_kw": v.get("cooling_w", 0.0) / 1000.0, "cop": v.get("cop", 0.0)})
    elif dev.kind == "cdu":
        pri, sec = "|loop=1|side=primary", "|loop=1|side=secondary"
        q.update({f"supply_temp_c{pri}": v.get("primary_supply_c", 18.0),
                  f"return_temp_c{pri}": v.get("primary_return_c", 26.0),
                  f"supply_temp_c{sec}": v.get("secondary_supply_c", 32.0),
                  f"return_temp_c{sec}": v.get("secondary_return_c", 42.0),
                  f"flow_lpm{pri}": v.get("primary_flow_lpm", 0.0), f"flow_lpm{sec}": v.get("flow_lpm", 0.0),
                  f"differential_pressure_kpa{sec}": v.get("dp_kpa", 0.0),
                  f"supply_pressure_kpa{sec}": 210.0, f"return_pressure_kpa{sec}": 210.0 - v.get("dp_kpa", 0.0),
                  "heat_removed_w": v.get("heat_w", 0.0),
                  "speed_rpm|pump=1": v.get("pump_rpm", 0.0), "speed_rpm|pump=2": 0.0,
                  "speed_pct|pump=1": min(100.0, v.get("pump_rpm", 0.0) / 36.0), "speed_pct|pump=2": 0.0,
                  "state|pump=1": 1, "state|pump=2": 2, "state": 2 if v.get("leak") else 1,
                  "state|detector=1": 1 if v.get("leak") else 0,
                  "level_pct|reservoir=1": 90.0, "differential_pressure_kpa|filter=1": 3.0, "state|filter=1": 0,
                  "bits": set()})
    elif dev.kind in ("crah", "crac"):
        q.update({"cooling_output_w": v.get("heat_w", 0.0), "cooling_demand_w": v.get("heat_w", 0.0),
                  "setpoint_temp_c|sensor=cool": 24.0, "setpoint_temp_c|sensor=supply_air": 22.0,
                  "temp_c|sensor=supply_air": v.get("supply_air_c", 22.0), "temp_c|sensor=return_air": v.get("return_air_c", 30.0),
                  "fan_speed_pct": v.get("fan_pct", 0.0), "alarm_state": 1})
    return q


def _value(point: Point, q: dict[str, object]):
    key = point.field + "".join(f"|{k}={val}" for k, val in sorted(point.tags.items()))
    if point.bits:
        active = q.get("bits", set())
        return sum(1 << b for b, name in point.bits.items() if name in active)
    for k in (key, point.field):
        if k in q:
            return q[k]
    return 0


def _raw(point: Point, value):
    if point.type == "bool":
        return 1 if value else 0
    if point.type.startswith("string("):
        return str(value)
    if isinstance(value, bool):
        value = int(value)
    if point.convert == "f_to_c":
        value = value * 9.0 / 5.0 + 32.0
    raw = (float(value) - point.offset) / point.scale
    if point.type.startswith("float"):
        return raw
    lo, hi = _RANGES.get(point.type, (-2**63, 2**63 - 1))
    return int(min(hi, max(lo, round(raw))))


def unit_image(dev: Device, s: DeviceState, profile: Profile | None = None) -> UnitImage:
    profile = profile or load_profile(dev.profile)
    q = quantities(dev, s)
    img = UnitImage()
    for point in profile.points:
        raw = _raw(point, _value(point, q))
        table = img.tables[point.function]
        if point.function in ("coil", "discrete"):
            table[point.address] = int(raw)
            continue
        kind = "uint16" if point.type == "bool" else point.type
        for i, reg in enumerate(encode(raw, kind, point.order)):
            table[point.address + i] = reg
    for name in ("holding", "input"):
        table = img.tables[name]
        if table:  # reserved registers between points read as 0, as on the real meters
            for a in range(min(table), max(table) + 1):
                table.setdefault(a, 0)
    return img
