"""Derived metrics on a small site whose every number is computed by hand in the comments.

Site (tests/derived/site_small.yaml): boundary meters b1 = 60 kW (total),
b2 = 3 x 10 kW (per phase only), b3 silent; UPS-A output 3 x 10 kW, UPS-B
2 x 10 kW; rack k1 (2N, 20 kW) with pdu-a 7 kW (ups-a) and pdu-b 6 kW (ups-b),
rated 16 kW each; rack k2 (N, 10 kW) with pdu-c 7 kW rated 12 kW; chiller 15 kW,
CDU 3 kW; GPU node n1 with two GPUs 700 W + 650 W; PV 5 kW.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from contract.sample import Sample
from derived.job import DerivedMetrics
from derived.power_chain import ReadingIndex, compute_all, it_power, usable_capacity
from inventory import load_site

HERE = Path(__file__).resolve().parent
T0 = 1_790_000_000 * 10**9  # 2026-09-21, after no commissioning date


def _samples(t: int = T0) -> list[Sample]:
    """What collectors would write for the site above (incl. series that must be ignored)."""
    def s(meas, dev, fields, **comp):
        return Sample(meas, {"site": "s1", "device": dev, **comp}, fields, t)
    out = [
        s("meter", "meter-b1", {"power_w": 60000.0, "energy_kwh": 1234.0}),
        s("meter", "meter-b1", {"power_w": 20000.0}, phase="L1"),  # a total exists: phases ignored
        *[s("meter", "meter-b2", {"power_w": 10000.0}, phase=p) for p in ("L1", "L2", "L3")],
        s("meter", "meter-pv", {"power_w": 5000.0}),
        *[s("ups", "ups-a", {"power_w": 10000.0, "load_pct": 30.0}, stage="output", phase=p) for p in "123"],
        *[s("ups", "ups-b", {"power_w": 10000.0}, stage="output", phase=p) for p in "12"],
        s("ups", "ups-a", {"power_w": 99999.0}, stage="input", phase="1"),  # input: ignored
        s("pdu", "pdu-a", {"power_w": 7000.0, "energy_kwh": 10.0}, pdu="1"),
        *[s("pdu", "pdu-a", {"power_w": 2333.0}, pdu="1", phase=p) for p in "123"],
        s("pdu", "pdu-a", {"power_w": 500.0}, pdu="1", outlet="1"),
        s("pdu", "pdu-b", {"power_w": 6000.0}, pdu="1"),
        s("pdu", "pdu-c", {"power_w": 7000.0}, pdu="1"),
        s("gpu", "n1", {"power_w": 700.0, "temp_c": 60.0}, gpu="0", uuid="GPU-0"),
        s("gpu", "n1", {"power_w": 650.0, "temp_c": 61.0}, gpu="1", uuid="GPU-1"),
        s("chiller", "chiller-1", {"power_w": 15000.0}),
        s("chiller", "chiller-1", {"temp_c": 7.0}, sensor="chw_supply"),
        s("cdu", "cdu-1", {"power_w": 3000.0}),
        s("cdu", "cdu-1", {"speed_rpm": 1500}, pump="1"),
    ]
    return out


@pytest.fixture(scope="module")
def readings(site):
    dm = DerivedMetrics(site)
    dm.consume(_samples())
    return dm.readings(T0)


@pytest.fixture(scope="module")
def derived(site, readings):
    return compute_all(site, readings, T0)


def _one(samples, measurement, **tags):
    found = [s for s in samples if s.measurement == measurement
             and all(s.tags.get(k, "") == v for k, v in tags.items())]
    assert len(found) == 1, (measurement, tags, [s.tags for s in found])
    return found[0]


def test_site_power_and_pue(derived):
    sp = _one(derived, "site_power", hall="")
    assert sp.fields["facility_w"] == 90000.0  # 60 kW + 3 x 10 kW; b3 silent
    assert sp.fields["missing"] == 1
    assert set(sp.fields["sources"].split(",")) == {"meter-b1", "meter-b2", "ups-a", "ups-b"}
    assert sp.fields["it_w"] == 50000.0 and sp.fields["category"] == 1  # UPS outputs 30 + 20 kW
    assert sp.fields["it_cat2_w"] == 20000.0  # PDU inlets 7 + 6 + 7 kW
    assert sp.fields["it_cat3_w"] == 1350.0  # GPU power of n1
    assert sp.fields["renewable_w"] == 5000.0
    assert sp.fields["cooling_w"] == 18000.0
    pue = _one(derived, "pue", hall="", kind="instantaneous")
    assert pue.fields["pue"] == pytest.approx(1.8)  # 90 / 50
    assert pue.fields["ppue_cooling"] == pytest.approx(1.36)  # (50 + 18) / 50
    assert pue.fields["missing"] == 1


def test_hall_pue_single_hall_uses_site_boundary(derived):
    pue = _one(derived, "pue", hall="h1", kind="instantaneous")
    assert pue.fields["pue"] == pytest.approx(1.8)
    assert pue.tags["site"] == "s1"


def test_rack_capacity_2n_and_n(derived):
    k1 = _one(derived, "capacity", level="rack", id="k1")
    assert k1.fields["load_w"] == 13000.0
    assert k1.fields["rated_w"] == 20000.0
    assert k1.fields["load_pct"] == pytest.approx(65.0)
    assert k1.fields["headroom_w"] == 3000.0  # one side (16 kW) - both sides' load (13 kW)
    assert k1.fields["redundancy"] == "2N"
    assert (k1.tags["hall"], k1.tags["row"], k1.tags["rack"]) == ("h1", "r1", "k1")
    k2 = _one(derived, "capacity", level="rack", id="k2")
    assert k2.fields["headroom_w"] == 3000.0  # min(PDU 12 kW, rack 10 kW) - 7 kW
    assert k2.fields["load_pct"] == pytest.approx(70.0)


def test_pdu_ups_row_hall_capacity(derived):
    assert _one(derived, "capacity", level="pdu", id="pdu-a").fields["headroom_w"] == 3000.0  # 16 - 13 (whole rack)
    assert _one(derived, "capacity", level="pdu", id="pdu-c").fields["headroom_w"] == 5000.0  # 12 - 7
    ua = _one(derived, "capacity", level="ups", id="ups-a")
    ub = _one(derived, "capacity", level="ups", id="ups-b")
    assert ua.fields["load_w"] == 30000.0 and ua.fields["load_pct"] == pytest.approx(30.0)
    assert ub.fields["load_pct"] == pytest.approx(25.0)  # 20 / 80
    # 2N pair: the smaller UPS (80 kW) must carry both outputs (50 kW)
    assert ua.fields["headroom_w"] == ub.fields["headroom_w"] == 30000.0
    assert ua.fields["redundancy"] == "2N"
    row = _one(derived, "capacity", level="row", id="r1")
    assert (row.fields["load_w"], row.fields["rated_w"], row.fields["headroom_w"]) == (20000.0, 30000.0, 6000.0)
    hall = _one(derived, "capacity", level="hall", id="h1")
    # hall rating leaves 100 - 20 kW, but the 2N UPS pair upstream only 30 kW more
    assert (hall.fields["load_w"], hall.fields["headroom_w"]) == (20000.0, 30000.0)
    assert hall.fields["redundancy"] == "2N"
    assert hall.fields["missing"] == 0


def test_allocation_usable_and_design_load(derived):
    """Allocation is the nameplate connected below (n1 is 9.5 kW; pdu-a 16 kW, pdu-c 12 kW)."""
    f = {(s.tags["level"], s.tags["id"]): s.fields for s in derived if s.measurement == "capacity"}
    assert f["rack", "k1"]["allocated_w"] == 9500.0 and f["rack", "k1"]["unrated"] == 0
    assert f["rack", "k2"]["allocated_w"] == 0.0                     # nothing placed in it draws power
    assert f["pdu", "pdu-a"]["allocated_w"] == f["pdu", "pdu-b"]["allocated_w"] == 9500.0  # n1 on both sides
    assert f["ups", "ups-a"]["allocated_w"] == 28000.0               # pdu-a 16 + pdu-c 12
    assert f["ups", "ups-b"]["allocated_w"] == 16000.0
    assert (f["row", "r1"]["allocated_w"], f["hall", "h1"]["allocated_w"]) == (9500.0, 9500.0)
    # a 2N rack's PDU carries the whole rack (13 kW) on a failure; a UPS of the 2N pair the pair (50 kW)
    assert f["pdu", "pdu-a"]["design_load_w"] == 13000.0 and f["pdu", "pdu-c"]["design_load_w"] == 7000.0
    assert f["ups", "ups-a"]["design_load_w"] == 50000.0 and f["ups", "ups-a"]["usable_w"] == 80000.0
    assert f["rack", "k1"]["usable_w"] == 16000.0 and f["row", "r1"]["usable_w"] == 26000.0
    assert f["rack", "k1"]["headroom_pct"] == pytest.approx(100 * 3000 / 16000)
    assert f["ups", "ups-b"]["headroom_pct"] == pytest.approx(100 * 30000 / 80000)


def test_missing_pdu_counts_and_it_categories(site, readings):
    partial = {k: v for k, v in readings.items() if k[1] != "pdu-b"}
    out = compute_all(site, partial, T0)
    k1 = _one(out, "capacity", level="rack", id="k1")
    assert k1.fields["missing"] == 1 and k1.fields["load_w"] == 7000.0
    idx = ReadingIndex(partial)
    cat2 = it_power(site, idx, 2)
    assert (cat2.value, cat2.missing, cat2.sources) == (14000.0, 1, ("pdu-a", "pdu-c"))


def test_stale_readings_are_missing(site):
    dm = DerivedMetrics(site, stale_s=30)
    dm.consume(_samples(T0 - 60 * 10**9))  # a minute old
    dm.consume([Sample("meter", {"device": "meter-b1"}, {"power_w": 61000.0}, T0)])
    sp = _one(dm.compute(T0), "site_power", hall="")
    assert sp.fields["facility_w"] == 61000.0
    assert "it_w" not in sp.fields  # no IT category has a fresh reading
    # b2, b3 boundary + every IT input of every category: 2 UPS, 3 PDUs, 1 node
    assert sp.fields["missing"] == 2 + (2 + 3 + 1)


def test_out_of_order_sample_does_not_replace_newer(site):
    dm = DerivedMetrics(site)
    dm.consume([Sample("meter", {"device": "meter-b1"}, {"power_w": 1.0}, T0)])
    dm.consume([Sample("meter", {"device": "meter-b1"}, {"power_w": 2.0}, T0 - 10**9)])
    assert dm.readings(T0)[("meter", "meter-b1", (), "power_w")] == 1.0


@pytest.mark.parametrize("sides,red,expected", [
    ([[10.0], [8.0]], "2N", 8.0),
    ([[10.0, 10.0, 10.0]], "N+1", 20.0),
    ([[5.0, 5.0], [4.0, 4.0]], "2N+1", 4.0),
    ([[5.0], [7.0]], "N", 12.0),
    ([[5.0]], "2N", 0.0),  # a 2N rack with one side has no redundant capacity
])
def test_usable_capacity(sides, red, expected):
    assert usable_capacity(sides, red) == expected


def test_example_site_without_readings_reports_missing():
    site = load_site(Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml")
    out = compute_all(site, {}, T0)
    racks = [s for s in out if s.measurement == "capacity" and s.tags["level"] == "rack"]
    assert len(racks) == len(site.racks())
    assert all(s.fields["missing"] == 2 and "load_w" not in s.fields for s in racks)
    assert not [s for s in out if s.measurement == "pue"]


def test_category_3_prefers_node_input_then_bmc_then_gpus():
    """Tétouan: n1 of rack k01 has a BMC (``h1-r01-k01-n1-bmc``, labels.node = n1)."""
    site = load_site(Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml")
    n1, n2 = "h1-r01-k01-n1", "h1-r01-k01-n2"
    readings = {
        # the BMC reports two PSU inputs and no chassis total: their sum is the node's input
        ("node", f"{n1}-bmc", (("psu", "0"),), "power_w"): 5100.0,
        ("node", f"{n1}-bmc", (("psu", "1"),), "power_w"): 5000.0,
        ("node", f"{n1}-bmc", (("fan", "1"),), "power_w"): 90.0,  # a fan: not input power
        ("gpu", n1, (("gpu", "0"), ("uuid", "U0")), "power_w"): 700.0,  # ignored: node input known
        # n2: no BMC data, two GPUs
        ("gpu", n2, (("gpu", "0"), ("uuid", "U1")), "power_w"): 640.0,
        ("gpu", n2, (("gpu", "1"), ("uuid", "U2")), "power_w"): 660.0,
        # n3 of the same rack: a chassis total beats its PSU inputs
        ("node", "h1-r01-k01-n3", (), "power_w"): 9000.0,
        ("node", "h1-r01-k01-n3", (("psu", "0"),), "power_w"): 4600.0,
    }
    cat3 = it_power(site, ReadingIndex(readings), 3)
    assert cat3.value == 10100.0 + 1300.0 + 9000.0
    assert cat3.sources == (n1, n2, "h1-r01-k01-n3")
    assert cat3.missing == 24 - 3  # 24 GPU nodes; BMC servers are not counted as nodes


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=4), min_size=1, max_size=4))
def test_redundancy_never_adds_capacity(sides):
    n = usable_capacity(sides, "N")
    assert usable_capacity(sides, "N+1") <= n
    assert usable_capacity(sides, "2N") <= n
    assert usable_capacity(sides, "2N+1") <= usable_capacity(sides, "2N") + 1e-6
    assert n == pytest.approx(sum(sum(s) for s in sides))
