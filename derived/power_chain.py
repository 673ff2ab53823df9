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

from contract import derived as D
from contract import gpu as G
from contract import tags as T
from contract.sample import Sample
from contract.tags import CONTAINER, KIND, LOCATION_TAGS, WORKLOAD_TAGS
from inventory.model import Site
from inventory.topology import PowerGraph

from derived.chain_plan import COOLING_KINDS, IT_NODE_KINDS, PDU_KINDS, Allocation, ChainPlan, usable_capacity

__all__ = [
    "IDENTITY_TAGS", "ReadingKey", "Readings", "Derived", "ReadingIndex", "ChainPlan", "usable_capacity",
    "facility_power", "it_power", "cooling_power", "renewable_power", "capacity_samples",
    "power_samples", "compute_all", "selections", "node_input_w",
]

#: tags that say *where* a device is or *what* it is, not which part of it: the location tags
#: (contract/tags.py) plus the device-level series tags a reading may carry, and the workload on
#: a GPU (what runs on it, not which GPU it is).  A GPU's power series follows it from pod to
#: pod: with the workload in its key, the full site's GPUs made ≈300,000 groups instead of 8,
#: one compute walked every group for every node and never finished within an interval, and
#: for a staleness window after its pod changed a GPU was counted twice (both series fresh)
IDENTITY_TAGS = frozenset({*LOCATION_TAGS, KIND, "host", "uuid", "serial", "protocol", *WORKLOAD_TAGS, CONTAINER})
ReadingKey = tuple[str, str, tuple[tuple[str, str], ...], str]
Readings = Mapping[ReadingKey, float]

_NOT_INLET = frozenset({"outlet", "branch", "bank", "sensor"})
_NOT_WHOLE_DEVICE = frozenset({"pump", "fan", "sensor", "compressor", "outlet", "branch", "bank", "gpu", "psu"})
_COOLING = frozenset(COOLING_KINDS)
_UNSET = object()


def _nothing(device: str) -> None:
    """The table of a selection no series counts in."""
    return None


@dataclass(frozen=True)
class Derived:
    """One derived quantity with its provenance."""

    value: float | None
    sources: tuple[str, ...] = ()
    missing: int = 0

    @property
    def sources_text(self) -> str:
        return ",".join(self.sources)


