"""PUE, REF, CUE, WUE and hourly renewable matching from meter readings: pure.

Definitions (see reports/README.md for the worked methodology):

* E_DC  = Σ boundary meters' energy + Σ fuel meters' litres × 9.9 kWh/l
* E_IT  = Σ IT meters of the chosen category (1 UPS output, 2 PDU output, 3 IT input)
* PUE   = E_DC / E_IT                                  (ISO/IEC 30134-2, energy-based)
* REF   = min(1, (on-site + PPA + certificates) / E_DC) (ISO/IEC 30134-3)
* CUE   = Σ_month grid kWh × emission factor / E_IT     (kgCO2e/kWh)
* WUE   = water litres / E_IT                           (L/kWh)

Why monthly and hourly at once: energy is computed per UTC hour (the counter
differences telescope, so hours sum exactly to months); months are what an
auditor reads, hours are what renewable *matching* needs (a solar kWh at noon
does not cover a kWh consumed at midnight).

The result is a plain dataclass tree so renderers and tests need nothing else.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from inventory.model import Device
from reports.energy import Bridge, MeterEnergy, Reading, counter_energy, coverage, hour_grid, iso_utc, power_energy

__all__ = [
    "Certificate", "DIESEL_KWH_PER_L", "MeterResult", "PeriodKpis", "PueReport", "ReportError",
    "ENERGY_ROLES", "compute_report", "meter_window", "report_meters",
]

#: Lower heating value of diesel fuel, kWh per litre (the figure the EED guidance uses).
DIESEL_KWH_PER_L = 9.9
ENERGY_ROLES = ("boundary", "it", "renewable")
VOLUME_ROLES = ("water", "fuel")
ONSITE_SOURCES = ("solar", "wind", "other")
RENEWABLE_SOURCES = ("solar", "wind", "ppa")


class ReportError(Exception):
    """A report cannot be made as asked (bad inputs, missing meters); the message says why."""


@dataclass(frozen=True)
class Certificate:
    """A renewable energy certificate (guarantee of origin) for energy consumed in a month."""

    id: str
    month: str          # "YYYY-MM"
    kwh: float
    source: str = "other"


@dataclass
class MeterResult:
    id: str
    role: str
    source: str | None
    category: int | None
    field: str
    unit: str
    method: str                          # counter | power
    window_start: str | None
    window_end: str | None
    readings: int
    total: float
    estimated: float
    coverage_pct: float
    longest_gap_h: float
    coverage_by_month: dict[str, float] = field(default_factory=dict)
    bridges: int = 0


@dataclass
class PeriodKpis:
    label: str                           # "YYYY-MM" or "total"
    start: str
    end: str
    e_dc_kwh: float = 0.0
    e_it_kwh: float = 0.0
    boundary_kwh: float = 0.0
    grid_kwh: float = 0.0
    fuel_l: float = 0.0
    fuel_kwh: float = 0.0
    renewable_onsite_kwh: float = 0.0
    renewable_ppa_kwh: float = 0.0
    certificates_kwh: float = 0.0
    renewable_kwh: float = 0.0
    water_l: float = 0.0
    co2_kg: float | None = None
    emission_factor: float | None = None
    hourly_matched_kwh: float = 0.0
    estimated_kwh: float = 0.0
    pue: float | None = None
    ref: float | None = None
    cue: float | None = None
    wue: float | None = None
    hourly_match_pct: float | None = None
    estimated_share: float = 0.0
    coverage_pct: float = 0.0            # worst coverage among the meters PUE depends on


@dataclass
class PueReport:
    site_id: str
    site_name: str
    period_start: str
    period_end: str
    category: int
    months: list[PeriodKpis]
    total: PeriodKpis
    meters: list[MeterResult]
    bridges: list[Bridge]
    certificates: list[Certificate]
    warnings: list[str] = field(default_factory=list)
    has_water: bool = False
    queries: list[str] = field(default_factory=list)
    input_sha256: str = ""
    source: str = ""          # where the readings came from: raw or a rollup tier (reports.build.choose_source)


# -- helpers ---------------------------------------------------------------------------
def _month(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m")


def _day_epoch(d: dt.date) -> float:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()


def installed(dev: Device) -> tuple[float, float]:
    """When the meter was installed: commissioned..decommissioned (UTC midnights), open-ended where not given."""
    spec = dev.meter
    lo = _day_epoch(spec.commissioned) if spec is not None and spec.commissioned else -math.inf
    hi = _day_epoch(spec.decommissioned) if spec is not None and spec.decommissioned else math.inf
    return lo, hi


def meter_window(dev: Device, start_s: float, end_s: float) -> tuple[float, float] | None:
    """The part of [start, end) in which the meter was installed."""
    lo, hi = installed(dev)
    lo, hi = max(lo, start_s), min(hi, end_s)
    return (lo, hi) if lo < hi else None


def report_meters(devices: Sequence[Device], category: int) -> list[Device]:
    """Meters the report reads: boundary, fuel, water, renewable, and IT meters of ``category``."""
    out = []
    for d in devices:
        m = d.meter
        if m is None:
            continue
        if m.role in ("boundary", "fuel", "water", "renewable") or (m.role == "it" and m.category == category):
            out.append(d)
    return sorted(out, key=lambda d: d.id)


def field_for(dev: Device, integrate_power: frozenset[str] | set[str]) -> str:
    if dev.meter and dev.meter.role in VOLUME_ROLES:
        return "volume_l"
    return "power_w" if dev.id in integrate_power else "energy_kwh"


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


# -- the computation -------------------------------------------------------------------
def compute_report(*, site_id: str, site_name: str, meters: Sequence[Device],
                   readings: Mapping[str, Mapping[str, Sequence[Reading]]],
                   start_s: float, end_s: float, category: int,
                   integrate_power: frozenset[str] | set[str] = frozenset(),
                   emission_factors: Mapping[str, float] | None = None,
                   default_emission_factor: float | None = None,
                   certificates: Sequence[Certificate] = (),
                   wrap_max: Mapping[str, float] | None = None,
                   max_power_gap_s: float = 900.0) -> PueReport:
    """Compute the report from raw readings (``readings[meter_id][field] -> [(t, value)]``).

    ``meters`` is every meter device of the site; the function picks those it
    needs and raises :class:`ReportError` when there is no boundary meter or no
    IT meter of ``category`` active in the period.
    """
    if category not in (1, 2, 3):
        raise ReportError(f"unknown category {category!r}: use 1 (UPS output), 2 (PDU output) or 3 (IT input)")
    if end_s <= start_s:
        raise ReportError("the period is empty: --to must be after --from")
    wanted = report_meters(meters, category)
    warnings: list[str] = []
    by_role: dict[str, list[Device]] = {}
    windows: dict[str, tuple[float, float]] = {}
    for d in wanted:
        w = meter_window(d, start_s, end_s)
        if w is None:
            continue
        windows[d.id] = w
        by_role.setdefault(d.meter.role, []).append(d)  # type: ignore[union-attr]
    if not by_role.get("boundary"):
        raise ReportError("the site has no boundary meter (meter.role: boundary) active in the period; "
                          "E_DC, and so PUE, cannot be computed")
    if not by_role.get("it"):
        raise ReportError(f"the site has no IT meter of category {category} (meter.role: it, category: {category}) "
                          "active in the period; E_IT cannot be computed")
    unknown = sorted(set(integrate_power) - {d.id for d in wanted})
    if unknown:
        raise ReportError("--integrate-power names meters the report does not use: " + ", ".join(unknown))

    hours = hour_grid(start_s, end_s)
    hour_edges = np.asarray(hours, dtype=float)    # converted once for every meter's vector maths
    month_of_hour = [_month(s) for s, _ in hours]
    months = sorted(set(month_of_hour))
    hours_of_month = {m: [i for i, mo in enumerate(month_of_hour) if mo == m] for m in months}
    energies: dict[str, MeterEnergy] = {}
    results: list[MeterResult] = []
    bridges: list[Bridge] = []
    for d in sorted((d for ds in by_role.values() for d in ds), key=lambda d: d.id):
        fld = field_for(d, integrate_power)
        rs = (readings.get(d.id) or {}).get(fld, [])
        # readings just outside the period (but inside the installed span) anchor the counter at its edges
        if fld == "power_w":
            me = power_energy(d.id, rs, hours, window=installed(d), max_gap_s=max_power_gap_s)
        else:
            me = counter_energy(d.id, rs, hour_edges, window=installed(d), field_name=fld,
                                known_max=(wrap_max or {}).get(d.id))
        energies[d.id] = me
        bridges.extend(me.bridges)
        cov = coverage(rs[:, 0] if isinstance(rs, np.ndarray) else [t for t, _ in rs], hour_edges,
                       window=windows[d.id])
        by_month: dict[str, float] = {}
        for m in months:
            act = [i for i in hours_of_month[m] if me.active[i]]
            if act:
                by_month[m] = 100.0 * sum(me.has_data[i] for i in act) / len(act)
        if me.readings == 0:
            warnings.append(f"meter {d.id}: no {fld} readings in its active window {iso_utc(windows[d.id][0])}"
                            f"..{iso_utc(windows[d.id][1])}")
        spec = d.meter
        results.append(MeterResult(
            id=d.id, role=spec.role, source=spec.source, category=spec.category, field=fld,
            unit="L" if fld == "volume_l" else "kWh", method=me.method,
            window_start=iso_utc(windows[d.id][0]), window_end=iso_utc(windows[d.id][1]), readings=me.readings,
            total=me.total, estimated=me.estimated, coverage_pct=cov.pct, longest_gap_h=cov.longest_gap_s / 3600,
            coverage_by_month=by_month, bridges=len(me.bridges)))

    def hourly(role: str, pred=lambda d: True) -> list[float]:
        out = [0.0] * len(hours)
        for d in by_role.get(role, []):
            if pred(d):
                for i, v in enumerate(energies[d.id].values):
                    out[i] += v
        return out

    boundary_h = hourly("boundary")
    grid_h = hourly("boundary", lambda d: d.meter.source in (None, "grid"))
    fuel_l_h = hourly("fuel")
    it_h = hourly("it")
    water_h = hourly("water")
    onsite_h = [a + b for a, b in zip(hourly("renewable", lambda d: d.meter.source in ONSITE_SOURCES or d.meter.source is None),
                                      hourly("boundary", lambda d: d.meter.source in ("solar", "wind")))]
    ppa_h = [a + b for a, b in zip(hourly("renewable", lambda d: d.meter.source == "ppa"),
                                   hourly("boundary", lambda d: d.meter.source == "ppa"))]
    est_h = [0.0] * len(hours)
    for d in by_role.get("boundary", []) + by_role.get("it", []):
        if energies[d.id].method == "power":
            for i, v in enumerate(energies[d.id].values):
                est_h[i] += v
    has_water = bool(by_role.get("water"))

    certs_in = [c for c in certificates if c.month in months]
    for c in certificates:
        if c.month not in months:
            warnings.append(f"certificate {c.id} for {c.month} lies outside the period; not counted")
    factors = dict(emission_factors or {})

    def kpis(label: str, idx: list[int], start: float, end: float) -> PeriodKpis:
        k = PeriodKpis(label, iso_utc(start), iso_utc(end))
        s = lambda xs: math.fsum(xs[i] for i in idx)  # noqa: E731
        k.boundary_kwh = s(boundary_h)
        k.grid_kwh = s(grid_h)
        k.fuel_l = s(fuel_l_h)
        k.fuel_kwh = k.fuel_l * DIESEL_KWH_PER_L
        k.e_dc_kwh = k.boundary_kwh + k.fuel_kwh
        k.e_it_kwh = s(it_h)
        k.water_l = s(water_h)
        k.renewable_onsite_kwh = s(onsite_h)
        k.renewable_ppa_kwh = s(ppa_h)
        mos = sorted({month_of_hour[i] for i in idx})
        k.certificates_kwh = math.fsum(c.kwh for c in certs_in if c.month in mos)
        k.renewable_kwh = k.renewable_onsite_kwh + k.renewable_ppa_kwh + k.certificates_kwh
        k.hourly_matched_kwh = math.fsum(min(onsite_h[i] + ppa_h[i], boundary_h[i] + fuel_l_h[i] * DIESEL_KWH_PER_L)
                                         for i in idx)
        k.estimated_kwh = s(est_h)
        k.pue = _div(k.e_dc_kwh, k.e_it_kwh)
        ref = _div(k.renewable_kwh, k.e_dc_kwh)
        k.ref = min(1.0, ref) if ref is not None else None
        k.wue = _div(k.water_l, k.e_it_kwh) if has_water else None
        k.hourly_match_pct = (100.0 * k.hourly_matched_kwh / k.e_dc_kwh) if k.e_dc_kwh > 0 else None
        k.estimated_share = k.estimated_kwh / (k.e_dc_kwh + k.e_it_kwh) if (k.e_dc_kwh + k.e_it_kwh) > 0 else 0.0
        co2, ok = 0.0, True
        for m in mos:
            f = factors.get(m, default_emission_factor)
            if f is None:
                ok = False
                break
            co2 += f * math.fsum(grid_h[i] for i in idx if month_of_hour[i] == m)
        if ok:
            k.co2_kg = co2
            k.cue = _div(co2, k.e_it_kwh)
            k.emission_factor = _div(co2, k.grid_kwh) if len(mos) > 1 else factors.get(mos[0], default_emission_factor)
        covs = [r.coverage_by_month[m] for r in results if r.role in ("boundary", "it", "fuel")
                for m in mos if m in r.coverage_by_month]
        k.coverage_pct = min(covs) if covs else 0.0
        return k

    month_kpis = []
    for m in months:
        idx = [i for i, mo in enumerate(month_of_hour) if mo == m]
        month_kpis.append(kpis(m, idx, hours[idx[0]][0], hours[idx[-1]][1]))
    total = kpis("total", list(range(len(hours))), start_s, end_s)
    for k in month_kpis:
        if k.e_it_kwh <= 0:
            warnings.append(f"{k.label}: no IT energy measured; PUE undefined for that month")
    return PueReport(site_id=site_id, site_name=site_name, period_start=iso_utc(start_s), period_end=iso_utc(end_s),
                     category=category, months=month_kpis, total=total, meters=results,
                     bridges=sorted(bridges, key=lambda b: (b.time_s, b.meter)), certificates=list(certs_in),
                     warnings=warnings, has_water=has_water)
