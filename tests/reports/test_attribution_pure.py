"""The attribution chain's pure parts on small hand-made series (no server): the cases a real run rarely shows."""
from __future__ import annotations

import numpy as np
import pytest

from reports.attribution import (RESIDUAL_PDU, RESIDUAL_UPS, UNALLOCATED, ChainInputs, GpuSeries, OutletSeries,
                                 Workload, attribute, gpu_energy)

H = 3600.0
EDGES = np.arange(0.0, 4 * H + 1, H)          # four hours
A, B = Workload("ns-a", "pod-a"), Workload("ns-b", "pod-b")


def test_a_job_change_inside_a_tier_bucket_keeps_every_kwh():
    """Two series end in the same bucket (stamped at its end): the lower counter value is the earlier one."""
    a = GpuSeries("n", "0", A, "energy_kwh", [(0.0, 10.0), (H, 11.0), (2 * H, 12.0)])
    b = GpuSeries("n", "0", B, "energy_kwh", [(2 * H, 12.4), (3 * H, 13.4), (4 * H, 14.4)])
    per, est = gpu_energy([b, a], EDGES)
    assert not est
    assert per[A].sum() == pytest.approx(2.0) and per[B].sum() == pytest.approx(2.4)
    assert per[B][1] == pytest.approx(0.4)      # the part of hour 2 after A's last reading
    assert (per[A] + per[B]).sum() == pytest.approx(14.4 - 10.0)


def test_a_gpu_counter_reset_counts_the_value_after_it():
    a = GpuSeries("n", "0", A, "energy_kwh", [(0.0, 50.0), (H, 51.0), (2 * H, 0.5), (3 * H, 1.5)])
    per, _ = gpu_energy([a], EDGES)
    assert per[A].sum() == pytest.approx(1.0 + 0.5 + 1.0)


def test_power_only_gpus_are_integrated_and_marked_estimated():
    a = GpuSeries("n", "0", A, "power_w", [(t, 500.0) for t in np.arange(0, 4 * H + 1, 600.0)])
    per, est = gpu_energy([a], EDGES)
    assert est and per[A].sum() == pytest.approx(2.0)


def _inputs(outlets, gpus, pdu_total=None, ups=None) -> ChainInputs:
    return ChainInputs(edges=EDGES, gpus=gpus, outlets=outlets,
                       pdu_totals={"p": [("energy_kwh", pdu_total)]} if pdu_total else {},
                       ups_outputs={"u": [("energy_kwh", ups)]} if ups else {},
                       node_place={"n1": ("h", "r"), "n2": ("h", "r")}, node_pdus={"n1": ["p"], "n2": ["p"]},
                       pdu_upses={"p": ["u"]})


def counter(kw: float, base: float = 0.0):
    return [(t, base + kw * t / H) for t in EDGES]


def test_a_node_without_outlet_readings_counts_its_gpus_and_the_pdu_residual_stays_honest():
    gpus = [GpuSeries("n1", "0", A, "energy_kwh", counter(1.0)), GpuSeries("n2", "0", B, "energy_kwh", counter(0.5))]
    outlets = [OutletSeries("p", "1", "n1", "energy_kwh", counter(1.5))]      # n2's outlet sends nothing
    att, _ = attribute(_inputs(outlets, gpus, pdu_total=counter(2.2), ups=counter(2.5)), "namespace")
    rows = {r.entity: r for r in att.rows}
    assert rows["ns-a"].it_kwh == pytest.approx(6.0)                  # n1's outlet, all to its one job
    assert rows["ns-b"].it_kwh == pytest.approx(2.0) and rows["ns-b"].estimated_kwh == pytest.approx(2.0)
    assert rows[RESIDUAL_PDU].it_kwh == pytest.approx(4 * (2.2 - 1.5 - 0.5))
    assert rows[RESIDUAL_UPS].it_kwh == pytest.approx(4 * 0.3)
    assert sum(r.it_kwh for r in att.rows) == pytest.approx(att.measured_kwh) == pytest.approx(10.0)
    assert any("without outlet readings" in w for w in att.warnings)


def test_hours_with_outlet_energy_and_no_gpu_energy_are_unallocated():
    gpus = [GpuSeries("n1", "0", A, "energy_kwh", [(0.0, 0.0), (H, 1.0), (2 * H, 2.0)])]   # readings stop at 2 h
    outlets = [OutletSeries("p", "1", "n1", "energy_kwh", counter(2.0))]
    att, _ = attribute(_inputs(outlets, gpus), "job")
    rows = {r.entity: r for r in att.rows}
    assert rows["ns-a/pod-a"].it_kwh == pytest.approx(4.0)
    assert rows[UNALLOCATED].it_kwh == pytest.approx(4.0)
    assert rows["ns-a/pod-a"].peak_kw == pytest.approx(2.0)


def test_unknown_by_is_refused():
    with pytest.raises(ValueError, match="tenant, namespace, job, rack, hall"):
        attribute(_inputs([], []), "pod")


def test_each_halls_energy_carries_that_halls_pue():
    """One job on a node in each of two halls: its facility share is each part x its own hall's PUE."""
    from reports.attribution import add_facility

    gpus = [GpuSeries("n1", "0", A, "energy_kwh", counter(1.0)), GpuSeries("n2", "0", A, "energy_kwh", counter(1.0))]
    outlets = [OutletSeries("p", "1", "n1", "energy_kwh", counter(2.0)), OutletSeries("p", "2", "n2", "energy_kwh", counter(3.0))]
    inp = _inputs(outlets, gpus)
    inp.node_place = {"n1": ("h1", "r1"), "n2": ("h2", "r2")}
    inp.device_hall = {"p": "h1", "u": "h1"}
    att, _ = attribute(inp, "namespace")
    add_facility(att, EDGES, ["2026-01"] * 4, {"2026-01": 1.35}, {"2026-01": 0.5},
                 {"h1": {"2026-01": 1.2}, "h2": {"2026-01": 1.5}}, {"h1": {"2026-01": 0.4}, "h2": {"2026-01": 0.7}})
    rows = {r.entity: r for r in att.rows}
    assert rows["ns-a"].it_kwh == pytest.approx(20.0)
    assert rows["ns-a"].facility_kwh == pytest.approx(8.0 * 1.2 + 12.0 * 1.5)
    assert rows["ns-a"].co2_kg == pytest.approx(8.0 * 0.4 + 12.0 * 0.7)
    add_facility(att, EDGES, ["2026-01"] * 4, {"2026-01": 1.35}, {"2026-01": None})   # the site's, no CUE
    assert rows["ns-a"].facility_kwh == pytest.approx(20.0 * 1.35) and rows["ns-a"].co2_kg is None


def test_a_halls_meters_are_found_through_what_they_measure():
    from inventory.generate import SiteShape, dump_site, generate_site
    from inventory.loader import load_site_text
    from reports.attribution_build import meter_halls

    shape = SiteShape(halls=2, rows_per_hall=1, racks_per_row=1, ups_per_hall=2, cdus_per_hall=1, crahs_per_hall=1,
                      chillers_per_hall=1, bmc_per_rack=0)
    site = load_site_text(dump_site(generate_site(shape)))
    of = meter_halls(site)
    assert of["h01-meter-in-a"] == "h01" and of["h02-meter-in-b"] == "h02"     # site-level, via its transformer
    assert of["h02-ups-a01-meter"] == "h02"
    assert "meter-pv-1" not in of and "meter-water-1" not in of               # site-wide meters: no hall
