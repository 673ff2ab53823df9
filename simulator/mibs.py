"""Model state -> the OIDs a real device of that kind answers.

PDUs answer APC PowerNet-MIB rPDU2 (as an AP8959-class PDU, sysObjectID
1.3.6.1.4.1.318.1.3.4.6); UPSes answer the standard UPS-MIB (RFC 1628) with
an MGE/Eaton sysObjectID (1.3.6.1.4.1.705.1.2).  Scales follow the MIBs:
rPDU2 power in hundredths of kW, energy in tenths of kWh, current in tenths
of amps; UPS-MIB currents and frequency in tenths.
"""
from __future__ import annotations

from simulator.model import PF, VOLTAGE, DeviceState
from collectors.snmp.ber import INTEGER, OCTETS, OID, TIMETICKS, parse_oid

__all__ = ["pdu_oids", "ups_oids", "APC_RPDU2_SYSOID", "UPS_SYSOID"]

APC_RPDU2_SYSOID = "1.3.6.1.4.1.318.1.3.4.6"
UPS_SYSOID = "1.3.6.1.4.1.705.1.2"
_RPDU2 = (1, 3, 6, 1, 4, 1, 318, 1, 1, 26)
_UPS = (1, 3, 6, 1, 2, 1, 33, 1)
OUTLETS = 24


def _system(name: str, descr: str, sysoid: str, uptime_s: float) -> dict:
    return {
        (1, 3, 6, 1, 2, 1, 1, 1, 0): (OCTETS, descr),
        (1, 3, 6, 1, 2, 1, 1, 2, 0): (OID, parse_oid(sysoid)),
        (1, 3, 6, 1, 2, 1, 1, 3, 0): (TIMETICKS, int(uptime_s * 100)),
        (1, 3, 6, 1, 2, 1, 1, 5, 0): (OCTETS, name),
    }


def _load_state(amps: float, rated_a: float) -> int:
    frac = amps / rated_a if rated_a else 0
    return 1 if frac < 0.05 else 2 if frac < 0.8 else 3 if frac < 1.0 else 4


def pdu_oids(name: str, s: DeviceState, rated_a: float, uptime_s: float) -> dict:
    v = _system(name, "APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.9.6) AP8959EU3 (twin)", APC_RPDU2_SYSOID, uptime_s)
    kw_hundredths = round(s.power_w / 10.0)
    total_amps = s.power_w / (VOLTAGE * PF)
    dev = _RPDU2 + (4, 3, 1)
    v[dev + (1, 1)] = (INTEGER, 1)
    v[dev + (4, 1)] = (INTEGER, _load_state(total_amps / 3, rated_a))
    v[dev + (5, 1)] = (INTEGER, kw_hundredths)
    v[dev + (9, 1)] = (INTEGER, int(s.energy_kwh * 10) & 0x7FFFFFFF)
    v[dev + (12, 1)] = (INTEGER, 1)
    v[dev + (16, 1)] = (INTEGER, round(s.power_w / PF / 10.0))
    v[dev + (17, 1)] = (INTEGER, round(PF * 100))
    phases = s.values.get("phase_w", [0.0, 0.0, 0.0])
    ph = _RPDU2 + (6, 3, 1)
    for i, w in enumerate(phases, start=1):
        amps = w / (VOLTAGE * PF)
        v[ph + (1, i)] = (INTEGER, i)
        v[ph + (2, i)] = (INTEGER, 1)
        v[ph + (3, i)] = (INTEGER, i)
        v[ph + (4, i)] = (INTEGER, _load_state(amps, rated_a))
        v[ph + (5, i)] = (INTEGER, round(amps * 10))
        v[ph + (6, i)] = (INTEGER, round(VOLTAGE))
        v[ph + (7, i)] = (INTEGER, round(w / 10.0))
        v[ph + (8, i)] = (INTEGER, round(w / PF / 10.0))
        v[ph + (9, i)] = (INTEGER, round(PF * 100))
    out = _RPDU2 + (9, 4, 3, 1)
    for n in range(1, OUTLETS + 1):
        w = s.outlets.get(n, 0.0)
        v[out + (1, n)] = (INTEGER, n)
        v[out + (2, n)] = (INTEGER, 1)
        v[out + (3, n)] = (INTEGER, n)
        v[out + (6, n)] = (INTEGER, round(w / (VOLTAGE * PF) * 10))
        v[out + (7, n)] = (INTEGER, round(w))
        v[out + (11, n)] = (INTEGER, int(s.outlet_energy.get(n, 0.0) * 10) & 0x7FFFFFFF)
    env = _RPDU2 + (10, 2, 2, 1)
    temp = 24.0 + 0.00015 * s.power_w
    v[env + (1, 1)] = (INTEGER, 1)
    v[env + (2, 1)] = (INTEGER, 1)
    v[env + (3, 1)] = (OCTETS, "Rack inlet")
    v[env + (4, 1)] = (INTEGER, 1)
    v[env + (8, 1)] = (INTEGER, round(temp * 10))
    v[env + (10, 1)] = (INTEGER, 45)
    return v


def ups_oids(name: str, s: DeviceState, uptime_s: float) -> dict:
    v = _system(name, "Eaton 93PM UPS (twin)", UPS_SYSOID, uptime_s)
    on_batt = s.input_w == 0.0 and s.power_w > 0
    charge = s.values.get("charge_pct", 100.0)
    v[_UPS + (2, 1, 0)] = (INTEGER, 3 if charge < 25 else 2)
    v[_UPS + (2, 2, 0)] = (INTEGER, int(s.values.get("on_battery_s", 0.0)))
    v[_UPS + (2, 3, 0)] = (INTEGER, int(s.values.get("runtime_s", 600.0) // 60))
    v[_UPS + (2, 4, 0)] = (INTEGER, round(charge))
    v[_UPS + (2, 5, 0)] = (INTEGER, 5400)
    v[_UPS + (2, 6, 0)] = (INTEGER, round(s.power_w / 540.0 * 10) if on_batt else 0)
    v[_UPS + (2, 7, 0)] = (INTEGER, 25)
    v[_UPS + (3, 2, 0)] = (INTEGER, 3)
    v[_UPS + (4, 1, 0)] = (INTEGER, 5 if on_batt else 3)
    v[_UPS + (4, 2, 0)] = (INTEGER, 500)
    v[_UPS + (4, 3, 0)] = (INTEGER, 3)
    for p in (1, 2, 3):
        win, wout = s.input_w / 3, s.power_w / 3
        v[_UPS + (3, 3, 1, 1, p)] = (INTEGER, p)
        v[_UPS + (3, 3, 1, 2, p)] = (INTEGER, 500 if not on_batt else 0)
        v[_UPS + (3, 3, 1, 3, p)] = (INTEGER, 230 if not on_batt else 0)
        v[_UPS + (3, 3, 1, 4, p)] = (INTEGER, round(win / 230 * 10))
        v[_UPS + (3, 3, 1, 5, p)] = (INTEGER, round(win))
        v[_UPS + (4, 4, 1, 1, p)] = (INTEGER, p)
        v[_UPS + (4, 4, 1, 2, p)] = (INTEGER, 230)
        v[_UPS + (4, 4, 1, 3, p)] = (INTEGER, round(wout / 230 * 10))
        v[_UPS + (4, 4, 1, 4, p)] = (INTEGER, round(wout))
        v[_UPS + (4, 4, 1, 5, p)] = (INTEGER, round(s.values.get("load_pct", 0.0)))
    return v

