"""Pure report arithmetic on small hand-made readings: sources, certificates, windows, properties."""
from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.loader import load_site_text
from reports.energy import counter_energy, hour_grid
from reports.pue import Certificate, ReportError, compute_report

JAN = calendar.timegm((2026, 1, 1, 0, 0, 0))
FEB = calendar.timegm((2026, 2, 1, 0, 0, 0))
H = 3600


def site(*devs: str):
    return load_site_text("site: {id: s, grid_emission_kgco2e_per_kwh: 0.4}\ndevices:\n"
                          + "".join(f"  - {{{d}, kind: meter, protocol: none}}\n" for d in devs))


def flat(kw: float, base: float = 0.0, start: int = JAN, end: int = FEB):
    return [(float(t), base + kw * (t - start) / H) for t in range(start, end + 1, H)]


def test_diesel_boundary_counts_in_e_dc_but_not_grid_and_certificates_cap_ref():
    s = site("id: g, meter: {role: boundary, source: grid}", "id: d, meter: {role: boundary, source: diesel}",
             "id: i, meter: {role: it, category: 1}", "id: f, meter: {role: fuel}")
    readings = {"g": {"energy_kwh": flat(100)}, "d": {"energy_kwh": flat(10)}, "i": {"energy_kwh": flat(80)},
                "f": {"volume_l": flat(1)}}
    r = compute_report(site_id="s", site_name="s", meters=s.all_devices(), readings=readings, start_s=JAN,
                       end_s=FEB, category=1, default_emission_factor=0.4,
                       certificates=[Certificate("c1", "2026-01", 1e9), Certificate("c2", "2025-12", 5.0)])
    hours = 744
    assert r.total.e_dc_kwh == pytest.approx((100 + 10 + 9.9) * hours)
    assert r.total.grid_kwh == pytest.approx(100 * hours)
    assert r.total.cue == pytest.approx(0.4 * 100 / 80)
    assert r.total.ref == 1.0
    assert any("c2" in w for w in r.warnings) and [c.id for c in r.certificates] == ["c1"]


def test_no_it_meter_of_category_is_an_error():
    s = site("id: g, meter: {role: boundary, source: grid}", "id: i, meter: {role: it, category: 1}")
    with pytest.raises(ReportError, match="category 2"):
        compute_report(site_id="s", site_name="s", meters=s.all_devices(), readings={}, start_s=JAN, end_s=FEB,
                       category=2)


def test_meter_decommissioned_before_the_period_is_not_required():
    s = site("id: g, meter: {role: boundary, source: grid}", "id: i, meter: {role: it, category: 1}",
             "id: old, meter: {role: it, category: 1, decommissioned: '2025-06-01'}")
    r = compute_report(site_id="s", site_name="s", meters=s.all_devices(),
                       readings={"g": {"energy_kwh": flat(50)}, "i": {"energy_kwh": flat(40)}},
                       start_s=JAN, end_s=FEB, category=1)
    assert r.total.pue == pytest.approx(1.25) and "old" not in {m.id for m in r.meters}
    assert r.total.wue is None and r.total.coverage_pct == 100.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 500, allow_nan=False), min_size=2, max_size=80),
       st.sets(st.integers(1, 79), max_size=4), st.floats(0, 1e5))
def test_counter_total_equals_true_energy_whatever_the_resets(steps, resets, base):
    """Resets made right after a reading (the bridging assumption) never change the total.

    Only visible resets are made: a register that restarts above its last value cannot be told from growth.
    """
    rs, c = [(0.0, base)], base
    for k, e in enumerate(steps, 1):
        c = e if k in resets and e < 0.99 * c else c + e
        rs.append((k * H, c))
    me = counter_energy("m", rs, hour_grid(0, len(steps) * H))
    assert me.total == pytest.approx(sum(steps), rel=1e-9, abs=1e-6)
    assert all(v >= -1e-9 for v in me.values)
