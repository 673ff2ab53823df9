"""Derived power-chain metrics: facility and IT power, PUE, pPUE, load vs capacity, headroom.

Everything here is a *pure* function of the inventory (the single source of
truth for what is metered where and how much each element is rated for) and a
snapshot of latest readings.  No I/O, no clock: :mod:`derived.job` keeps the
snapshot up to date from the collectors' samples and calls these functions on
a timer, and the tests call them directly with hand-written readings so every
number can be checked by hand.

Readings are keyed ``(measurement, device, component_tags, field) -> value``
where ``component_tags`` is a sorted tuple of the tags that name a part of the
device (``phase``, ``outlet``, ``pdu``, ``stage`` ...): location tags are
dropped because the inventory already knows where a device is.

Definitions (ISO/IEC 30134-2 for PUE categories):

* facility power: sum of the ``boundary`` meters' total ``power_w``.
* IT power, category 1: IT meters of category 1 (UPS output meters), or the
  UPSes' own output power when there are none; category 2: IT meters of
  category 2, or the sum of PDU inlet power; category 3: IT meters of
  category 3, or node input power (``node`` ``power_w``), or, lacking that,
  the sum of the node's GPU power.  The reported ``it_w`` is the lowest
  category that has data; the others are reported as ``it_cat<N>_w``.
* instantaneous PUE = facility / IT; pPUE(cooling) = (IT + cooling) / IT where
  cooling is cooling-role meters or the chiller/CDU/CRAH ``power_w``.
* headroom respects redundancy: the load must still fit when a side (2N) or
  the largest unit (N+1) is lost.  See :func:`usable_capacity`.

Each derived value carries ``sources`` (the ids it was computed from) and
``missing`` (how many expected inputs had no fresh reading) so a dashboard can
tell a real dip from a meter that stopped answering.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from contract.sample import Sample
from inventory.model import Device, Site
from inventory.topology import PowerGraph

__all__ = [
    "IDENTITY_TAGS", "ReadingKey", "Readings", "Derived", "ReadingIndex", "usable_capacity",
    "facility_power", "it_power", "cooling_power", "renewable_power", "capacity_samples",
    "power_samples", "compute_all",
]

#: tags that say *where* a device is or *what* it is, not which part of it
IDENTITY_TAGS = frozenset({"site", "hall", "row", "rack", "device", "vendor", "model", "kind", "host",
                           "uuid", "serial", "protocol"})
ReadingKey = tuple[str, str, tuple[tuple[str, str], ...], str]
Readings = Mapping[ReadingKey, float]

_COOLING_KINDS = ("chiller", "cdu", "crah", "crac", "dry_cooler", "cooling_tower")
_PDU_KINDS = ("pdu", "rpp", "busway")
_IT_NODE_KINDS = ("gpu_node", "server")
_NOT_INLET = frozenset({"outlet", "branch", "bank", "sensor"})
_NOT_WHOLE_DEVICE = frozenset({"pump", "fan", "sensor", "compressor", "outlet", "branch", "bank", "gpu", "psu"})


@dataclass(frozen=True)
class Derived:
    """One derived quantity with its provenance."""

    value: float | None
    sources: tuple[str, ...] = ()
    missing: int = 0

    @property
    def sources_text(self) -> str:
        return ",".join(self.sources)


class ReadingIndex:
    """Readings grouped by (measurement, device) so per-device sums are cheap."""

    def __init__(self, readings: Readings) -> None:
        idx: dict[tuple[str, str], list[tuple[dict[str, str], str, float]]] = defaultdict(list)
        for (meas, dev, comp, fld), value in readings.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            idx[(meas, dev)].append((dict(comp), fld, float(value)))
        self._idx = dict(idx)

    def power(self, measurement: str, device: str, select: Callable[[dict[str, str]], bool] = lambda c: True,
              field: str = "power_w") -> float | None:
        """Whole-device ``field`` among the entries ``select`` keeps.

        A series without a ``phase`` tag is a total; when a device only reports
        per-phase values (UPS output, some meters) their sum is the total.
        """
        entries = [(c, v) for c, f, v in self._idx.get((measurement, device), ()) if f == field and select(c)]
        whole = [v for c, v in entries if "phase" not in c]
        if whole:
            return sum(whole)
        parts = [v for c, v in entries if "phase" in c]
        return sum(parts) if parts else None

    def has(self, measurement: str, device: str) -> bool:
        return (measurement, device) in self._idx


def _sum(ids: Iterable[str], value_of: Callable[[str], float | None]) -> Derived:
    total, sources, missing = 0.0, [], 0
    for dev_id in ids:
        v = value_of(dev_id)
        if v is None:
            missing += 1
        else:
            total += v
            sources.append(dev_id)
    return Derived(total if sources else None, tuple(sources), missing)


# -- inventory selections -----------------------------------------------------------
def _active(dev: Device, today: dt.date | None) -> bool:
    m = dev.meter
    if m is None or today is None:
        return True
    if m.commissioned and m.commissioned > today:
        return False
    return not (m.decommissioned and m.decommissioned <= today)


def _hall_of(site: Site, dev: Device) -> str | None:
    """A meter belongs to its own hall, or to the hall of the device it measures."""
    if dev.hall:
        return dev.hall
    if dev.measures and site.has_device(dev.measures):
        return site.device(dev.measures).hall
    return None


def _meters(site: Site, role: str, hall: str | None, today: dt.date | None, category: int | None = None) -> list[str]:
    out = []
    for d in site.all_devices():
        if d.kind != "meter" or d.meter is None or d.meter.role != role or not _active(d, today):
            continue
        if category is not None and d.meter.category != category:
            continue
        if hall is not None and _hall_of(site, d) != hall:
            continue
        out.append(d.id)
    return out


def _devices(site: Site, kinds: tuple[str, ...], hall: str | None) -> list[str]:
    return [d.id for d in site.all_devices() if d.kind in kinds and (hall is None or d.hall == hall)]


# -- reading selectors --------------------------------------------------------------
def _meter_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return lambda dev: idx.power("meter", dev)


def _pdu_inlet_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return lambda dev: idx.power("pdu", dev, lambda c: not (c.keys() & _NOT_INLET))


def _ups_output_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return lambda dev: idx.power("ups", dev, lambda c: c.get("stage", c.get("section")) == "output")


def _whole_device_w(idx: ReadingIndex, measurement: str) -> Callable[[str], float | None]:
    return lambda dev: idx.power(measurement, dev, lambda c: not (c.keys() & _NOT_WHOLE_DEVICE))


def _node_input_w(site: Site, idx: ReadingIndex) -> Callable[[str], float | None]:
    """A node's input power: its own ``node`` series, else its BMC's (a ``server`` whose
    ``labels.node`` names it), else the sum of its GPUs' power.  A chassis total
    (no component tag) wins over per-PSU inputs, which win over nothing."""
    bmcs: dict[str, list[str]] = defaultdict(list)
    for d in site.all_devices():
        if d.labels.get("node") and d.labels["node"] != d.id:
            bmcs[d.labels["node"]].append(d.id)

    def node_power(dev: str) -> float | None:
        total = idx.power("node", dev, lambda c: not (c.keys() - {"source"}))
        if total is not None:
            return total
        return idx.power("node", dev, lambda c: "psu" in c and not (c.keys() & {"gpu", "fan", "sensor"}))

    def value(dev: str) -> float | None:
        for source in [dev] + bmcs.get(dev, []):
            v = node_power(source)
            if v is not None:
                return v
        return idx.power("gpu", dev, lambda c: "gpu" in c)
    return value


# -- the quantities -----------------------------------------------------------------
def facility_power(site: Site, idx: ReadingIndex, hall: str | None = None, today: dt.date | None = None) -> Derived:
    """Σ boundary meters.  A hall without its own boundary meters gets the site's
    total when it is the site's only hall (exact), otherwise nothing (an
    allocation would make every hall's PUE equal and hide the truth)."""
    ids = _meters(site, "boundary", hall, today)
    if hall is not None and not ids:
        if len(site.halls) == 1:
            ids = _meters(site, "boundary", None, today)
        else:
            return Derived(None)
    return _sum(ids, _meter_w(idx))


