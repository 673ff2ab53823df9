"""The twin's physics hang together: the sums a DCIM checks must close.

Pure model tests (no network): step the model of the example site over time
and check the identities an operator would check on the real site.
"""
from __future__ import annotations

import math

import pytest

from inventory.loader import load_site
from inventory.topology import PowerGraph
from simulator.model import SiteModel
from localservers.site import EXAMPLE_SITE

T0 = 1_795_000_000.0  # a fixed instant (2026-11-18 ~10:13 UTC) so runs are reproducible


@pytest.fixture()
def model() -> SiteModel:
    m = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    m.step(T0)
    m.step(T0 + 1)
    return m


def kind(m: SiteModel, *kinds: str):
    return [d for d in m.devices.values() if d.kind in kinds]


def test_outlets_sum_to_pdu_power_and_pdus_to_ups_output(model):
    graph = PowerGraph(model.site)
    for pdu in kind(model, "pdu"):
        s = model.state[pdu.id]
        assert s.power_w > 1000
        assert sum(s.outlets.values()) == pytest.approx(s.power_w, rel=1e-9)
        assert sum(s.values["phase_w"]) == pytest.approx(s.power_w, rel=1e-9)
    for ups in kind(model, "ups"):
        pdus = [c for c in graph.children(ups.id) if model.devices[c].kind == "pdu"]
        assert pdus
        assert sum(model.state[p].power_w for p in pdus) == pytest.approx(model.state[ups.id].power_w, rel=1e-9)


def test_node_power_is_split_over_both_feeds_of_a_2n_rack(model):
    node = next(d for d in kind(model, "gpu_node"))
    a, b = (f.device for f in node.fed_by)
    outlet = int(node.fed_by[0].outlet)
    assert model.state[a].outlets[outlet] == pytest.approx(model.state[b].outlets[outlet])
    assert model.state[a].outlets[outlet] * 2 == pytest.approx(model.state[node.id].power_w)


def test_facility_is_it_plus_cooling_plus_losses_and_pue_is_plausible(model):
    st = model.state
    facility = model.facility_w()
    it = model.it_w()
    cooling = sum(st[d.id].input_w for d in kind(model, "chiller", "cdu", "crah"))
    ups_loss = sum(st[d.id].input_w - st[d.id].power_w for d in kind(model, "ups"))
    assert ups_loss > 0
    # transformer copper and iron losses (4 MVA units at a slice's 0.2 MW load: iron
    # loss dominates) plus lighting and offices: a few per cent, never negative
    rest = facility - (it + cooling + ups_loss)
    assert 0 < rest < 0.08 * facility
    assert 1.1 <= facility / it <= 1.35


def test_pue_moves_with_the_outside_temperature():
    m = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    pues = []
    for hour in (4, 14):  # local night vs afternoon; same point of the job cycle
        t = 1_795_046_400.0 + (hour - 1) * 3600.0
        m.step(t)
        m.step(t + 1)
        chiller_w = sum(m.state[d.id].power_w for d in kind(m, "chiller"))
        pues.append((m.facility_w() / m.it_w(), chiller_w))
    assert pues[1][1] > pues[0][1]  # chillers work harder in the afternoon
    assert pues[1][0] > pues[0][0]


def test_energy_counters_integrate_power():
    m = SiteModel(load_site(EXAMPLE_SITE), seed=3)
    m.step(T0)
    start = {k: (s.energy_kwh, s.input_energy_kwh) for k, s in m.state.items()}
    integral = {k: 0.0 for k in m.state}
    gpu_mj0 = [g.energy_mj for g in m.state[kind(m, "gpu_node")[0].id].gpus]
    gpu_integral = [0.0] * len(gpu_mj0)
    for i in range(1, 121):
        m.step(T0 + i * 2.5)
        for k, s in m.state.items():
            integral[k] += s.power_w * 2.5 / 3.6e6
        for j, g in enumerate(m.state[kind(m, "gpu_node")[0].id].gpus):
            gpu_integral[j] += g.power_w * 2.5 * 1000
    for k, s in m.state.items():
        assert s.energy_kwh - start[k][0] == pytest.approx(integral[k], rel=1e-9, abs=1e-12), k
    gpus = m.state[kind(m, "gpu_node")[0].id].gpus
    assert [g.energy_mj - e0 for g, e0 in zip(gpus, gpu_mj0)] == pytest.approx(gpu_integral)


def test_meters_read_the_device_they_measure(model):
    for meter in kind(model, "meter"):
        if not meter.measures:
            continue
        target = model.devices[meter.measures]
        truth = model.state[target.id].power_w if target.kind in ("ups", "pv_inverter", "wind_turbine") \
            else model.state[target.id].input_w
        assert model.state[meter.id].power_w == pytest.approx(truth)


@pytest.mark.parametrize("fault,device,check", [
    ("ups_on_battery", "ups-1a", lambda m: m.state["ups-1a"].input_w == 0 and m.state["ups-1a"].values["charge_pct"] < 100),
    ("chiller_trip", "chiller-1", lambda m: not m.state["chiller-1"].values["running"]
     and m.state["chiller-1"].values["supply_c"] > 7.5),
    ("cdu_leak", "cdu-1", lambda m: m.state["cdu-1"].values["leak"] is True),
    ("gpu_overtemp", "h1-r01-k01-n1", lambda m: m.state["h1-r01-k01-n1"].gpus[0].temp_c > 85),
    ("xid_storm", "h1-r01-k01-n1", lambda m: m.state["h1-r01-k01-n1"].gpus[3].xid > 0),
])
def test_faults_change_the_physics_and_clear(fault, device, check):
    m = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    m.step(T0)
    m.inject(fault, device)
    for i in range(1, 31):
        m.step(T0 + i)
    assert check(m)
    m.clear(fault, device)
    assert not m.has(fault, device)


def test_breaker_trip_moves_the_load_to_the_other_feed():
    m = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    m.step(T0)
    before_b = m.state["h1-r01-k01-pdu-b"].power_w
    m.inject("pdu_breaker_trip", "h1-r01-k01-pdu-a")
    m.step(T0 + 0.001)  # same load, new topology
    assert m.state["h1-r01-k01-pdu-a"].power_w == 0
    assert m.state["h1-r01-k01-pdu-b"].power_w == pytest.approx(2 * before_b, rel=0.01)


def test_fault_errors_are_clear():
    m = SiteModel(load_site(EXAMPLE_SITE))
    with pytest.raises(ValueError, match="unknown fault"):
        m.inject("meltdown", "ups-1a")
    with pytest.raises(ValueError, match="no device"):
        m.inject("ups_on_battery", "ups-9z")
    with pytest.raises(ValueError, match="applies to ups"):
        m.inject("ups_on_battery", "chiller-1")


def test_renewables_follow_sun_and_wind():
    m = SiteModel(load_site(EXAMPLE_SITE))
    night, noon = 1_795_046_400.0 + 2 * 3600, 1_795_046_400.0 + 12.5 * 3600
    m.step(night)
    assert m.state["pv-1"].power_w == 0
    m.step(noon)
    assert m.state["pv-1"].power_w > 0.2 * 150e3
    assert 0 < m.state["wind-1"].power_w <= 250e3
    assert not math.isnan(m.state["wind-1"].power_w)
