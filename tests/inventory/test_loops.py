"""Cooling loops in the inventory: references to a CDU's loops, rack inheritance, the loop index,
and the warnings ``dcim inventory check`` prints (refused references are cases/cooling_loop_refs)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from inventory import load_site
from inventory.generate import SiteShape, generate_site
from inventory.loops import LoopIndex, loop_warnings
from inventory.model import Site
from inventory.topology import PowerGraph, check_references

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"

TWO_LOOPS = """\
site: {id: s1}
devices:
  - {id: util, kind: utility}
  - {id: chiller-1, kind: chiller, fed_by: [util]}
halls:
  - id: h1
    devices:
      - id: cdu-1
        kind: cdu
        fed_by: [util]
        cooled_by: [chiller-1]
        loops:
          - {id: 1, rated_kw: 30, design_flow_lpm: 45, design_supply_c: 30}
          - {id: "2", rated_kw: 10}
      - {id: cdu-2, kind: cdu, fed_by: [util]}
    rows:
      - id: r1
        racks:
          - id: k1
            rated_kw: 20
            cooled_by: ["cdu-1:1"]
            devices:
              - {id: pdu-1, kind: pdu, fed_by: [util]}
              - {id: n1, kind: gpu_node, gpus: 8}
              - {id: n2, kind: gpu_node, gpus: 8, cooled_by: ["cdu-1:2"]}
          - id: k2
            rated_kw: 20
            devices:
              - {id: pdu-2, kind: pdu, fed_by: [util]}
              - {id: n3, kind: gpu_node, gpus: 8, cooled_by: ["cdu-1:2"]}
              - {id: n4, kind: gpu_node, gpus: 8, cooled_by: [cdu-2]}
"""


def _site(tmp_path, text=TWO_LOOPS) -> tuple[Site, Path]:
    f = tmp_path / "site.yaml"
    f.write_text(text)
    return load_site(f), f


def test_loop_refs_resolve_and_racks_pass_their_loop_to_their_nodes(tmp_path):
    site, _ = _site(tmp_path)
    assert [lp.id for lp in site.device("cdu-1").loops] == ["1", "2"]  # `id: 1` in YAML is the tag "1"
    assert site.device("cdu-2").loop_ids() == ["1"]                   # no loops: = one implicit loop
    n1, n2 = site.device("n1"), site.device("n2")
    assert n1.cooled_by == [] and [str(c) for c in n1.cooling()] == ["cdu-1:1"]  # from its rack
    assert [str(c) for c in n2.cooling()] == ["cdu-1:2"]                        # its own wins
    assert site.device("pdu-1").cooling() == []                                  # a PDU is not on the loop
    assert n1.cooler_ids() == ["cdu-1"] and site.device("n4").cooler_ids() == ["cdu-2"]
    graph = PowerGraph(site)
    assert graph.cooled_by("n1") == ["cdu-1"]
    assert {"n1", "n2", "n3"} <= graph.downstream("chiller-1") and "n4" not in graph.downstream("chiller-1")

    index = LoopIndex(site)
    assert index.loops() == [("cdu-1", "1"), ("cdu-1", "2"), ("cdu-2", "1")]
    assert index.devices_on(("cdu-1", "1")) == ["n1"]
    assert [d.id for d in index.gpu_nodes_on(("cdu-1", "2"))] == ["n2", "n3"]
    assert index.racks_on(("cdu-1", "2")) == ["k1", "k2"]
    assert index.racks_on(("cdu-1", "1")) == ["k1"]
    assert index.loops_of("n4") == [("cdu-2", "1")]        # plain "cdu-2": its only loop
    assert index.loop(("cdu-1", "1")).design_flow_lpm == 45
    assert index.loop(("cdu-2", "1")).design_flow_lpm is None


def test_check_warns_about_a_cdu_without_primary_side_and_an_overloaded_loop(tmp_path):
    site, f = _site(tmp_path)
    warnings = loop_warnings(site)
    assert [m for _, m in warnings] == [
        "loop cdu-1:2 is rated 10 kW but its 2 rack(s) are rated 40 kW together",
        "CDU 'cdu-2' has no primary side: name the chiller or dry cooler whose facility water cools it in cooled_by",
    ]
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", str(f), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr  # warnings do not refuse the file
    assert json.loads(proc.stdout)["warnings"] == [
        f"{f}:14: halls[0].devices[0].loops[1].rated_kw: " + warnings[0][1],
        f"{f}:15: halls[0].devices[1].cooled_by: " + warnings[1][1],
    ]


def test_example_site_has_its_loops_and_no_warnings():
    site = load_site(EXAMPLE)
    index = LoopIndex(site)
    assert index.loops() == [("cdu-1", "1"), ("cdu-2", "1")]
    nodes = [d for d in site.all_devices() if d.kind == "gpu_node"]
    assert all(len(index.loops_of(n.id)) == 1 for n in nodes)
    assert sum(len(index.gpu_nodes_on(k)) for k in index.loops()) == len(nodes)
    assert index.loops_of("h1-r01-k01-n1") == [("cdu-1", "1")] and index.loops_of("h1-r02-k03-n4") == [("cdu-2", "1")]
    assert loop_warnings(site, index) == []


def test_generated_site_gives_every_rack_one_loop_within_its_rating():
    shape = SiteShape(halls=2, rows_per_hall=2, racks_per_row=5, nodes_per_rack=2, ups_per_hall=2,
                      cdus_per_hall=2, loops_per_cdu=2, chillers_per_hall=1, crahs_per_hall=1)
    site = Site.model_validate(generate_site(shape))
    assert check_references(site) == []
    index = LoopIndex(site)
    assert len(index.loops()) == 2 * 2 * 2
    racks = [k.id for _, _, k in site.racks()]
    on = [r for key in index.loops() for r in index.racks_on(key)]
    assert sorted(on) == sorted(racks)          # every rack on exactly one loop
    assert all(index.racks_on(key) for key in index.loops())  # and every loop carries racks
    assert loop_warnings(site, index) == []
    lp = index.loop(index.loops()[0])
    assert lp.rated_kw and lp.design_flow_lpm and lp.design_supply_c is not None
