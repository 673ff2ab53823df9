"""A collector shard's share of the site: its own devices and every device upstream of one.

Why: every ``dcim run --shard i/N`` used to load and keep the whole site (the full
site's 52,707 device models: 428-503 MiB RSS per shard), although a shard polls 1/N of
the devices and its rule engine needs only what suppression walks up from them: their
power feeds (with a rack's PDUs for a node that names none), their coolers and loops,
and those devices' own feeds and coolers up to the sources.  Roots firing on devices
of other shards reach a shard over the broker, keyed by device id, so it needs the
chain's devices but not the rest of the site.

Two steps, so the peak stays near what is kept:

- :func:`prune_leaves` while the site is read hall by hall (the cache path): IT load
  (``gpu_node``, ``server``, ``switch``) and environment sensors are never upstream of
  anything, so those of other shards are dropped before the next hall is read;
- :func:`keep_upstream` on the site that is left: what is neither local nor upstream of
  a local device (another shard's meters, PDUs of racks with no local device, …) goes too.

What stays is the same model, so every consumer (targets, rules, suppression, loops)
reads it as it reads a whole site; a shard's ``absent`` rules no longer expect the
devices of other shards.
"""
from __future__ import annotations

from typing import Callable

from inventory.model import RACK_COOLED_KINDS, Device, Hall, Site

__all__ = ["LEAF_KINDS", "prune_leaves", "keep_upstream"]

#: kinds that feed, cool or carry nothing: no other device's chain passes through them
LEAF_KINDS = RACK_COOLED_KINDS | {"env_sensor"}

Local = Callable[[Device], bool]


def _filter(devices: list[Device], keep: Callable[[Device], bool]) -> int:
    before = len(devices)
    devices[:] = [d for d in devices if keep(d)]
    return before - len(devices)


def _containers(node) -> list[list[Device]]:
    """Every device list under a hall (its own, its rows', its racks')."""
    out = [node.devices]
    for row in node.rows:
        out.append(row.devices)
        out.extend(rack.devices for rack in row.racks)
    return out


def prune_leaves(hall: Hall, local: Local) -> int:
    """Drop, in place, the hall's leaf devices (:data:`LEAF_KINDS`) that are neither local nor
    the node a local BMC or agent in the hall is a view of (``labels.node``); how many."""
    lists = _containers(hall)
    mine = {d.id for devices in lists for d in devices if local(d)}
    views = {d.labels["node"] for devices in lists for d in devices if d.id in mine and d.labels.get("node")}
    keep = lambda d: d.kind not in LEAF_KINDS or d.id in mine or d.id in views  # noqa: E731
    return sum(_filter(devices, keep) for devices in lists)


def keep_upstream(site: Site, local: Local) -> tuple[int, int]:
    """Keep, in place, only the local devices and those upstream of one; (kept, dropped).

    Upstream is what :class:`inventory.topology.PowerGraph` walks for suppression: feeds
    (a rack's PDUs for a load in the rack that names none) and coolers, transitively,
    plus the node a local BMC or agent is a view of (``labels.node``).
    """
    from inventory.topology import PowerGraph  # the one definition of "upstream"

    graph = PowerGraph(site)
    wanted: set[str] = set()
    for dev in site.all_devices():
        if local(dev):
            wanted.add(dev.id)
            wanted |= graph.ancestors(dev.id)
            node = dev.labels.get("node")
            if node and site.has_device(node):
                wanted.add(node)
                wanted |= graph.ancestors(node)
    keep = lambda d: d.id in wanted  # noqa: E731
    dropped = _filter(site.devices, keep)
    for hall in site.halls:
        dropped += sum(_filter(devices, keep) for devices in _containers(hall))
    site._index()
    return len(site.all_devices()), dropped