def renewable_power(site: Site, idx: ReadingIndex, today: dt.date | None = None) -> Derived:
    return _sum(_meters(site, "renewable", None, today), _meter_w(idx))


def it_power(site: Site, idx: ReadingIndex, category: int, hall: str | None = None,
             today: dt.date | None = None) -> Derived:
    """IT power at one ISO/IEC 30134-2 measurement category (see module doc)."""
    meters = _meters(site, "it", hall, today, category)
    if meters:
        return _sum(meters, _meter_w(idx))
    if category == 1:
        return _sum(_devices(site, ("ups",), hall), _ups_output_w(idx))
    if category == 2:
        return _sum(_devices(site, _PDU_KINDS, hall), _pdu_inlet_w(idx))
    # category 3: a server whose labels name another node is that node's BMC: not counted twice
    nodes = [d for d in _devices(site, _IT_NODE_KINDS, hall)
             if not site.device(d).labels.get("node") or not site.has_device(site.device(d).labels["node"])]
    return _sum(nodes, _node_input_w(site, idx))


def _cooling_devices(site: Site, hall: str | None) -> list[tuple[str, float]]:
    """(device, share of its power charged to ``hall``): a chiller serving several halls is split evenly."""
    devs = [site.device(d) for d in _devices(site, _COOLING_KINDS, None)]
    if hall is None or len(site.halls) <= 1:
        return [(d.id, 1.0) for d in devs]
    graph = PowerGraph(site)
    out = []
    for d in devs:
        if d.hall == hall:
            out.append((d.id, 1.0))
            continue
        served = {site.device(c).hall for c in graph.downstream(d.id) if site.device(c).hall}
        if d.hall is None and hall in served:
            out.append((d.id, 1.0 / len(served)))
    return out


