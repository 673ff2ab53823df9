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
from contract import cooling as cc
from simulator.cooling import PRIMARY_SUPPLY_KPA, CduCooling, loop_low_flow, loop_warm, primary_dp_kpa
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
    elif dev.kind == "cdu" and s.cooling is not None:
        q.update(_cdu_quantities(s.cooling))
    elif dev.kind in ("crah", "crac"):
        q.update({"cooling_output_w": v.get("heat_w", 0.0), "cooling_demand_w": v.get("heat_w", 0.0),
                  "setpoint_temp_c|sensor=cool": 24.0, "setpoint_temp_c|sensor=supply_air": 22.0,
                  "temp_c|sensor=supply_air": v.get("supply_air_c", 22.0), "temp_c|sensor=return_air": v.get("return_air_c", 30.0),
                  "fan_speed_pct": v.get("fan_pct", 0.0), "alarm_state": 1})
    return q


#: raw words of the template map's enums (collectors/modbus/profiles/template_cdu.yaml)
_PUMP_RAW = {"off": 0, "running": 1, "standby": 2, "fault": 3}
_UNIT_RAW = {"off": 0, "running": 1, "alarm": 2, "maintenance": 3}
_LEAK_RAW = {"dry": 0, "leak": 1, "fault": 2}


def _cdu_quantities(c: CduCooling) -> dict[str, object]:
    """A CDU's loops, pumps, filter, reservoir and detectors under the ``cdu`` measurement's names."""
    q: dict[str, object] = {}

    def put(name: str, value: object, **tags: str) -> None:
        q[name + "".join(f"|{k}={v}" for k, v in sorted(tags.items()))] = value

    pri = {cc.LOOP: cc.DEFAULT_LOOP, cc.SIDE: cc.PRIMARY}
    put(cc.SUPPLY_TEMP_C, c.primary_supply_c, **pri)
    put(cc.RETURN_TEMP_C, c.primary_return_c, **pri)
    put(cc.FLOW_LPM, c.primary_flow_lpm, **pri)
    put(cc.DIFFERENTIAL_PRESSURE_KPA, primary_dp_kpa(c), **pri)
    put(cc.SUPPLY_PRESSURE_KPA, PRIMARY_SUPPLY_KPA, **pri)
    put(cc.RETURN_PRESSURE_KPA, PRIMARY_SUPPLY_KPA - primary_dp_kpa(c), **pri)
    put(cc.HEAT_REMOVED_W, c.heat_w, **pri)
    bits: set[str] = set()
    for l in c.loops.values():
        sec = {cc.LOOP: l.spec.id, cc.SIDE: cc.SECONDARY}
        put(cc.SUPPLY_TEMP_C, l.supply_c, **sec)
        put(cc.RETURN_TEMP_C, l.return_c, **sec)
        put(cc.FLOW_LPM, l.flow_lpm, **sec)
        put(cc.DIFFERENTIAL_PRESSURE_KPA, l.dp_kpa, **sec)
        put(cc.SUPPLY_PRESSURE_KPA, l.supply_kpa, **sec)
        put(cc.RETURN_PRESSURE_KPA, l.return_kpa, **sec)
        put(cc.HEAT_REMOVED_W, l.heat_w, **sec)
        if loop_warm(l):
            bits.add("high_supply_temp")
        if loop_low_flow(l):
            bits.add("low_flow")
    q[cc.HEAT_REMOVED_W] = c.heat_w
    q[cc.COOLING_CAPACITY_W] = sum(l.spec.rated_w for l in c.loops.values())
    q[cc.STATE] = _UNIT_RAW[c.unit_state]
    for p in c.pumps:
        put(cc.SPEED_RPM, p.rpm, pump=p.id)
        put(cc.SPEED_PCT, p.speed_pct, pump=p.id)
        put(cc.STATE, _PUMP_RAW[p.state], pump=p.id)
        if p.state == "fault":
            bits.add(f"pump{p.id}_fault")
    # a map with one leak input (a rope through every rack) sees any detector's leak
    put(cc.STATE, _LEAK_RAW["leak" if c.leaking else "dry"], detector="1")
    for d, state in c.detectors.items():
        if d != "1":
            put(cc.STATE, _LEAK_RAW[state], detector=d)
    put(cc.LEVEL_PCT, c.reservoir_pct, reservoir="1")
    put(cc.STATE, 0 if c.reservoir_state == "ok" else 1, reservoir="1")
    put(cc.DIFFERENTIAL_PRESSURE_KPA, c.filter_dp_kpa, filter="1")
    put(cc.STATE, 0 if c.filter_state == "ok" else 1, filter="1")
    put(cc.SERVICE_HOURS, c.filter_hours, filter="1")
    if c.reservoir_state != "ok":
        bits.add("low_coolant_level")
    if c.filter_state != "ok":
        bits.add("filter_clogged")
    if c.leaking:
        bits.add("leak_detected")
    q["bits"] = bits
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
