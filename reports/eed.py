"""EU Energy Efficiency Directive export: the KPIs of Delegated Regulation (EU) 2024/1364 that the data supports.

The regulation asks operators for energy, water, heat-reuse and renewable
figures (Annex II) and the sustainability indicators PUE, WUE, ERF and REF
(Annex III).  Every indicator is either computed from metered data, with its
basis stated, or listed under ``missing`` with the reason — a figure the
meters cannot support is never estimated or filled in.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field

from reports.pue import PueReport
from reports.render_data import fmt

__all__ = ["EedExport", "EedKpi", "eed_csv", "eed_json", "eed_kpis"]

REGULATION = "Commission Delegated Regulation (EU) 2024/1364, Annexes II and III"


@dataclass(frozen=True)
class EedKpi:
    name: str
    value: float
    unit: str
    basis: str
    decimals: int = 3


@dataclass
class EedExport:
    site_id: str
    site_name: str
    period_start: str
    period_end: str
    category: int
    kpis: list[EedKpi] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_sha256: str = ""


def _full_year(start: str, end: str) -> bool:
    a = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (a.month, a.day, a.hour, b.month, b.day, b.hour) == (1, 1, 0, 1, 1, 0) and b.year == a.year + 1


def eed_kpis(r: PueReport) -> EedExport:
    t = r.total
    out = EedExport(r.site_id, r.site_name, r.period_start, r.period_end, r.category, input_sha256=r.input_sha256)
    add = out.kpis.append
    add(EedKpi("total_energy_consumption", t.e_dc_kwh, "kWh", "E_DC: sum of boundary meters + diesel litres x 9.9 kWh/l"))
    add(EedKpi("it_energy_consumption", t.e_it_kwh, "kWh", f"E_IT: IT meters of measurement category {r.category}"))
    if t.pue is not None:
        add(EedKpi("pue", t.pue, "", "E_DC / E_IT over the period", 4))
    else:
        out.missing["pue"] = "no IT energy measured in the period"
    add(EedKpi("renewable_energy_total", t.renewable_kwh, "kWh", "on-site + PPA meters + guarantees of origin"))
    add(EedKpi("renewable_energy_guarantees_of_origin", t.certificates_kwh, "kWh", "certificates file"))
    add(EedKpi("renewable_energy_ppa", t.renewable_ppa_kwh, "kWh", "meters with source ppa"))
    add(EedKpi("renewable_energy_onsite", t.renewable_onsite_kwh, "kWh", "on-site generation meters"))
    by_source: dict[str, float] = {}
    for m in r.meters:
        if m.role == "renewable" or (m.role == "boundary" and m.source in ("solar", "wind", "ppa")):
            by_source[m.source or "other"] = by_source.get(m.source or "other", 0.0) + m.total
    for src in sorted(by_source):
        add(EedKpi(f"renewable_energy_source_{src}", by_source[src], "kWh", f"meters with source {src}"))
    if t.ref is not None:
        add(EedKpi("ref", t.ref, "", "renewable_energy_total / total_energy_consumption, capped at 1", 4))
    else:
        out.missing["ref"] = "total energy consumption is zero"
    if r.has_water:
        add(EedKpi("total_water_input", t.water_l / 1000.0, "m3", "water meters (volume_l / 1000)"))
        if t.wue is not None:
            add(EedKpi("wue", t.wue, "L/kWh", "water litres / E_IT", 4))
        out.missing["potable_water_input"] = "water meters do not say whether the water is potable"
    else:
        reason = "the site inventory has no water meter (meter.role: water)"
        out.missing["total_water_input"] = reason
        out.missing["potable_water_input"] = reason
        out.missing["wue"] = reason
    heat = "the inventory has no heat-reuse meter; the meter roles carry no exported-heat measurement"
    out.missing["waste_heat_reused"] = heat
    out.missing["average_waste_heat_temperature"] = heat
    out.missing["erf"] = heat
    out.missing["installed_it_power_demand"] = ("needs the rated power of the IT equipment actually installed; "
                                               "rack design capacity in the inventory is not that figure")
    out.missing["set_point_temperatures"] = "cooling set points are not recorded by the meters"
    out.missing["data_traffic"] = "not measured by this system"
    out.missing["data_storage_capacity"] = "not measured by this system"
    out.missing["total_floor_area"] = "not in the site inventory"
    if not _full_year(r.period_start, r.period_end):
        out.notes.append("EED reporting covers a calendar year; this export covers "
                         f"{r.period_start} to {r.period_end} only")
    if t.estimated_share > 0:
        out.notes.append(f"{100 * t.estimated_share:.2f} % of E_DC + E_IT is integrated from power readings (estimate)")
    if t.coverage_pct < 100:
        out.notes.append(f"lowest data coverage of a boundary/IT/fuel meter in a month: {t.coverage_pct:.2f} %")
    return out


def _num(x: float, decimals: int) -> float:
    r = round(x, decimals)
    return 0.0 if r == 0 or not math.isfinite(r) else r


def eed_json(e: EedExport) -> str:
    doc = {
        "regulation": REGULATION, "site": {"id": e.site_id, "name": e.site_name},
        "period": {"start": e.period_start, "end": e.period_end}, "it_measurement_category": e.category,
        "kpis": {k.name: {"value": _num(k.value, k.decimals), "unit": k.unit, "basis": k.basis} for k in e.kpis},
        "missing": dict(sorted(e.missing.items())), "notes": e.notes, "input_sha256": e.input_sha256,
    }
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def eed_csv(e: EedExport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["indicator", "status", "value", "unit", "basis_or_reason"])
    for k in e.kpis:
        w.writerow([k.name, "reported", fmt(k.value, k.decimals), k.unit, k.basis])
    for name, reason in sorted(e.missing.items()):
        w.writerow([name, "missing", "", "", reason])
    return buf.getvalue()