def cooling_power(site: Site, idx: ReadingIndex, hall: str | None = None, today: dt.date | None = None) -> Derived:
    meters = _meters(site, "cooling", hall, today)
    if meters:
        return _sum(meters, _meter_w(idx))
    total, sources, missing = 0.0, [], 0
    for dev_id, share in _cooling_devices(site, hall):
        v = _whole_device_w(idx, site.device(dev_id).kind)(dev_id)
        if v is None:
            missing += 1
        else:
            total += v * share
            sources.append(dev_id)
    return Derived(total if sources else None, tuple(sources), missing)


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


def _rated_w(dev: Device) -> float | None:
    return dev.rated_kw * 1000.0 if dev.rated_kw else None


def _pct(load: float | None, rated: float | None) -> float | None:
    if load is None or not rated:
        return None
    return 100.0 * load / rated


def _capacity_sample(level: str, ident: str, tags: dict[str, str], load: Derived, rated: float | None,
                     headroom: float | None, redundancy: str, now_ns: int) -> Sample:
    fields: dict = {"sources": load.sources_text, "missing": load.missing, "redundancy": redundancy}
    if load.value is not None:
        fields["load_w"] = load.value
    if rated is not None:
        fields["rated_w"] = rated
    pct = _pct(load.value, rated)
    if pct is not None:
        fields["load_pct"] = pct
    if headroom is not None:
        fields["headroom_w"] = headroom
    t = {"level": level, "id": ident, **{k: v for k, v in tags.items() if v}}
    return Sample("capacity", t, fields, now_ns)


def _ups_groups(site: Site, graph: PowerGraph) -> dict[str, tuple[list[str], str]]:
    """UPS id -> (its redundancy group, redundancy): UPSes that feed the two sides
    of a redundant rack back each other up."""
    parent = {u: u for u in _devices(site, ("ups",), None)}

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
    return {u: (groups[find(u)], redundancy.get(u, "N") if len(groups[find(u)]) > 1 else "N") for u in parent}


