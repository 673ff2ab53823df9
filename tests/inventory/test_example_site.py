"""The shipped example site loads, and its power chain is what the file says."""
from __future__ import annotations

import json
import os
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


#: the example site's credentials name these variables; check reads them as dcim run would
SECRETS_ENV = {"DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "admin", "DCIM_BMC_PASSWORD": "pw"}


def test_inventory_check_summary_counts():
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", str(EXAMPLE), "--json"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **SECRETS_ENV})
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


def test_inventory_check_fails_on_a_secret_dcim_run_could_not_read():
    env = {k: v for k, v in os.environ.items() if k not in SECRETS_ENV}
    env.update(DCIM_SNMP_COMMUNITY="public", DCIM_BMC_USER="admin")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", str(EXAMPLE)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "credentials." in lines[0] and ".password: environment variable DCIM_BMC_PASSWORD is not set" in lines[0]
    assert lines[0].startswith(f"{EXAMPLE}:27: ")
    skipped = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", "--no-secrets", str(EXAMPLE)],
                             capture_output=True, text=True, timeout=60, env=env)
    assert skipped.returncode == 0, skipped.stderr
