"""Synthetic meter datasets with known power, and loaders into a real InfluxDB.

Each dataset keeps the *true* energy of every step (``truth``) next to the
line protocol it writes, so tests compute expected KPIs by summing the truth
directly — never through the report code.
"""
from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

H = 3600


def epoch(y: int, m: int, d: int = 1, hh: int = 0) -> int:
    return calendar.timegm((y, m, d, hh, 0, 0))


@dataclass
class Dataset:
    site_yaml: str
    start: int
    end: int
    step_s: int
    lines: list[str] = field(default_factory=list)
    #: truth[name][k] = energy (kWh) or litres in step [start + k·step, start + (k+1)·step)
    truth: dict[str, list[float]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def step_start(self, k: int) -> int:
        return self.start + k * self.step_s

    def steps(self) -> int:
        return (self.end - self.start) // self.step_s

    def sum_in(self, name: str, a: int, b: int) -> float:
        """True total of ``name`` over steps starting in [a, b)."""
        return math.fsum(v for k, v in enumerate(self.truth[name]) if a <= self.step_start(k) < b)

    def write_site(self, path: Path) -> Path:
        path.write_text(self.site_yaml)
        return path

    def load(self, url: str, db: str, batch: int = 5000) -> None:
        http = urllib3.PoolManager()
        for i in range(0, len(self.lines), batch):
            body = "\n".join(self.lines[i:i + batch]).encode()
            r = http.request("POST", f"{url}/write?db={db}&precision=s", body=body, timeout=30.0, retries=False)
            if r.status != 204:
                raise RuntimeError(f"influx write failed: {r.status} {r.data[:300]!r}")


def _line(device: str, fields: str, t: int, phase: str | None = None) -> str:
    tags = f"meter,device={device},site=testsite" + (f",phase={phase}" if phase else "")
    return f"{tags} {fields} {t}"


def _counter(ds: Dataset, device: str, fld: str, increments: list[float], base: float, *,
             keep=lambda k: True, reset_at: int | None = None, wrap: float | None = None,
             first: int = 0, last: int | None = None, phases: bool = False) -> None:
    """Readings at each step boundary k in [first, last] of a counter fed by ``increments``.

    ``reset_at``: the register is cleared right after reading k-1, so reading k shows one step.
    ``wrap``: the register rolls over at this value.
    """
    last = ds.steps() if last is None else last
    c = base
    for k in range(first, last + 1):
        if k > first:
            c += increments[k - 1]
            if reset_at is not None and k == reset_at:
                c = increments[k - 1]
        shown = c % wrap if wrap else c
        if keep(k):
            t = ds.step_start(k)
            ds.lines.append(_line(device, f"{fld}={shown!r}", t))
            if phases:
                for p in ("L1", "L2", "L3"):
                    ds.lines.append(_line(device, f"{fld}={shown * 0.5!r}", t, p))


META = "protocol: none"


def dataset_a() -> Dataset:
    """Jan–Mar 2026 hourly; counter reset on the utility meter, a 30 h gap on an IT meter, a meter swap."""
    start, end = epoch(2026, 1, 1), epoch(2026, 4, 1)
    swap = epoch(2026, 2, 15)
    site = f"""
site: {{id: testsite, name: Test Site A, timezone: UTC, grid_emission_kgco2e_per_kwh: 0.5}}
devices:
  - {{id: meter-a, kind: meter, {META}, meter: {{role: boundary, source: grid}}}}
  - {{id: meter-b-old, kind: meter, {META}, meter: {{role: boundary, source: grid, decommissioned: '2026-02-15'}}}}
  - {{id: meter-b-new, kind: meter, {META}, meter: {{role: boundary, source: grid, commissioned: '2026-02-15'}}}}
  - {{id: meter-it-1, kind: meter, {META}, meter: {{role: it, category: 1}}}}
  - {{id: meter-it-2, kind: meter, {META}, meter: {{role: it, category: 1}}}}
  - {{id: meter-pdu-x, kind: meter, {META}, meter: {{role: it, category: 2}}}}
  - {{id: meter-pv, kind: meter, {META}, meter: {{role: renewable, source: solar}}}}
  - {{id: meter-ppa, kind: meter, {META}, meter: {{role: renewable, source: ppa}}}}
  - {{id: meter-water, kind: meter, {META}, meter: {{role: water}}}}
"""
    ds = Dataset(site, start, end, H)
    n = ds.steps()
    it1 = [300 + 20 * math.sin(2 * math.pi * k / 24) for k in range(n)]
    it2 = [250 + (k % 5) * 3.0 for k in range(n)]
    # cooling overhead grows month by month (spring), so each month's PUE differs
    a = [0.6 * (it1[k] + it2[k]) + 60 + 10 * math.cos(2 * math.pi * k / 168) + 35 * (k // 720) for k in range(n)]
    b = [0.45 * (it1[k] + it2[k]) + 40 for k in range(n)]
    pv = [max(0.0, 400 * math.sin(math.pi * ((k % 24) - 6) / 12)) for k in range(n)]
    ppa = [150 + 50 * ((k // 24) % 3) for k in range(n)]
    water = [1000 + 5.0 * (k % 24) for k in range(n)]
    pdu = [900.0] * n
    ds.truth = {"boundary": [a[k] + b[k] for k in range(n)], "it": [it1[k] + it2[k] for k in range(n)],
                "renewable": [pv[k] + ppa[k] for k in range(n)], "pv": pv, "ppa": ppa, "water": water,
                "b": b, "a": a}
    k_swap = (swap - start) // H
    k_reset = (epoch(2026, 2, 10, 12) - start) // H
    k_gap = (epoch(2026, 1, 20, 5) - start) // H
    ds.extra = {"reset_time": epoch(2026, 2, 10, 12), "gap_hours": 30, "gap_month": "2026-01",
                "swap": swap, "certificates": {"2026-03": 50000.0}}
    _counter(ds, "meter-a", "energy_kwh", a, 123456.0, reset_at=k_reset, phases=True)
    _counter(ds, "meter-b-old", "energy_kwh", b, 20000.0, last=k_swap)
    # the removed meter stayed on the bench and kept counting: must be ignored after its decommission date
    _counter(ds, "meter-b-old", "energy_kwh", [999.0] * n, 20000.0 + sum(b[:k_swap]), first=k_swap)
    _counter(ds, "meter-b-new", "energy_kwh", b, 7.0, first=k_swap)
    _counter(ds, "meter-it-1", "energy_kwh", it1, 5000.0, keep=lambda k: not k_gap <= k < k_gap + 30)
    _counter(ds, "meter-it-2", "energy_kwh", it2, 800.0, phases=True)
    _counter(ds, "meter-pdu-x", "energy_kwh", pdu, 0.0)
    _counter(ds, "meter-pv", "energy_kwh", pv, 42.0)
    _counter(ds, "meter-ppa", "energy_kwh", ppa, 10.0)
    _counter(ds, "meter-water", "volume_l", water, 1e6)
    return ds


WRAP_32_KWH = 2 ** 32 / 1000  # a 32-bit Wh register read as kWh


def dataset_b() -> Dataset:
    """Jan–Feb 2026 every 10 min; category 2 IT, 32-bit wrap, diesel fuel, power-integrated PDU, no water."""
    start, end = epoch(2026, 1, 1), epoch(2026, 3, 1)
    step = 600
    site = f"""
site: {{id: heldout, name: Held-out B, grid_emission_kgco2e_per_kwh: 0.3}}
devices:
  - {{id: util-1, kind: meter, {META}, meter: {{role: boundary, source: grid}}}}
  - {{id: diesel-1, kind: meter, {META}, meter: {{role: fuel}}}}
  - {{id: ups-out, kind: meter, {META}, meter: {{role: it, category: 1}}}}
  - {{id: pdu-1, kind: meter, {META}, meter: {{role: it, category: 2}}}}
  - {{id: pdu-2, kind: meter, {META}, meter: {{role: it, category: 2}}}}
  - {{id: wind-ppa, kind: meter, {META}, meter: {{role: renewable, source: ppa}}}}
"""
    ds = Dataset(site, start, end, step)
    n = ds.steps()
    frac = step / H
    grid_kw = [500 + 30 * math.sin(2 * math.pi * k / 144) for k in range(n)]
    pdu1_kw = [220 + (k % 7) for k in range(n)]
    ups_kw = [600.0] * n
    ppa_kw = [100 + 40 * math.cos(2 * math.pi * k / 1000) for k in range(n)]
    # diesel: 2 test runs in January of 12 steps each, 25 L per step
    fuel = [25.0 if (epoch(2026, 1, 8, 10) <= start + k * step < epoch(2026, 1, 8, 12)
                     or epoch(2026, 1, 22, 10) <= start + k * step < epoch(2026, 1, 22, 12)) else 0.0
            for k in range(n)]
    p0, slope = 50_000.0, 0.01          # pdu-2 power_w = p0 + slope·(t - start), integrated by the report
    ds.truth = {"grid": [p * frac for p in grid_kw], "pdu1": [p * frac for p in pdu1_kw],
                "ppa": [p * frac for p in ppa_kw], "fuel_l": fuel}
    ds.extra = {"pdu2_p0": p0, "pdu2_slope": slope, "factors": {"2026-01": 0.7, "2026-02": 0.4},
                "wrap_max": WRAP_32_KWH}
    _counter(ds, "util-1", "energy_kwh", ds.truth["grid"], WRAP_32_KWH - 3000.0, wrap=WRAP_32_KWH, phases=True)
    _counter(ds, "diesel-1", "volume_l", fuel, 12345.0)
    _counter(ds, "ups-out", "energy_kwh", [p * frac for p in ups_kw], 0.0)
    _counter(ds, "pdu-1", "energy_kwh", ds.truth["pdu1"], 777.0)
    _counter(ds, "wind-ppa", "energy_kwh", ds.truth["ppa"], 5.0)
    for k in range(n + 1):
        t = ds.step_start(k)
        ds.lines.append(_line("pdu-2", f"power_w={p0 + slope * (t - start)!r}", t))
    return ds


def linear_power_kwh(p0: float, slope: float, t0: float, a: float, b: float) -> float:
    """∫_a^b (p0 + slope·(t - t0)) dt in kWh — closed form."""
    return (p0 * (b - a) + slope * ((b - t0) ** 2 - (a - t0) ** 2) / 2) / 3.6e6
