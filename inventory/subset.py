"""A collector shard's share of the site: its own devices and every device upstream of one.

Why: every ``dcim run --shard i/N`` used to load and keep the whole site (the full
site's 52,707 device models: 428-503 MiB RSS per shard), although a shard polls 1/N of
the devices and its rule engine needs only what suppression walks up from them: their
power feeds (with a rack's PDUs for a node that names none), their coolers and loops,
and those devices' own feeds and coolers up to the sources.  Roots firing on devices
of other shards reach a shard over the broker, keyed by device id, so it needs the
chain's devices but not the rest of the site.

Two steps, so the peak stays near what is kept:

- :func:`prune_leaves` while the compiled cache is read hall by hall: IT load
  (``gpu_node``, ``server``, ``switch``) and environment sensors are never upstream of
  anything, so those of other shards are dropped from the hall's plain data before it is
  validated (their models are never built);
- :func:`keep_upstream` on the site that is left: what is neither local nor upstream of
  a local device (another shard's meters, PDUs of racks with no local device, …) goes too.

What stays is the same model, so every consumer (targets, rules, suppression, loops)
reads it as it reads a whole site; a shard's ``absent`` rules no longer expect the
devices of other shards.
"""
from __future__ import annotations

from typing import Callable

from inventory.model import RACK_COOLED_KINDS, Device, Site

__all__ = ["LEAF_KINDS", "prune_leaves", "keep_upstream"]

#: kinds that feed, cool or carry nothing: no other device's chain passes through them
LEAF_KINDS = RACK_COOLED_KINDS | {"env_sensor"}

Local = Callable[[Device], bool]


def _filter(devices: list[Device], keep: Callable[[Device], bool]) -> int:
    before = len(devices)
    devices[:] = [d for d in devices if keep(d)]
    return before - len(devices)


def _containers(node) -> list[list]:
    """Every device list under a hall, a validated one or its plain data (its own, its rows', its racks')."""
    get = (lambda n, k: n.get(k) or []) if isinstance(node, dict) else getattr
    out = [get(node, "devices")]
    for row in get(node, "rows"):
        out.append(get(row, "devices"))
        out.extend(get(rack, "devices") for rack in get(row, "racks"))
    return out


class _Unvalidated:
    """A device's plain data read as a :class:`Device` for the locality test (id, kind,
    protocol, address): building a real model per node cost more than validating it."""

    __slots__ = ("id", "kind", "protocol", "host", "port", "serial", "unit", "labels")
    effective_port = Device.effective_port

    def __init__(self, d: dict) -> None:
        self.id, self.kind = d["id"], d.get("kind")
        self.protocol = d.get("protocol", "none")
        self.host, self.port, self.serial, self.unit = d.get("host"), d.get("port"), d.get("serial"), d.get("unit")
        self.labels = d.get("labels") or {}


def prune_leaves(hall: dict, local: Local) -> int:
    """Drop, in place, the leaf devices (:data:`LEAF_KINDS`) of a hall's plain data (as the
    compiled cache holds it, before validation) that are neither local nor the node a local
    BMC or agent in the hall is a view of (``labels.node``); how many.

    Before validation, so the models of other shards' nodes are never built: the test of
    locality reads each device's plain fields (:class:`_Unvalidated`: id, protocol and
    address are all :func:`collectors.sharding.shard_key` reads); the data passed every
    check when the cache entry was written.
    """
    lists = [devices for devices in _containers(hall) if devices]
    mine: set[str] = set()
    views: set[str] = set()
    for devices in lists:
        for d in devices:
            if local(_Unvalidated(d)):
                mine.add(d["id"])
                node = (d.get("labels") or {}).get("node")
                if node:
                    views.add(node)
    keep = lambda d: d.get("kind") not in LEAF_KINDS or d["id"] in mine or d["id"] in views  # noqa: E731
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
