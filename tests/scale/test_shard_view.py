"""A shard's view of the site: its own devices and everything upstream of them, nothing else.

Loaded both ways (the YAML itself, and the compiled cache with its per-hall pruning), the
view must poll exactly the devices the whole site gives the shard, and every local device
must see the same power and cooling chain as in the whole site (what suppression walks).
"""
from __future__ import annotations

import dataclasses

import pytest

from collectors.sharding import in_shard
from dcim.service import select_shard
from inventory.generate import FULL_SITE, dump_site, generate_site
from inventory import site_cache
from inventory.loader import load_site
from inventory.subset import LEAF_KINDS
from inventory.topology import PowerGraph

SHAPE = dataclasses.replace(FULL_SITE, halls=2, rows_per_hall=4, racks_per_row=8, nodes_per_rack=8, ups_per_hall=4)


@pytest.fixture(scope="module")
def site_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("site") / "site.yaml"
    path.write_text(dump_site(generate_site(SHAPE)))
    return path


@pytest.mark.parametrize("cache", ["off", "on"])
@pytest.mark.parametrize("shard", [(0, 3), (2, 3), (1, 2)])
def test_a_shard_keeps_its_devices_and_their_chains(site_file, tmp_path, monkeypatch, cache, shard):
    monkeypatch.setenv("DCIM_SITE_CACHE", "off" if cache == "off" else str(tmp_path / "cache"))
    monkeypatch.setattr(site_cache, "MIN_BYTES", 0)  # this small site is cached too
    whole = load_site(site_file)
    if cache == "on":
        load_site(site_file)  # the first load writes the cache entry; the views below read it
        assert list((tmp_path / "cache").glob("*.marshal")), "the site file is big enough to be cached"
    local = in_shard(shard)
    view = load_site(site_file, local=local)

    mine = {d.id for d in select_shard(whole, shard)}
    assert {d.id for d in select_shard(view, shard)} == mine
    assert {d.id for d in view.all_devices() if local(d)} == mine

    full_graph, view_graph = PowerGraph(whole), PowerGraph(view)
    wanted = set(mine)
    for dev_id in mine:
        up = full_graph.ancestors(dev_id)
        assert view_graph.ancestors(dev_id) == up, dev_id
        assert view_graph.upstream(dev_id) == full_graph.upstream(dev_id), dev_id
        wanted |= up
        node = whole.device(dev_id).labels.get("node")  # a BMC or agent: a view of that node
        if node:
            assert view.has_device(node)
            wanted |= {node} | full_graph.ancestors(node)
    kept = {d.id for d in view.all_devices()}
    assert kept <= {d.id for d in whole.all_devices()}
    others = kept - wanted
    assert not others, f"devices neither local nor upstream of a local one: {sorted(others)[:5]}"
    assert not [d for d in view.all_devices() if d.kind in LEAF_KINDS and d.id not in wanted]
    assert len(kept) < 0.7 * len(whole.all_devices()), (len(kept), len(whole.all_devices()))
    # location and racks as in the whole site, for the tags every sample carries
    for dev_id in mine:
        assert view.location_tags(view.device(dev_id)) == whole.location_tags(whole.device(dev_id))


def test_one_shard_is_the_whole_site(site_file, monkeypatch):
    monkeypatch.setenv("DCIM_SITE_CACHE", "off")
    assert in_shard((0, 1)) is None
    whole = load_site(site_file)
    assert len(load_site(site_file, local=None).all_devices()) == len(whole.all_devices())
