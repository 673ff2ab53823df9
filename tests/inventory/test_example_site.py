"""The shipped example site loads, and its power chain is what the file says."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from inventory import load_site
from inventory.topology import PowerGraph

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"


def test_example_site_is_valid_and_connected():
    site = load_site(EXAMPLE)
    graph = PowerGraph(site)
    assert graph.orphans() == []
    assert graph.find_cycle() is None
    # utility -> transformer -> UPS -> PDU -> node
    assert graph.depth == 5
    node = site.device("h1-r01-k01-n2")
    assert (node.hall, node.row, node.rack) == ("h1", "h1-r01", "h1-r01-k01")
    assert sorted(graph.upstream(node.id)) == ["h1-r01-k01-pdu-a", "h1-r01-k01-pdu-b"]
    assert [f.outlet for f in node.fed_by] == [2, 2]
    assert "h1-r01-k01-n2" in graph.downstream("ups-1a") and "h1-r01-k01-n2" in graph.downstream("tx-b")
    assert "ups-1b" not in graph.ancestors("h1-r01-k01-pdu-a")
    roles = {d.id: d.meter.role for d in site.all_devices() if d.meter}
    assert roles["meter-util-a"] == "boundary" and roles["meter-ups-1a"] == "it"


def test_inventory_check_summary_counts():
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", str(EXAMPLE), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    site = load_site(EXAMPLE)
    racks = site.racks()
    assert summary["racks"] == len(racks) == 6
    assert summary["by_kind"]["pdu"] == 2 * len(racks)
    assert summary["by_kind"]["gpu_node"] == sum(1 for d in site.all_devices() if d.kind == "gpu_node")
    assert summary["orphans"] == []
    assert summary["rack_capacity_kw"] == sum(k.rated_kw for _, _, k in racks)


def test_orphan_is_reported_not_fatal(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("site: {id: s}\ndevices:\n  - {id: util, kind: utility}\n  - {id: ups-1, kind: ups}\n")
    site = load_site(f)
    assert [d.id for d in PowerGraph(site).orphans()] == ["ups-1"]
