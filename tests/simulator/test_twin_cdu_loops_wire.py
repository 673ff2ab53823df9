"""Every loop the generated site declares is read over Modbus from its CDU's twin registers.

The full-site generator gives each CDU two secondary loops; its register map must carry both,
or loop 2's figures would come from GPU readings alone. Twin → Modbus → collector, on a slice.
"""
from __future__ import annotations


import pytest

from contract import cooling as cc
from inventory.generate import SiteShape, generate_site
from inventory.loops import LoopIndex
from inventory.model import Site
from localservers.site import relocate_ports
from localservers.twin import TwinThread
from testkit.collect import poll_device


def _slice() -> Site:
    shape = SiteShape(halls=1, rows_per_hall=2, racks_per_row=2, nodes_per_rack=2, ups_per_hall=2,
                      cdus_per_hall=2, crahs_per_hall=1, chillers_per_hall=1, bmc_per_rack=0,
                      loops_per_cdu=2, address_plan="loopback")
    return relocate_ports(Site.model_validate(generate_site(shape)))


def test_loops_per_cdu_without_a_template_is_refused():
    with pytest.raises(ValueError, match="loops_per_cdu must be one of"):
        SiteShape(loops_per_cdu=3)


def test_every_generated_loop_gets_flow_and_temperatures_from_its_cdu():
    site = _slice()
    index = LoopIndex(site)
    cdus = [d for d in site.all_devices() if d.kind == "cdu"]
    assert len(cdus) == 2 and all(d.profile == "template_cdu_2loop" for d in cdus)
    with TwinThread(site) as twin:
        for cdu in cdus:
            declared = [k[1] for k in index.loops_of_cdu(cdu.id)]
            assert declared == ["1", "2"]
            samples = poll_device(site, cdu.id)
            secondary = {s.tags[cc.LOOP]: s.fields for s in samples
                         if s.tags.get(cc.SIDE) == cc.SECONDARY and cc.FLOW_LPM in s.fields}
            assert sorted(secondary) == declared, cdu.id
            truth = twin.twin.model.cooling[cdu.id].loops
            for loop in declared:
                fields = secondary[loop]
                assert fields[cc.FLOW_LPM] > 0, (cdu.id, loop)
                assert fields[cc.FLOW_LPM] == pytest.approx(truth[loop].flow_lpm, abs=0.06), (cdu.id, loop)
                assert fields[cc.SUPPLY_TEMP_C] == pytest.approx(truth[loop].supply_c, abs=0.06), (cdu.id, loop)
                assert fields[cc.RETURN_TEMP_C] == pytest.approx(truth[loop].return_c, abs=0.06), (cdu.id, loop)
