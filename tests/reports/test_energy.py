"""Pure energy arithmetic: counters with resets, wraps, gaps, swaps; power integration."""
from __future__ import annotations

import calendar

import pytest

from reports.energy import counter_energy, coverage, hour_grid, month_grid, power_energy, unwrap

JAN = calendar.timegm((2026, 1, 1, 0, 0, 0))
H = 3600.0


def hourly_counter(powers_kw: list[float], start: float = 100.0) -> list[tuple[float, float]]:
    """Readings at each hour boundary of a counter fed by constant power per hour."""
    out, c = [(JAN, start)], start
    for i, p in enumerate(powers_kw):
        c += p
        out.append((JAN + (i + 1) * H, c))
    return out


def test_month_grid_clips_and_follows_calendar():
    g = month_grid(JAN + 10 * 86400, calendar.timegm((2026, 3, 5, 0, 0, 0)))
    assert [round((e - s) / 86400) for s, e in g] == [21, 28, 4]


def test_hour_grid_partial_hours():
    g = hour_grid(JAN + 1800, JAN + 3 * H)
    assert g[0] == (JAN + 1800, JAN + H) and len(g) == 3


def test_counter_energy_matches_powers_and_telescopes():
    powers = [float(10 + (i % 7)) for i in range(48)]
    e = counter_energy("m", hourly_counter(powers), hour_grid(JAN, JAN + 48 * H))
    assert e.values == pytest.approx(powers)
    assert e.total == pytest.approx(sum(powers))
    assert not e.bridges and all(e.has_data)


def test_reset_is_bridged_from_zero():
    powers = [5.0] * 10
    rs = hourly_counter(powers)
    # counter cleared right after the reading at hour 4: hour 5 reading shows only that hour's energy
    rs = rs[:5] + [(t, v - rs[4][1]) for t, v in rs[5:]]
    e = counter_energy("m", rs, month_grid(JAN, JAN + 10 * H))
    assert e.total == pytest.approx(50.0)
    assert len(e.bridges) == 1 and e.bridges[0].kind == "reset" and e.bridges[0].after == pytest.approx(5.0)


def test_32bit_wrap_is_bridged():
    m = 2 ** 32 / 1000  # Wh register read as kWh
    rs = [(JAN + i * H, (m - 25 + 10 * i) % m) for i in range(6)]
    e = counter_energy("m", rs, [(JAN, JAN + 5 * H)])
    assert e.total == pytest.approx(50.0)
    assert [b.kind for b in e.bridges] == ["wrap"]


def test_jitter_is_not_a_reset():
    times, vals, bridges = unwrap("m", "energy_kwh", [(0, 1000.0), (1, 999.9999999), (2, 1001.0)])
    assert not bridges and vals[-1] == pytest.approx(1001.0, abs=1e-6)


def test_gap_inside_month_loses_no_energy_and_shows_in_coverage():
    powers = [7.0] * 72
    rs = [r for i, r in enumerate(hourly_counter(powers)) if not 10 <= i < 40]
    grid = hour_grid(JAN, JAN + 72 * H)
    assert counter_energy("m", rs, [(JAN, JAN + 72 * H)]).total == pytest.approx(7.0 * 72)
    cov = coverage([t for t, _ in rs], grid)
    assert cov.intervals_total == 72 and cov.intervals_with_data == 42
    assert cov.longest_gap_s == 31 * H


def test_swap_windows_split_at_the_date():
    d = JAN + 24 * H
    old = [(JAN + i * H, 1000 + 3.0 * i) for i in range(48)]   # keeps counting after removal: ignored
    new = [(d + i * H, 50 + 4.0 * i) for i in range(25)]
    grid = [(JAN, JAN + 48 * H)]
    e_old = counter_energy("old", old, grid, window=(JAN, d))
    e_new = counter_energy("new", new, grid, window=(d, JAN + 48 * H))
    assert e_old.total == pytest.approx(72.0) and e_new.total == pytest.approx(96.0)


def test_power_trapezoid_exact_for_linear_power_and_skips_long_gaps():
    rs = [(JAN + i * 60, 1000.0 + i) for i in range(121)]   # 1 W more each minute, 2 hours
    e = power_energy("p", rs, hour_grid(JAN, JAN + 2 * H))
    # ∫ (1000 + t/60) dt over [0, 7200] s
    exact = (1000 * 7200 + 7200 ** 2 / 120) / 3.6e6
    assert e.total == pytest.approx(exact) and e.estimated == e.total
    gappy = rs[:30] + rs[90:]
    assert power_energy("p", gappy, [(JAN, JAN + 2 * H)]).total < exact * 0.6
