"""What derived metrics need from the inventory, as plain data, built once per inventory load.

Why: on the full site (≈52,700 polled devices, 24 halls) walking the pydantic
models every interval cost ≈51 s of CPU per 10 s interval, 83 % of it building a
:class:`~inventory.topology.PowerGraph` per hall and reading device attributes
through pydantic (14.5 M calls).  None of that changes while the inventory is
loaded, so :class:`ChainPlan` answers every inventory question
:mod:`derived.power_chain` asks (which meters, UPSes, PDUs and nodes count
for which hall, how cooling is shared, the redundancy groups and usable
capacities) once, as lists of ids and numbers; the per-interval work is then
only looking readings up.

Orders are the inventory's (``Site.all_devices()``), so ``sources`` lists read the
same as they always did.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from inventory.model import Site
from inventory.topology import PowerGraph

__all__ = ["ChainPlan", "MeterEntry", "RackPlan", "UpsPlan", "TransformerPlan", "Allocation", "usable_capacity",
           "COOLING_KINDS", "PDU_KINDS", "IT_NODE_KINDS", "LOAD_KINDS", "device_rated_w"]

COOLING_KINDS = ("chiller", "cdu", "crah", "crac", "dry_cooler", "cooling_tower")
PDU_KINDS = ("pdu", "rpp", "busway")
IT_NODE_KINDS = ("gpu_node", "server")
#: what a rack's allocation counts: the devices in it that draw power (its PDUs distribute it)
LOAD_KINDS = ("gpu_node", "server", "switch")


def usable_capacity(sides: list[list[float]], redundancy: str) -> float:
    """Capacity that remains after the failure the redundancy level promises to survive.

    ``sides`` groups unit ratings by independent source (e.g. PDUs by the UPS
    feeding them; for a UPS group each UPS is its own side).
    N: all units; N+1: all units but the largest; 2N: the weakest side alone;
    2N+1: the weakest side less its largest unit (when it has more than one).
    """
    units = [r for side in sides for r in side]
    if not units:
        return 0.0
    if redundancy == "N+1":
        return sum(units) - max(units) if len(units) > 1 else 0.0
    if redundancy == "2N":
        return min(sum(side) for side in sides) if len(sides) > 1 else 0.0
    if redundancy == "2N+1":
        if len(sides) < 2:
            return 0.0
        return min(sum(s) - (max(s) if len(s) > 1 else 0.0) for s in sides)
    return float(sum(units))


@dataclass(frozen=True, slots=True)
class MeterEntry:
    id: str
    role: str
    category: int | None
    hall: str | None            # its own hall, or the hall of the device it measures
    commissioned: dt.date | None
    decommissioned: dt.date | None

    def active(self, today: dt.date | None) -> bool:
        if today is None:
            return True
        if self.commissioned and self.commissioned > today:
            return False
        return not (self.decommissioned and self.decommissioned <= today)


@dataclass(frozen=True, slots=True)
class UpsPlan:
    id: str
    hall: str | None
    rated_w: float | None
    members: tuple[str, ...]     # its redundancy group (itself included), inventory order
    redundancy: str
    group_ratings: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Allocation:
    """Nameplate the inventory connects below an element, and how many connected devices had none."""

    w: float = 0.0
    unrated: int = 0

    def __add__(self, other: "Allocation") -> "Allocation":
        return Allocation(self.w + other.w, self.unrated + other.unrated)


@dataclass(frozen=True, slots=True)
class TransformerPlan:
    id: str
    hall: str | None
    rated_w: float | None
    meters: tuple[str, ...]       # the meters that measure it (its load)
    members: tuple[str, ...]      # transformers feeding one UPS redundancy group back each other up
    redundancy: str
    group_ratings: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class RackPlan:
    hall: str
    row: str
    id: str
    redundancy: str
    rated_w: float | None
    usable_w: float | None       # what the rack can carry with its redundancy kept (load-independent)
    n_sides: int
    pdus: tuple[tuple[str, float | None], ...]   # (pdu id, its rating in W)


def _rated_w(rated_kw: float | None) -> float | None:
    return rated_kw * 1000.0 if rated_kw else None


def device_rated_w(dev) -> float | None:
    """A device's nameplate in W: ``rated_kw``; for a transformer without one, ``rated_kva`` at
    unity power factor (its kVA is the limit, and IT loads run near PF 1; declare ``rated_kw``
    to say otherwise)."""
    if dev.rated_kw:
        return dev.rated_kw * 1000.0
    if dev.kind == "transformer" and dev.rated_kva:
        return dev.rated_kva * 1000.0
    return None


class ChainPlan:
    """The inventory side of every derived computation, as plain data (see module doc)."""

    def __init__(self, site: Site, graph: PowerGraph | None = None) -> None:
        graph = graph or PowerGraph(site)
        self.site_id = site.site.id
        self.halls: tuple[str, ...] = tuple(h.id for h in site.halls)
        devices = site.all_devices()
        hall_of = {d.id: d.hall for d in devices}
        self.kind_of: dict[str, str] = {d.id: d.kind for d in devices}
        self.meters: tuple[MeterEntry, ...] = tuple(
            MeterEntry(d.id, d.meter.role, d.meter.category,
                       d.hall or (hall_of.get(d.measures) if d.measures else None),
                       d.meter.commissioned, d.meter.decommissioned)
            for d in devices if d.kind == "meter" and d.meter is not None)
        #: kind -> [(id, hall)] in inventory order
        by_kind: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for d in devices:
            by_kind[d.kind].append((d.id, d.hall))
        self._order = {d.id: i for i, d in enumerate(devices)}
        self._by_kind = dict(by_kind)
        self._devices_cache: dict[tuple, list[str]] = {}
        # IT nodes, category 3: a server whose labels name another (existing) node is that node's BMC
        known = set(hall_of)
        self.bmcs: dict[str, list[str]] = defaultdict(list)
        for d in devices:
            node = d.labels.get("node")
            if node and node != d.id:
                self.bmcs[node].append(d.id)
        self.bmcs = dict(self.bmcs)
        not_bmc = {d.id for d in devices if d.kind in IT_NODE_KINDS
                   and (not d.labels.get("node") or d.labels["node"] not in known)}
        self._it_nodes = {h: [i for i in self.devices(IT_NODE_KINDS, h) if i in not_bmc] for h in (None, *self.halls)}
        # cooling: (device, kind, share of its power charged to the hall)
        cooling = [(d.id, d.kind, d.hall) for d in devices if d.kind in COOLING_KINDS]
        self._cooling_all = [(i, k, 1.0) for i, k, _ in cooling]
        self._cooling: dict[str, list[tuple[str, str, float]]] = {}
        if len(self.halls) > 1:
            served_by = {i: {hall_of[c] for c in graph.downstream(i) if hall_of.get(c)}
                         for i, _, h in cooling if h is None}
            for hall in self.halls:
                out = []
                for i, k, h in cooling:
                    if h == hall:
                        out.append((i, k, 1.0))
                    elif h is None and hall in served_by[i]:
                        out.append((i, k, 1.0 / len(served_by[i])))
                self._cooling[hall] = out
        # capacity
        self.ups = self._ups_plans(site, graph)
        self.racks = self._rack_plans(site, graph)
        self.hall_rows = {h.id: [(r.id, [k.id for k in r.racks], {k.redundancy for k in r.racks}) for r in h.rows]
                          for h in site.halls}
        self.hall_rated_w = {h.id: _rated_w(h.rated_kw) for h in site.halls}
        rack_of = {d.id: d.rack for d in devices}
        self.loose_pdus = {h: [p for p in self.devices(PDU_KINDS, h) if not rack_of[p]] for h in self.halls}
        self.allocated = self._allocations(site, graph, devices, known)
        self.transformers = self._transformer_plans(site, graph)

    # -- selections (inventory order) ------------------------------------------------
    def devices(self, kinds: tuple[str, ...], hall: str | None) -> list[str]:
        key = (kinds, hall)
        cached = self._devices_cache.get(key)
        if cached is None:
            found = [(i, h) for k in kinds for i, h in self._by_kind.get(k, ())]
            if len(kinds) > 1:
                found.sort(key=lambda e: self._order[e[0]])
            cached = self._devices_cache[key] = [i for i, h in found if hall is None or h == hall]
        return cached

    def meter_ids(self, role: str, hall: str | None, today: dt.date | None, category: int | None = None) -> list[str]:
        return [m.id for m in self.meters
                if m.role == role and m.active(today) and (category is None or m.category == category)
                and (hall is None or m.hall == hall)]

    def it_nodes(self, hall: str | None) -> list[str]:
        return self._it_nodes[hall] if hall in self._it_nodes else []

    def cooling_devices(self, hall: str | None) -> list[tuple[str, str, float]]:
        """(device, kind, share of its power charged to ``hall``): a chiller serving several halls is split evenly."""
        if hall is None or len(self.halls) <= 1:
            return self._cooling_all
        return self._cooling.get(hall, [])

    # -- capacity ------------------------------------------------------------------------
    def _ups_plans(self, site: Site, graph: PowerGraph) -> list[UpsPlan]:
        """UPSes that feed the two sides of a redundant rack back each other up (one group)."""
        ups_ids = self.devices(("ups",), None)
        parent = {u: u for u in ups_ids}

        def find(u: str) -> str:
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        redundancy: dict[str, str] = {}
        for _, _, rack in site.racks():
            if rack.redundancy == "N":
                continue
            upses = sorted({f for p in graph.rack_pdus.get(rack.id, []) for f in graph.upstream(p) if f in parent})
            for u in upses:
                redundancy.setdefault(u, rack.redundancy)
            for a, b in zip(upses, upses[1:]):
                parent[find(a)] = find(b)
        groups: dict[str, list[str]] = defaultdict(list)
        for u in parent:
            groups[find(u)].append(u)
        out = []
        for u in parent:
            dev = site.device(u)
            members = tuple(groups[find(u)])
            red = redundancy.get(u, "N") if len(members) > 1 else "N"
            out.append(UpsPlan(u, dev.hall, _rated_w(dev.rated_kw), members, red,
                               tuple(_rated_w(site.device(m).rated_kw) for m in members)))
        return out

    def _allocations(self, site: Site, graph: PowerGraph, devices, known: set[str]) -> dict[str, Allocation]:
        """id -> allocation, for every PDU, UPS, transformer and rack (reports/README.md, "Capacity").

        PDU, UPS, transformer: Σ nameplate of the devices it feeds directly (its children in
        the power chain: a UPS's PDUs, a transformer's UPSes and plant).  Rack: Σ nameplate of
        its power-drawing devices (``LOAD_KINDS``).  A BMC (a ``server`` whose ``labels.node``
        names a node) is part of its node, not a load of its own.
        """
        out: dict[str, Allocation] = {}
        fed = ("ups", "transformer", *PDU_KINDS)
        for d in devices:
            node = d.labels.get("node")
            if d.kind == "meter" or (node and node != d.id and node in known):
                continue
            share = Allocation(r, 0) if (r := device_rated_w(d)) is not None else Allocation(0.0, 1)
            for u in graph.upstream(d.id):
                if self.kind_of.get(u) in fed:
                    out[u] = out.get(u, Allocation()) + share
            if d.rack and d.kind in LOAD_KINDS:
                out[d.rack] = out.get(d.rack, Allocation()) + share
        return out

    def _transformer_plans(self, site: Site, graph: PowerGraph) -> list[TransformerPlan]:
        """Transformers feeding the members of one UPS redundancy group back each other up."""
        txs = self.devices(("transformer",), None)
        meters: dict[str, list[str]] = defaultdict(list)
        for m in site.all_devices():
            if m.kind == "meter" and m.measures in self.kind_of and self.kind_of[m.measures] == "transformer":
                meters[m.measures].append(m.id)
        group_of: dict[str, tuple[tuple[str, ...], str]] = {}
        for ups in self.ups:
            if len(ups.members) < 2:
                continue
            feeding = tuple(t for t in txs if any(t in graph.upstream(u) for u in ups.members))
            if len(feeding) > 1:
                for t in feeding:
                    group_of.setdefault(t, (feeding, ups.redundancy))
        out = []
        for t in txs:
            dev = site.device(t)
            members, red = group_of.get(t, ((t,), "N"))
            out.append(TransformerPlan(t, dev.hall, device_rated_w(dev), tuple(meters.get(t, ())), members, red,
                                       tuple(device_rated_w(site.device(m)) for m in members)))
        return out

    def _rack_plans(self, site: Site, graph: PowerGraph) -> list[RackPlan]:
        out = []
        for hall, row, rack in site.racks():
            pdus = graph.rack_pdus.get(rack.id, [])
            sides: dict[tuple[str, ...], list[float]] = defaultdict(list)
            ratings = []
            for p in pdus:
                r = _rated_w(site.device(p).rated_kw)
                ratings.append((p, r))
                if r is not None:
                    sides[tuple(sorted(graph.upstream(p))) or (p,)].append(r)
            rated = _rated_w(rack.rated_kw)
            usable = usable_capacity(list(sides.values()), rack.redundancy) if sides else rated
            if usable is not None and rated is not None:
                usable = min(usable, rated)
            out.append(RackPlan(hall.id, row.id, rack.id, rack.redundancy, rated, usable, max(len(sides), 1),
                                tuple(ratings)))
        return out
