"""The demo's backfill: its step flag and the faults it plants in the history (pure parts).

The backfill itself runs against the real twin and collectors in tests/test_demo.py,
tests/dashboards/conftest.py, tests/derived/test_derived_from_influx.py and tests/test_live_view.py.
"""
from __future__ import annotations

import pytest

from dcim.backfill import SUBSTEP_S, history_faults, parse_step
from simulator.model import FAULTS
from localservers.site import EXAMPLE_SITE, load_relocated


@pytest.mark.parametrize("text, seconds", [("15m", 900.0), ("6h", 21600.0), ("900s", 900.0), ("3600", 3600.0)])
def test_parse_step(text, seconds):
    assert parse_step(text) == seconds


@pytest.mark.parametrize("text", ["", "6x", "h", "10s", "nan", "-1h"])
def test_parse_step_refuses_with_the_reason(text):
    with pytest.raises(ValueError, match="step"):
        parse_step(text)


def test_history_faults_are_physical_on_the_model_grid_and_inside_the_history():
    site = load_relocated(EXAMPLE_SITE)
    start = 1_790_000_000.0 // SUBSTEP_S * SUBSTEP_S
    end = start + 30 * 86400
    faults = history_faults(site, start, end)
    assert {f.fault for f in faults} == {"chiller_trip", "ups_on_battery", "cdu_pump_fail", "cdu_leak", "xid_storm",
                                         "pdu_breaker_trip"}
    kinds = {d.id: d.kind for d in site.all_devices()}
    for f in faults:
        assert FAULTS[f.fault] == kinds[f.device]  # a fault the model accepts for that device
        assert start < f.start_s < f.end_s < end
        assert (f.start_s - start) % SUBSTEP_S == 0  # on the backfill's step grid, so it is polled
        assert f.end_s - f.start_s >= 2 * SUBSTEP_S  # seen on two samples at least: rules with for_s fire
    starts = sorted(f.start_s for f in faults)
    assert all(b - a > 86400 for a, b in zip(starts, starts[1:]))  # days apart: one fault at a time