def selections(measurement: str, comp: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The named sums a ``power_w`` series of ``measurement`` with component tags ``comp``
    counts in (empty: no derived quantity reads it)."""
    keys = {k for k, _ in comp}
    out: list[str] = []
    if measurement == "meter":
        out.append("meter")
    elif measurement == "pdu":
        if not keys & _NOT_INLET:
            out.append("inlet")
    elif measurement == "ups":
        c = dict(comp)
        if c.get("stage") == "output":
            out.append("output")
    elif measurement == "node":
        if not keys - {"source"}:
            out.append("total")
        if "psu" in keys and not keys & {"gpu", "fan", "sensor"}:
            out.append("psu")
    elif measurement == G.GPU:
        if T.GPU in keys:
            out.append("gpus")
    elif measurement == G.GPU_NODE:  # the same sum, worked out by the poll (collectors/gpu/node_summary.py)
        out.append("gpus")
    if measurement in _COOLING and not keys & _NOT_WHOLE_DEVICE:
        out.append("whole")
    return tuple(out)


class ReadingIndex:
    """Whole-device power per device in each selection derived metrics use (:func:`selections`).

    A series without a ``phase`` tag is a total; when a device only reports
    per-phase values (UPS output, some meters) their sum is the total.  Which
    sums a series counts in depends only on its measurement and component tags,
    of which a site has a few dozen distinct sets: that is worked out once per
    set, and a device's sum is added up when a quantity asks for it, from the
    groups it is in.  Nothing is summed for devices no quantity asks about, nor
    copied: the full site's 345,600 per-GPU series are read only for nodes that
    report no power of their own.

    A view over the groups it was built from, as they are when asked: build one per
    computation, and do not keep it across changes to them.
    """

    def __init__(self, readings: Readings | None = None) -> None:
        #: (measurement, selection) -> (whole-device groups, per-phase groups), each device -> (value, time)
        self._parts: dict[tuple[str, str], tuple[list[Mapping[str, tuple[float, int]]],
                                                 list[Mapping[str, tuple[float, int]]]]] = {}
        self._oldest_ns = 0
        #: values worked out from this index once and asked for by several quantities
        #: (node input power: the IT sums of every scope and the cooling loops), keyed by who built them
        self.memo: dict[object, dict[str, float | None]] = {}
        if readings:
            groups: dict[tuple[str, tuple], dict[str, tuple[float, int]]] = {}
            for (meas, dev, comp, fld), v in readings.items():
                if fld == "power_w" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    groups.setdefault((meas, comp), {})[dev] = (float(v), 0)
            self._add(groups, 0)

    @classmethod
    def from_groups(cls, groups: Mapping[tuple[str, tuple], Mapping[str, tuple[float, int]]],
                    oldest_ns: int) -> "ReadingIndex":
        """The index of ``power_w`` readings grouped ``(measurement, component tags) -> device ->
        (value, time)`` (how :class:`~derived.job.DerivedMetrics` keeps them), counting only those
        no older than ``oldest_ns``."""
        idx = cls()
        idx._add(groups, oldest_ns)
        return idx

    def _add(self, groups: Mapping[tuple[str, tuple], Mapping[str, tuple[float, int]]], oldest_ns: int) -> None:
        self._oldest_ns = oldest_ns
        for (meas, comp), devices in groups.items():
            names = selections(meas, comp)
            if names:
                phase = any(k == "phase" for k, _ in comp)
                for name in names:
                    self._parts.setdefault((meas, name), ([], []))[phase].append(devices)

    def table(self, measurement: str, selection: str) -> Callable[[str], float | None]:
        """``device -> whole-device power`` in one named selection (see :func:`selections`): the
        sum of its fresh whole-device series, else of its fresh per-phase series, else None."""
        whole, phase = self._parts.get((measurement, selection), ((), ()))
        oldest = self._oldest_ns
        if not whole and not phase:
            return _nothing
        if len(whole) == 1 and not phase:
            get = whole[0].get

            def one(device: str) -> float | None:
                entry = get(device)
                return entry[0] if entry is not None and entry[1] >= oldest else None
            return one
        whole_gets, phase_gets = [g.get for g in whole], [g.get for g in phase]

        def value(device: str) -> float | None:
            for gets in (whole_gets, phase_gets):
                out = None
                for get in gets:
                    entry = get(device)
                    if entry is not None and entry[1] >= oldest:
                        out = entry[0] if out is None else out + entry[0]
                if out is not None:
                    return out
            return None
        return value

    def selected(self, measurement: str, device: str, selection: str) -> float | None:
        return self.table(measurement, selection)(device)


def _plan(site: Site | ChainPlan) -> ChainPlan:
    return site if isinstance(site, ChainPlan) else ChainPlan(site)


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


# -- reading selectors --------------------------------------------------------------
def _meter_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return idx.table("meter", "meter")


def _pdu_inlet_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return idx.table("pdu", "inlet")


def _ups_output_w(idx: ReadingIndex) -> Callable[[str], float | None]:
    return idx.table("ups", "output")


def node_input_w(plan: ChainPlan, idx: ReadingIndex) -> Callable[[str], float | None]:
    """A node's input power: its own ``node`` series, else its BMC's (a ``server`` whose
    ``labels.node`` names it), else the sum of its GPUs' power (the ``gpu_node`` sum its poll
    wrote, else the job's own sum of the ``gpu`` series).  A chassis total
    (no component tag) wins over per-PSU inputs, which win over nothing.

    Worked out once per node and index (``idx.memo``): the site's and each hall's IT sums and
    the cooling loops' heat ask for the same 43,200 nodes of the full site."""
    memo = idx.memo.setdefault(("node_input_w", plan), {})
    bmcs = plan.bmcs
    # a chassis total, else per-PSU inputs: only the selections the site's readings have
    # (GPU nodes polled over DCGM alone report neither, and go straight to their GPUs' sum)
    own = [t for t in (idx.table("node", "total"), idx.table("node", "psu")) if t is not _nothing]
    summed, per_gpu = idx.table(G.GPU_NODE, "gpus"), idx.table(G.GPU, "gpus")
    if summed is _nothing:
        gpus = per_gpu
    elif per_gpu is _nothing:
        gpus = summed
    else:
        def gpus(dev: str) -> float | None:  # the poll's sum where it wrote one, else the job's own
            v = summed(dev)
            return per_gpu(dev) if v is None else v

    def node_power(dev: str) -> float | None:
        for table in own:
            v = table(dev)
            if v is not None:
                return v
        return None

    def work_out(dev: str) -> float | None:
        if own:
            v = node_power(dev)
            if v is not None:
                return v
            for source in bmcs.get(dev, ()):
                v = node_power(source)
                if v is not None:
                    return v
        return gpus(dev)

    def value(dev: str) -> float | None:
        v = memo.get(dev, _UNSET)
        if v is _UNSET:
            v = memo[dev] = work_out(dev)
        return v
    return value


# -- the quantities -----------------------------------------------------------------
def facility_power(site: Site | ChainPlan, idx: ReadingIndex, hall: str | None = None,
                   today: dt.date | None = None) -> Derived:
    """Σ boundary meters.  A hall without its own boundary meters gets the site's
    total when it is the site's only hall (exact), otherwise nothing (an
    allocation would make every hall's PUE equal and hide the truth)."""
    plan = _plan(site)
    ids = plan.meter_ids("boundary", hall, today)
    if hall is not None and not ids:
        if len(plan.halls) == 1:
            ids = plan.meter_ids("boundary", None, today)
        else:
            return Derived(None)
    return _sum(ids, _meter_w(idx))


def renewable_power(site: Site | ChainPlan, idx: ReadingIndex, today: dt.date | None = None) -> Derived:
    return _sum(_plan(site).meter_ids("renewable", None, today), _meter_w(idx))


def it_power(site: Site | ChainPlan, idx: ReadingIndex, category: int, hall: str | None = None,
             today: dt.date | None = None, node_w: Callable[[str], float | None] | None = None) -> Derived:
    """IT power at one ISO/IEC 30134-2 measurement category (see module doc)."""
    plan = _plan(site)
    meters = plan.meter_ids("it", hall, today, category)
    if meters:
        return _sum(meters, _meter_w(idx))
    if category == 1:
        return _sum(plan.devices(("ups",), hall), _ups_output_w(idx))
    if category == 2:
        return _sum(plan.devices(PDU_KINDS, hall), _pdu_inlet_w(idx))
    # category 3: a server whose labels name another node is that node's BMC: not counted twice
    return _sum(plan.it_nodes(hall), node_w or node_input_w(plan, idx))


def cooling_power(site: Site | ChainPlan, idx: ReadingIndex, hall: str | None = None,
                  today: dt.date | None = None) -> Derived:
    plan = _plan(site)
    meters = plan.meter_ids("cooling", hall, today)
    if meters:
        return _sum(meters, _meter_w(idx))
    total, sources, missing = 0.0, [], 0
    for dev_id, kind, share in plan.cooling_devices(hall):
        v = idx.selected(kind, dev_id, "whole")
        if v is None:
            missing += 1
        else:
            total += v * share
            sources.append(dev_id)
    return Derived(total if sources else None, tuple(sources), missing)


def _pct(load: float | None, rated: float | None) -> float | None:
    if load is None or not rated:
        return None
    return 100.0 * load / rated


def _capacity_sample(level: str, ident: str, tags: dict[str, str], load: Derived, rated: float | None,
                     headroom: float | None, redundancy: str, now_ns: int, *, allocated: Allocation | None = None,
                     usable: float | None = None, design_load: float | None = None) -> Sample:
    fields: dict = {D.SOURCES: load.sources_text, D.MISSING: load.missing, D.REDUNDANCY: redundancy}
    if load.value is not None:
        fields[D.LOAD_W] = load.value
    if rated is not None:
        fields[D.RATED_W] = rated
    pct = _pct(load.value, rated)
    if pct is not None:
        fields[D.LOAD_PCT] = pct
    if headroom is not None:
        fields[D.HEADROOM_W] = headroom
        if usable:
            fields[D.HEADROOM_PCT] = 100.0 * headroom / usable
    if allocated is not None:
        fields[D.ALLOCATED_W] = allocated.w
        fields[D.UNRATED] = allocated.unrated
    if usable is not None:
        fields[D.USABLE_W] = usable
    if design_load is not None:
        fields[D.DESIGN_LOAD_W] = design_load
    t = {D.LEVEL: level, D.ID: ident, **{k: v for k, v in tags.items() if v}}
    return Sample(D.CAPACITY, t, fields, now_ns)


def _group_usable(ratings: tuple[float | None, ...], redundancy: str) -> float | None:
    if not ratings or any(r is None for r in ratings):
        return None
    return usable_capacity([[r] for r in ratings], redundancy)  # type: ignore[list-item]


def capacity_samples(site: Site | ChainPlan, idx: ReadingIndex, now_ns: int,
                     graph: PowerGraph | None = None) -> list[Sample]:
    """``capacity`` samples for every PDU, UPS, transformer, rack, row and hall of the site.

    Each carries, beside load, rating and headroom, what the capacity report and the
    headroom rules read: the allocation (``allocated_w``, ``unrated``), the usable
    capacity under the redundancy design (``usable_w``), the load the design makes the
    element carry on a failure (``design_load_w``) and ``headroom_pct`` of usable.
    """
    plan = site if isinstance(site, ChainPlan) else ChainPlan(site, graph)
    pdu_w = _pdu_inlet_w(idx)
    ups_w = _ups_output_w(idx)
    out: list[Sample] = []
    site_id = plan.site_id
    alloc = plan.allocated
    nothing = Allocation()

    # UPS: headroom of the whole redundancy group, reported on each member
    #: hall -> {group members: (headroom, redundancy)}: what the hall can still take upstream
    hall_ups: dict[str, dict[tuple[str, ...], tuple[float, str]]] = defaultdict(dict)
    group_loads: dict[tuple[str, ...], Derived] = {}
    for ups in plan.ups:
        load = _sum([ups.id], ups_w)
        group_load = group_loads.get(ups.members)
        if group_load is None:
            group_load = group_loads[ups.members] = _sum(ups.members, ups_w)
        headroom = None
        usable = _group_usable(ups.group_ratings, ups.redundancy)
        if usable is not None and group_load.value is not None:
            headroom = usable - group_load.value
            if ups.hall:
                hall_ups[ups.hall][tuple(sorted(ups.members))] = (headroom, ups.redundancy)
        out.append(_capacity_sample(D.LEVEL_UPS, ups.id, {"site": site_id, "hall": ups.hall or ""}, load,
                                    ups.rated_w, headroom, ups.redundancy, now_ns, allocated=alloc.get(ups.id, nothing),
                                    usable=usable, design_load=group_load.value))

    # transformer: its meters' power; transformers feeding one UPS group back each other up
    meter_w = _meter_w(idx)
    tx_loads = {tx.id: _sum(tx.meters, meter_w) for tx in plan.transformers}
    for tx in plan.transformers:
        load = tx_loads[tx.id]
        group = _merge([tx_loads[m] for m in tx.members])
        usable = _group_usable(tx.group_ratings, tx.redundancy)
        headroom = usable - group.value if usable is not None and group.value is not None else None
        out.append(_capacity_sample(D.LEVEL_TRANSFORMER, tx.id, {"site": site_id, "hall": tx.hall or ""}, load,
                                    tx.rated_w, headroom, tx.redundancy, now_ns, allocated=alloc.get(tx.id, nothing),
                                    usable=usable, design_load=group.value))

    rack_stats: dict[str, tuple[Derived, float | None, float | None]] = {}
    for rack in plan.racks:
        own = {p: _sum([p], pdu_w) for p, _ in rack.pdus}
        load = _merge_ordered([own[p] for p, _ in rack.pdus])
        rated, usable = rack.rated_w, rack.usable_w
        headroom = usable - load.value if usable is not None and load.value is not None else None
        rack_stats[rack.id] = (load, rated if rated is not None else usable, headroom)
        tags = {"site": site_id, "hall": rack.hall, "row": rack.row, "rack": rack.id}
        out.append(_capacity_sample(D.LEVEL_RACK, rack.id, tags, load, rack_stats[rack.id][1], headroom,
                                    rack.redundancy, now_ns, allocated=alloc.get(rack.id, nothing), usable=usable,
                                    design_load=load.value))
        # a PDU of a redundant rack must be able to carry the load its partners lose
        for p, r in rack.pdus:
            mine = own[p]
            if rack.redundancy in ("2N", "2N+1"):
                must_carry = load.value
            elif rack.redundancy == "N+1" and rack.n_sides > 1:
                must_carry = load.value / (rack.n_sides - 1) if load.value is not None else None
            else:
                must_carry = mine.value
            h = r - must_carry if r is not None and must_carry is not None else None
            out.append(_capacity_sample(D.LEVEL_PDU, p, tags, mine, r, h, rack.redundancy, now_ns,
                                        allocated=alloc.get(p, nothing), usable=r, design_load=must_carry))
    usable_of = {rack.id: rack.usable_w for rack in plan.racks}

    for hall_id in plan.halls:
        hall_loads: list[Derived] = []
        hall_alloc = nothing
        for row_id, rack_ids, reds in plan.hall_rows[hall_id]:
            stats = [rack_stats[k] for k in rack_ids]
            load = _merge([s[0] for s in stats])
            rated = _total([s[1] for s in stats])
            headroom = _total([s[2] for s in stats])
            row_alloc = sum((alloc.get(k, nothing) for k in rack_ids), nothing)
            hall_alloc = hall_alloc + row_alloc
            out.append(_capacity_sample(D.LEVEL_ROW, row_id, {"site": site_id, "hall": hall_id, "row": row_id}, load,
                                        rated, headroom, next(iter(reds)) if len(reds) == 1 else "mixed", now_ns,
                                        allocated=row_alloc, usable=_total([usable_of[k] for k in rack_ids]),
                                        design_load=load.value))
            hall_loads.append(load)
        # PDUs directly under a hall or row (not in a rack) count too
        load = _merge(hall_loads + [_sum(plan.loose_pdus[hall_id], pdu_w)])
        hall_alloc = sum((alloc.get(p, nothing) for p in plan.loose_pdus[hall_id]), hall_alloc)
        rated = plan.hall_rated_w[hall_id]
        if rated is None:
            rated = _total([rack_stats[k][1] for _, rack_ids, _ in plan.hall_rows[hall_id] for k in rack_ids])
        headroom = rated - load.value if rated is not None and load.value is not None else None
        # new load in the hall also needs room upstream: the hall's UPS groups, redundancy kept
        ups_room = hall_ups.get(hall_id, {})
        if ups_room:
            upstream = sum(h for h, _ in ups_room.values())
            headroom = upstream if headroom is None else min(headroom, upstream)
        reds = {r for _, r in ups_room.values()}
        out.append(_capacity_sample(D.LEVEL_HALL, hall_id, {"site": site_id, "hall": hall_id}, load, rated, headroom,
                                    reds.pop() if len(reds) == 1 else ("mixed" if reds else ""), now_ns,
                                    allocated=hall_alloc, usable=rated, design_load=load.value))
    return out


def _merge_ordered(parts: list[Derived]) -> Derived:
    """One device's sums merged as :func:`_sum` over them would (same total, sources, missing)."""
    total, sources, missing = 0.0, [], 0
    for p in parts:
        if p.value is None:
            missing += p.missing
        else:
            total += p.value
            sources.extend(p.sources)
    return Derived(total if sources else None, tuple(sources), missing)


def _merge(parts: list[Derived]) -> Derived:
    values = [p.value for p in parts if p.value is not None]
    return Derived(sum(values) if values else None, tuple(s for p in parts for s in p.sources),
                   sum(p.missing for p in parts))


def _total(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def power_samples(site: Site | ChainPlan, idx: ReadingIndex, now_ns: int, today: dt.date | None = None) -> list[Sample]:
    """``site_power`` and ``pue`` samples for the site and for each hall."""
    plan = _plan(site)
    out: list[Sample] = []
    scopes: list[str | None] = [None, *plan.halls]
    node_w = node_input_w(plan, idx)
    for hall in scopes:
        tags = {"site": plan.site_id}
        if hall is not None:
            tags["hall"] = hall
        facility = facility_power(plan, idx, hall, today)
        its = {c: it_power(plan, idx, c, hall, today, node_w) for c in (1, 2, 3)}
        primary = next((c for c in (1, 2, 3) if its[c].value is not None), None)
        it = its[primary] if primary else Derived(None, (), sum(d.missing for d in its.values()))
        cooling = cooling_power(plan, idx, hall, today)
        fields: dict = {D.SOURCES: ",".join(facility.sources + it.sources),
                        D.MISSING: facility.missing + it.missing}
        if facility.value is not None:
            fields[D.FACILITY_W] = facility.value
        if primary is not None:
            fields[D.IT_W] = it.value
            fields[D.CATEGORY] = primary
        for c, d in its.items():
            if d.value is not None:
                fields[D.it_category_w(c)] = d.value
        if cooling.value is not None:
            fields[D.COOLING_W] = cooling.value
        if hall is None:
            ren = renewable_power(plan, idx, today)
            if ren.value is not None:
                fields[D.RENEWABLE_W] = ren.value
        if len(fields) > 2:
            out.append(Sample(D.SITE_POWER, dict(tags), fields, now_ns))
        pue_fields: dict = {}
        if it.value:
            if facility.value is not None:
                pue_fields[D.PUE_VALUE] = facility.value / it.value
            if cooling.value is not None:
                pue_fields[D.PPUE_COOLING] = (it.value + cooling.value) / it.value
        if pue_fields:
            used_cooling = cooling.missing if D.PPUE_COOLING in pue_fields else 0
            pue_fields.update({D.CATEGORY: primary, D.SOURCES: fields[D.SOURCES],
                               D.MISSING: facility.missing + it.missing + used_cooling})
            out.append(Sample(D.PUE, {**tags, D.PUE_KIND: D.INSTANTANEOUS}, pue_fields, now_ns))
    return out


def compute_all(site: Site | ChainPlan, readings: Readings | ReadingIndex, now_ns: int,
                graph: PowerGraph | None = None) -> list[Sample]:
    """Every derived sample for one instant.

    Pass a :class:`ChainPlan` built once (what :class:`~derived.job.DerivedMetrics`
    does) rather than a site, which builds one per call (fine for a test, ≈seconds on
    the full site); ``graph`` reuses a power graph built from the same site.
    """
    plan = site if isinstance(site, ChainPlan) else ChainPlan(site, graph)
    idx = readings if isinstance(readings, ReadingIndex) else ReadingIndex(readings)
    today = dt.datetime.fromtimestamp(now_ns / 1e9, dt.timezone.utc).date()
    return power_samples(plan, idx, now_ns, today) + capacity_samples(plan, idx, now_ns)
