"""The twin's CDU loops carry a cooling fault through to the GPUs on that loop, and only those.

Pure model tests on the example site (two CDUs, each cooling one row): a fault on one
CDU's loop must change the flow, the supply temperature, the GPU temperatures and the
thermal bits of ``clock_event_reasons`` on exactly the nodes the inventory puts on that
loop, and leave the other loop's nodes as they were.
"""
from __future__ import annotations

import pytest

from inventory.loader import load_site
from inventory.loops import LoopIndex
from localservers.site import EXAMPLE_SITE
from simulator import cooling as cool
from simulator.model import SiteModel

T0 = 1_795_000_000.0
THERMAL = cool.SW_THERMAL | cool.HW_THERMAL


def _nodes_on(m: SiteModel, cdu: str) -> list[str]:
    """From the inventory's loop index, not from the model: the GPU nodes on ``cdu``'s loops."""
    index = LoopIndex(m.site)
    return [d.id for key in index.loops_of_cdu(cdu) for d in index.gpu_nodes_on(key)]


@pytest.fixture()
def m() -> SiteModel:
    model = SiteModel(load_site(EXAMPLE_SITE), seed=7)
    for i in range(3):
        model.step(T0 + i)
    return model


def _run(m: SiteModel, seconds: int, start: float = T0 + 10) -> None:
    for i in range(seconds):
        m.step(start + i)


def _snapshot(m: SiteModel, nodes: list[str]) -> dict[str, list[tuple[float, int, float]]]:
    return {n: [(g.temp_c, g.clock_reasons, g.power_w) for g in m.state[n].gpus] for n in nodes}


def test_the_example_puts_each_row_on_its_own_loop(m):
    a, b = _nodes_on(m, "cdu-1"), _nodes_on(m, "cdu-2")
    assert a and b and not set(a) & set(b)
    assert {m.node_loop[n] is m.cooling["cdu-1"].loops["1"] for n in a} == {True}
    assert {m.node_loop[n] is m.cooling["cdu-2"].loops["1"] for n in b} == {True}


def test_healthy_loops_hold_set_point_and_no_gpu_throttles_thermally(m):
    for c in m.cooling.values():
        loop = c.loops["1"]
        assert loop.flow_lpm > 0 and loop.supply_c == pytest.approx(cool.SUPPLY_SETPOINT_C)
        assert loop.return_c > loop.supply_c
        assert [p.state for p in c.pumps] == ["running", "standby"]
        assert set(c.detectors.values()) == {"dry"}
    for n in _nodes_on(m, "cdu-1") + _nodes_on(m, "cdu-2"):
        for g in m.state[n].gpus:
            assert g.clock_reasons & THERMAL == 0 and g.temp_c < cool.GPU_MAX_OPERATING_C


def test_pump_failure_starves_its_loop_and_throttles_exactly_that_loops_gpus(m):
    on, off = _nodes_on(m, "cdu-1"), _nodes_on(m, "cdu-2")
    loop, other = m.cooling["cdu-1"].loops["1"], m.cooling["cdu-2"].loops["1"]
    flow0, supply0, other_flow0 = loop.flow_lpm, loop.supply_c, other.flow_lpm
    before = _snapshot(m, on + off)
    m.inject("cdu_pump_fail", "cdu-1")
    _run(m, 3)
    after = _snapshot(m, on + off)
    # cause: no pump runs, so no flow, and the supply rises above set point
    assert [p.state for p in m.cooling["cdu-1"].pumps] == ["fault", "fault"]
    assert loop.flow_lpm == 0 < flow0
    assert loop.supply_c > supply0 + 3
    assert m.cooling["cdu-1"].unit_state == "alarm"
    # symptom, on every busy node of that loop: hotter GPUs, thermal bits, less power
    busy = [n for n in on if m.state[n].values["util_pct"] > 50]
    assert len(busy) >= len(on) // 2
    for n in busy:
        for (t0, _, p0), (t1, bits, p1) in zip(before[n], after[n]):
            assert t1 > t0 and bits & THERMAL and p1 < p0
    assert all(t1 >= t0 for n in on for (t0, _, _), (t1, _, _) in zip(before[n], after[n]))
    # and none of it on the other loop
    assert other.flow_lpm == pytest.approx(other_flow0, rel=0.1)
    for n in off:
        for g in m.state[n].gpus:
            assert g.clock_reasons & THERMAL == 0
        assert max(abs(t1 - t0) for (t0, _, _), (t1, _, _) in zip(before[n], after[n])) < 2.0
    # cleared: the pumps run again and the GPUs recover
    m.clear("cdu_pump_fail", "cdu-1")
    _run(m, 5, T0 + 100)
    assert loop.flow_lpm > 0 and loop.supply_c == pytest.approx(cool.SUPPLY_SETPOINT_C)
    assert not any(g.clock_reasons & THERMAL for n in on for g in m.state[n].gpus)