def capacity_samples(site: Site, idx: ReadingIndex, now_ns: int, graph: PowerGraph | None = None) -> list[Sample]:
    """``capacity`` samples for every PDU, UPS, rack, row and hall of the site."""
    graph = graph or PowerGraph(site)
    pdu_w = _pdu_inlet_w(idx)
    ups_w = _ups_output_w(idx)
    out: list[Sample] = []
    site_id = site.site.id

    # UPS: headroom of the whole redundancy group, reported on each member
    groups = _ups_groups(site, graph)
    #: hall -> {group members: (headroom, redundancy)}: what the hall can still take upstream
    hall_ups: dict[str, dict[tuple[str, ...], tuple[float, str]]] = defaultdict(dict)
    for ups_id, (members, red) in groups.items():
        dev = site.device(ups_id)
        load = _sum([ups_id], ups_w)
        group_load = _sum(members, ups_w)
        ratings = [_rated_w(site.device(m)) for m in members]
        headroom = None
        if all(r is not None for r in ratings) and group_load.value is not None:
            headroom = usable_capacity([[r] for r in ratings], red) - group_load.value  # type: ignore[misc]
            if dev.hall:
                hall_ups[dev.hall][tuple(sorted(members))] = (headroom, red)
        out.append(_capacity_sample("ups", ups_id, {"site": site_id, "hall": dev.hall or ""}, load,
                                    _rated_w(dev), headroom, red, now_ns))

    rack_stats: dict[str, tuple[Derived, float | None, float | None]] = {}
    for hall, row, rack in site.racks():
        pdus = graph.rack_pdus.get(rack.id, [])
        load = _sum(pdus, pdu_w)
        sides: dict[tuple[str, ...], list[float]] = defaultdict(list)
        for p in pdus:
            r = _rated_w(site.device(p))
            if r is not None:
                sides[tuple(sorted(graph.upstream(p))) or (p,)].append(r)
        rated = rack.rated_kw * 1000.0 if rack.rated_kw else None
        usable = usable_capacity(list(sides.values()), rack.redundancy) if sides else rated
        if usable is not None and rated is not None:
            usable = min(usable, rated)
        headroom = usable - load.value if usable is not None and load.value is not None else None
        rack_stats[rack.id] = (load, rated if rated is not None else usable, headroom)
        tags = {"site": site_id, "hall": hall.id, "row": row.id, "rack": rack.id}
        out.append(_capacity_sample("rack", rack.id, tags, load, rack_stats[rack.id][1], headroom,
                                    rack.redundancy, now_ns))
        # a PDU of a redundant rack must be able to carry the load its partners lose
        n_sides = max(len(sides), 1)
        for p in pdus:
            dev = site.device(p)
            own = _sum([p], pdu_w)
            r = _rated_w(dev)
            if rack.redundancy in ("2N", "2N+1"):
                must_carry = load.value
            elif rack.redundancy == "N+1" and n_sides > 1:
                must_carry = load.value / (n_sides - 1) if load.value is not None else None
            else:
                must_carry = own.value
            h = r - must_carry if r is not None and must_carry is not None else None
            out.append(_capacity_sample("pdu", p, tags, own, r, h, rack.redundancy, now_ns))

    for hall in site.halls:
        hall_loads: list[Derived] = []
        for row in hall.rows:
            stats = [rack_stats[k.id] for k in row.racks]
            load = _merge([s[0] for s in stats])
            rated = _total([s[1] for s in stats])
            headroom = _total([s[2] for s in stats])
            reds = {k.redundancy for k in row.racks}
            out.append(_capacity_sample("row", row.id, {"site": site_id, "hall": hall.id, "row": row.id}, load,
                                        rated, headroom, reds.pop() if len(reds) == 1 else "mixed", now_ns))
            hall_loads.append(load)
        # PDUs directly under a hall or row (not in a rack) count too
        loose = [d for d in _devices(site, _PDU_KINDS, hall.id) if not site.device(d).rack]
        load = _merge(hall_loads + [_sum(loose, pdu_w)])
        rated = hall.rated_kw * 1000.0 if hall.rated_kw else _total([rack_stats[k.id][1] for r in hall.rows for k in r.racks])
        headroom = rated - load.value if rated is not None and load.value is not None else None
        # new load in the hall also needs room upstream: the hall's UPS groups, redundancy kept
        ups_room = hall_ups.get(hall.id, {})
        if ups_room:
            upstream = sum(h for h, _ in ups_room.values())
            headroom = upstream if headroom is None else min(headroom, upstream)
        reds = {r for _, r in ups_room.values()}
        out.append(_capacity_sample("hall", hall.id, {"site": site_id, "hall": hall.id}, load, rated, headroom,
                                    reds.pop() if len(reds) == 1 else ("mixed" if reds else ""), now_ns))
    return out


