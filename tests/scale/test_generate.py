"""The site generator: the full campus has the brief's numbers and validates."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter

import pytest

from inventory.generate import FULL_SITE, dump_site, generate_site, iter_devices
from inventory.loader import load_site_text
from contract.protocols import PROTOCOLS
from inventory.topology import PowerGraph, endpoint_key


def test_full_site_counts_without_validation():
    data = generate_site(FULL_SITE)
    devices = list(iter_devices(data))
    kinds = Counter(d["kind"] for d in devices)
    polled = sum("protocol" in d for d in devices)
    racks = sum(len(r["racks"]) for h in data["halls"] for r in h["rows"])
    assert racks == 2400
    assert kinds["gpu_node"] == 43_200
    assert 5_500 <= kinds["pdu"] + kinds["ups"] <= 6_000
    assert 48_000 <= polled <= 55_000


def test_a_slice_validates_and_every_load_reaches_a_utility():
    shape = dataclasses.replace(FULL_SITE, halls=2, rows_per_hall=2, racks_per_row=3, nodes_per_rack=4, ups_per_hall=4)
    site = load_site_text(dump_site(generate_site(shape)), "slice.yaml")
    graph = PowerGraph(site)
    assert graph.find_cycle() is None
    assert not graph.orphans()
    roots = {d.id for d in site.all_devices() if d.kind == "utility"}
    for d in site.all_devices():
        if d.kind == "gpu_node":
            assert graph.ancestors(d.id) & roots, d.id


def _endpoints(data) -> Counter:
    return Counter(endpoint_key(d["protocol"], d.get("host"), d.get("port") or PROTOCOLS[d["protocol"]].default_port,
                                d.get("unit")) for d in iter_devices(data) if "protocol" in d)


@pytest.mark.parametrize("plan", ["production", "loopback"])
def test_full_site_gives_every_endpoint_its_own_address(plan):
    """The reviewer's count: 51,360 DCGM/Redfish/SNMP endpoints, only 33,120 distinct."""
    data = generate_site(dataclasses.replace(FULL_SITE, address_plan=plan))
    endpoints = _endpoints(data)
    assert None not in endpoints
    assert sum(endpoints.values()) >= 52_000
    dupes = [k for k, n in endpoints.items() if n > 1]
    assert dupes == []
    prefix = "127." if plan == "loopback" else "10."
    assert all(k[1].startswith(prefix) for k in endpoints)


def test_a_shape_the_plan_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="nodes=95 per rack"):
        generate_site(dataclasses.replace(FULL_SITE, halls=1, nodes_per_rack=95))


def test_loopback_plan_gives_unique_endpoints(tmp_path):
    out = tmp_path / "s.yaml"
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "generate", "--out", str(out), "--halls", "1",
                           "--rows", "2", "--racks", "2", "--nodes", "3", "--ups", "2", "--loopback"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    site = load_site_text(out.read_text(), str(out))  # refuses duplicate endpoints itself
    keys = Counter(endpoint_key(d.protocol, d.host, d.effective_port(), d.unit) for d in site.polled_devices())
    assert all(d.host.startswith("127.") for d in site.polled_devices())
    assert max(keys.values()) == 1