def test_one_pump_failing_hands_over_to_the_standby_pump(m):
    loop = m.cooling["cdu-1"].loops["1"]
    flow0 = loop.flow_lpm
    m.inject("cdu_pump_fail", "cdu-1", pump="1")
    _run(m, 3)
    assert [p.state for p in m.cooling["cdu-1"].pumps] == ["fault", "running"]
    assert loop.flow_lpm == pytest.approx(flow0, rel=0.1)
    assert not any(g.clock_reasons & THERMAL for n in _nodes_on(m, "cdu-1") for g in m.state[n].gpus)


def test_low_flow_sets_the_sw_thermal_bit_with_the_pumps_flat_out(m):
    loop = m.cooling["cdu-1"].loops["1"]
    m.inject("cdu_low_flow", "cdu-1", pct="20")  # as the control API hands it over: text
    _run(m, 3)
    assert loop.flow_lpm == pytest.approx(0.2 * loop.normal_flow_lpm)
    assert m.cooling["cdu-1"].pumps[0].speed_pct == 100.0
    busy = [n for n in _nodes_on(m, "cdu-1") if m.state[n].values["util_pct"] > 50]
    assert busy and all(g.clock_reasons & cool.SW_THERMAL for n in busy for g in m.state[n].gpus)
    assert all(g.temp_c >= cool.GPU_MAX_OPERATING_C - 0.01 for n in busy for g in m.state[n].gpus)


def test_filter_clog_raises_filter_dp_and_pump_speed_then_flow_falls(m):
    c = m.cooling["cdu-1"]
    loop = c.loops["1"]
    dp0, speed0, flow0 = c.filter_dp_kpa, c.pumps[0].speed_pct, loop.flow_lpm
    m.inject("cdu_filter_clog", "cdu-1", severity=0.97)
    _run(m, 2)
    assert c.filter_dp_kpa > 20 * max(dp0, 1e-6) and c.filter_state == "fault"
    assert c.pumps[0].speed_pct > speed0
    assert loop.flow_lpm == pytest.approx(flow0, rel=0.1)  # the pumps still make up for it
    m.inject("cdu_filter_clog", "cdu-1", severity=0.995)
    _run(m, 2, T0 + 50)
    assert c.pumps[0].speed_pct == 100.0 and loop.flow_lpm < 0.8 * loop.normal_flow_lpm


def test_a_leak_flips_its_rack_detector_drains_the_reservoir_and_stops_the_pumps(m):
    c = m.cooling["cdu-1"]
    rack = m.devices[_nodes_on(m, "cdu-1")[0]].rack
    m.inject("cdu_leak", "cdu-1", detector=rack, pct_per_min=30)
    _run(m, 60)  # the last step before was at T0 + 2, this one at T0 + 69
    assert c.detectors[rack] == "leak"
    assert [d for d, state in c.detectors.items() if state == "leak"] == [rack]
    assert c.reservoir_pct == pytest.approx(100 - 30 * 67 / 60)
    _run(m, 120, T0 + 200)  # below the low-level switch the unit protects its pumps
    assert c.reservoir_pct < cool.LOW_LEVEL_PCT and c.reservoir_state == "fault"
    assert c.loops["1"].flow_lpm == 0 and {p.state for p in c.pumps} == {"off"}
    m.clear("cdu_leak", "cdu-1")
    _run(m, 1200, T0 + 400)  # auto-fill tops it up
    assert c.reservoir_pct == 100 and set(c.detectors.values()) == {"dry"} and c.loops["1"].flow_lpm > 0


@pytest.mark.parametrize("fault,params,msg", [
    ("cdu_pump_fail", {"pump": "7"}, "has 1, 2, all"),
    ("cdu_low_flow", {"pct": "lots"}, "expected a number"),
    ("cdu_filter_clog", {"severity": 2}, "expected a number from 0 to 0.995"),
    ("cdu_leak", {"detector": "h9-r99-k99"}, "has unit"),
    ("cdu_low_flow", {"speed": 3}, "no parameter 'speed'"),
    ("ups_on_battery", {"pct": 3}, "parameters: none"),
])
def test_fault_parameters_are_checked(m, fault, params, msg):
    device = "ups-1a" if fault.startswith("ups") else "cdu-1"
    with pytest.raises(ValueError, match=msg):
        m.inject(fault, device, **params)
    assert not m.has(fault, device)