def _merge(parts: list[Derived]) -> Derived:
    values = [p.value for p in parts if p.value is not None]
    return Derived(sum(values) if values else None, tuple(s for p in parts for s in p.sources),
                   sum(p.missing for p in parts))


def _total(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def power_samples(site: Site, idx: ReadingIndex, now_ns: int, today: dt.date | None = None) -> list[Sample]:
    """``site_power`` and ``pue`` samples for the site and for each hall."""
    out: list[Sample] = []
    scopes: list[str | None] = [None] + [h.id for h in site.halls]
    for hall in scopes:
        tags = {"site": site.site.id}
        if hall is not None:
            tags["hall"] = hall
        facility = facility_power(site, idx, hall, today)
        its = {c: it_power(site, idx, c, hall, today) for c in (1, 2, 3)}
        primary = next((c for c in (1, 2, 3) if its[c].value is not None), None)
        it = its[primary] if primary else Derived(None, (), sum(d.missing for d in its.values()))
        cooling = cooling_power(site, idx, hall, today)
        fields: dict = {"sources": ",".join(facility.sources + it.sources),
                        "missing": facility.missing + it.missing}
        if facility.value is not None:
            fields["facility_w"] = fields["facility_power_w"] = facility.value
        if primary is not None:
            fields["it_w"] = fields["it_power_w"] = it.value
            fields["category"] = primary
        for c, d in its.items():
            if d.value is not None:
                fields[f"it_cat{c}_w"] = d.value
        if cooling.value is not None:
            fields["cooling_w"] = cooling.value
        if hall is None:
            ren = renewable_power(site, idx, today)
            if ren.value is not None:
                fields["renewable_w"] = fields["renewable_power_w"] = ren.value
        if len(fields) > 2:
            out.append(Sample("site_power", dict(tags), fields, now_ns))
        pue_fields: dict = {}
        if it.value:
            if facility.value is not None:
                pue_fields["pue"] = pue_fields["pue_instant"] = facility.value / it.value
            if cooling.value is not None:
                pue_fields["ppue_cooling"] = (it.value + cooling.value) / it.value
        if pue_fields:
            used_cooling = cooling.missing if "ppue_cooling" in pue_fields else 0
            pue_fields.update(category=primary, sources=fields["sources"],
                              missing=facility.missing + it.missing + used_cooling)
            out.append(Sample("pue", {**tags, "kind": "instantaneous"}, pue_fields, now_ns))
    return out


def compute_all(site: Site, readings: Readings, now_ns: int, graph: PowerGraph | None = None) -> list[Sample]:
    """Every derived sample for one instant (pass ``graph`` to reuse one built from the same site)."""
    idx = ReadingIndex(readings)
    today = dt.datetime.fromtimestamp(now_ns / 1e9, dt.timezone.utc).date()
    return power_samples(site, idx, now_ns, today) + capacity_samples(site, idx, now_ns, graph)
