"""Sharding: every device in exactly one shard; growing N→N+1 moves about 1/(N+1)."""
from __future__ import annotations

import dataclasses

import pytest

from collectors.sharding import assign, shard_key, shard_of
from dcim.service import select_shard
from inventory.generate import FULL_SITE, dump_site, generate_site
from inventory.loader import load_site_text

SHAPE = dataclasses.replace(FULL_SITE, halls=3, rows_per_hall=4, racks_per_row=10, nodes_per_rack=8, ups_per_hall=8)


@pytest.fixture(scope="module")
def site():
    return load_site_text(dump_site(generate_site(SHAPE)), "generated.yaml")


def test_every_device_in_exactly_one_shard(site):
    polled = site.polled_devices()
    for n in range(1, 9):
        seen: dict[str, int] = {}
        for i in range(n):
            for d in select_shard(site, (i, n)):
                assert d.id not in seen, f"{d.id} in shards {seen[d.id]} and {i} of {n}"
                seen[d.id] = i
        assert set(seen) == {d.id for d in polled}


def test_growing_moves_only_the_new_shards_share(site):
    polled = site.polled_devices()
    for n in range(1, 8):
        before, after = assign(polled, n), assign(polled, n + 1)
        moved = [d for d in before if before[d] != after[d]]
        # a device only ever moves to the new shard, never between old ones
        assert all(after[d] == n for d in moved)
        share = len(moved) / len(polled)
        # keys are gateways for Modbus, so the share is noisy around 1/(n+1); ±40 % relative is generous
        assert abs(share - 1 / (n + 1)) < 0.4 / (n + 1), (n, share)


def test_shards_are_balanced(site):
    polled = site.polled_devices()
    sizes = [list(assign(polled, 4).values()).count(i) for i in range(4)]
    assert min(sizes) > 0.8 * len(polled) / 4, sizes


def test_a_modbus_gateway_belongs_to_one_shard(site):
    by_gateway: dict[str, set[int]] = {}
    placement = assign(site.polled_devices(), 5)
    for d in site.polled_devices():
        if d.protocol == "modbus":
            by_gateway.setdefault(shard_key(d), set()).add(placement[d.id])
    assert by_gateway and all(len(s) == 1 for s in by_gateway.values())


def test_shard_of_rejects_nonsense():
    with pytest.raises(ValueError):
        shard_of("x", 0)
    assert shard_of("anything", 1) == 0