def test_low_flow_on_one_loop_of_a_two_loop_cdu_throttles_only_that_loops_nodes():
    from inventory.generate import SiteShape, generate_site
    from inventory.model import Site

    site = Site.model_validate(generate_site(SiteShape(halls=1, rows_per_hall=2, racks_per_row=2, nodes_per_rack=2,
                                                       ups_per_hall=2, cdus_per_hall=1, crahs_per_hall=1,
                                                       chillers_per_hall=1, bmc_per_rack=0, loops_per_cdu=2)))
    m = SiteModel(site, seed=7)
    index = LoopIndex(site)
    (cdu,) = [d.id for d in m.devices.values() if d.kind == "cdu"]
    keys = index.loops_of_cdu(cdu)
    assert [k[1] for k in keys] == ["1", "2"]
    on = [d.id for d in index.gpu_nodes_on(keys[0])]
    off = [d.id for d in index.gpu_nodes_on(keys[1])]
    assert on and off
    for i in range(3):
        m.step(T0 + i)
    m.inject("cdu_low_flow", cdu, loop="1", pct=10)
    _run(m, 3)
    c = m.cooling[cdu]
    assert c.loops["1"].flow_lpm == pytest.approx(0.1 * c.loops["1"].normal_flow_lpm)
    assert c.loops["2"].flow_lpm == pytest.approx(c.loops["2"].normal_flow_lpm)
    busy = [n for n in on if m.state[n].values["util_pct"] > 50]
    assert busy and all(g.clock_reasons & THERMAL for n in busy for g in m.state[n].gpus)
    assert not any(g.clock_reasons & THERMAL for n in off for g in m.state[n].gpus)
    with pytest.raises(ValueError, match="has 1, 2"):
        m.inject("cdu_low_flow", cdu, loop="3")


def test_the_control_api_hands_parameters_to_the_model_and_refuses_malformed_ones(m):
    import json
    from types import SimpleNamespace

    from simulator.control import handle

    twin = SimpleNamespace(model=m, inject=m.inject, clear=m.clear)
    body = json.dumps({"fault": "cdu_low_flow", "device": "cdu-1", "params": {"pct": "35"}}).encode()
    assert handle(twin, "POST", "/faults", body) == (200, {"fault": "cdu_low_flow", "device": "cdu-1", "active": True})
    assert m.faults[("cdu_low_flow", "cdu-1")] == {"pct": 35.0}
    status, listed = handle(twin, "GET", "/faults", b"")
    assert status == 200 and {"fault": "cdu_low_flow", "device": "cdu-1", "params": {"pct": 35.0}} in listed["faults"]
    for params in ([1, 2], {"pct": [35]}, {"pct": True}, {"pct": {"x": 1}}):
        bad = json.dumps({"fault": "cdu_filter_clog", "device": "cdu-1", "params": params}).encode()
        status, obj = handle(twin, "POST", "/faults", bad)
        assert status == 400 and "params" in obj["error"], params
    status, obj = handle(twin, "POST", "/faults", json.dumps({"fault": "cdu_pump_fail", "device": "cdu-1",
                                                               "params": {"pump": "3"}}).encode())
    assert status == 400 and "has 1, 2, all" in obj["error"]
    assert not m.has("cdu_filter_clog", "cdu-1") and not m.has("cdu_pump_fail", "cdu-1")


@pytest.mark.parametrize("supply,flow_rel,demand,bits,temp", [
    (32.0, 1.0, 700.0, 0, None),                                   # healthy: no slowdown, T = supply + R·P
    (40.0, 0.2, 700.0, cool.SW_THERMAL, cool.GPU_MAX_OPERATING_C),  # the driver holds 87 °C with lower clocks
    (40.0, 0.0, 700.0, cool.SW_THERMAL | cool.HW_THERMAL, cool.GPU_SLOWDOWN_C),  # even the lowest clocks cannot
])
def test_cold_plate_thermal_slowdown(supply, flow_rel, demand, bits, temp):
    r = cool.cold_plate_r(flow_rel)
    power, t, reasons = cool.gpu_thermal(supply, r, demand, 0.35 * 700.0)
    assert reasons == bits
    assert t == pytest.approx(temp if temp is not None else supply + r * demand)
    assert power == pytest.approx(demand) if not bits else power < demand
    assert t == pytest.approx(supply + r * power)  # the temperature is what the power it keeps makes it
