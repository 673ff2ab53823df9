"""The twin's physics hang together: the sums a DCIM checks must close.

Pure model tests (no network): step the model of the example site over time
and check the identities an operator would check on the real site.
"""
from __future__ import annotations

import math

import pytest

from inventory.loader import load_site
from inventory.topology import PowerGraph
from simulator import cooling as cool
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


def test_overtemp_on_an_idle_gpu_still_reads_past_the_slowdown():
    """The alert test injects gpu_overtemp at whatever instant it runs: the GPU the fault names
    may have no job then (36 °C on the loop), and the fault must still read past the threshold."""
    m = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    nodes = [d.id for d in kind(m, "gpu_node")]
    t = T0
    idle = None
    for step in range(0, 48 * 3600, 900):  # the job schedule over two days, every 15 minutes
        t = T0 + step
        m.step(t)
        idle = next((n for n in nodes if m.state[n].gpus[0].util == 0.0), None)
        if idle is not None:
            break
    assert idle is not None, "no node with an idle GPU 0 in two days of the schedule"
    assert m.state[idle].gpus[0].temp_c < cool.GPU_MAX_OPERATING_C - 20
    m.inject("gpu_overtemp", idle)
    m.step(t + 1)
    g = m.state[idle].gpus[0]
    assert g.util == 0.0 and g.temp_c > cool.GPU_SLOWDOWN_C
    assert g.clock_reasons & cool.HW_THERMAL


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


def _generated(seed: int = 5) -> SiteModel:
    """A generated slice of 2 × 3 racks × 5 nodes: 30 GPU nodes, several chunks of 4."""
    from inventory.generate import SiteShape, generate_site
    from inventory.model import Site

    shape = SiteShape(halls=1, rows_per_hall=2, racks_per_row=3, nodes_per_rack=5, ups_per_hall=2,
                      cdus_per_hall=2, crahs_per_hall=1, chillers_per_hall=1)
    return SiteModel(Site.model_validate(generate_site(shape)), seed=seed)


def _first_difference(a: SiteModel, b: SiteModel) -> str | None:
    return next((k for k in a.state if a.state[k] != b.state[k]), None)


def test_a_chunked_step_equals_the_whole_step_exactly():
    whole, chunked = _generated(), _generated()
    nodes = kind(whole, "gpu_node")
    assert len(nodes) == 30
    cdu = kind(whole, "cdu")[0].id
    pdu = kind(whole, "pdu")[0].id
    for k, t in enumerate([T0, T0 + 1, T0 + 2.5, T0 + 10, T0 + 75]):
        if k == 2:  # thermal throttling on a starved loop, a hot GPU, a tripped breaker
            for m in (whole, chunked):
                m.inject("cdu_pump_fail", cdu)
                m.inject("gpu_overtemp", nodes[7].id)
                m.inject("pdu_breaker_trip", pdu)
        whole.step(t)
        pauses = sum(1 for _ in chunked.step_iter(t, chunk=4))
        assert pauses >= 2 * (30 // 4)  # the nodes, then their feeds, a chunk at a time
        assert not chunked.stepping
        assert _first_difference(whole, chunked) is None  # the same floats, device by device
        assert whole.state == chunked.state and whole._chiller_warm == chunked._chiller_warm
    throttled = [n for n in nodes[8:] if any(g.clock_reasons & cool.SW_THERMAL for g in chunked.state[n.id].gpus)]
    assert throttled  # the starved loop's nodes, in later chunks than the loop's first nodes


def _energies(m: SiteModel) -> dict:
    return {k: (s.energy_kwh, s.input_energy_kwh, dict(s.outlet_energy), [g.energy_mj for g in s.gpus])
            for k, s in m.state.items()}


def test_a_step_asked_for_during_a_chunked_step_finishes_that_step_first():
    plain, m = _generated(), _generated()
    for x in (plain, m):
        x.step(T0)
    steps = m.step_iter(T0 + 5, chunk=4)
    next(steps)
    next(steps)  # one chunk of nodes stepped to T0 + 5, the rest not yet
    assert m.stepping
    m.step(T0 + 9)  # what a fault injection or the demo's backfill does meanwhile
    assert not m.stepping
    assert list(steps) == []  # finished by step(): the chunked step's own iterator just stops
    plain.step(T0 + 5)
    plain.step(T0 + 9)
    assert _energies(m) == _energies(plain)  # no node integrated twice, none over a stale dt
    assert _first_difference(plain, m) is None


def test_a_fault_injected_during_a_chunked_step_applies_from_the_next_step_on():
    plain, m = _generated(), _generated()
    node = kind(m, "gpu_node")[-1].id
    for x in (plain, m):
        x.step(T0)
    steps = m.step_iter(T0 + 5, chunk=4)
    next(steps)
    m.inject("xid_storm", node)  # the step in progress is finished without it, for every node
    assert not m.stepping and list(steps) == []
    plain.step(T0 + 5)
    plain.inject("xid_storm", node)
    assert _first_difference(plain, m) is None
    for x in (plain, m):
        x.step(T0 + 6)
    assert m.state[node].gpus[0].xid == 2 and _first_difference(plain, m) is None
