"""Who used the energy: GPU -> node -> outlet(s) -> PDU -> UPS -> facility, as pure functions.

Why hour by hour: a node runs one job in the morning and two in the afternoon;
splitting its month of outlet energy by the month's GPU shares would bill the
morning job for the afternoon.  Every energy here is computed per UTC hour of
the period (counters interpolated at the hour edges, as the PUE report does:
:mod:`reports.energy`), split within the hour, then summed.  Hours telescope,
so the sums are the period's counters' differences.

The chain, per hour (reports/README.md, "Energy attribution"):

1. **GPU energy per workload.** A GPU's DCGM ``energy_kwh`` counter is one
   counter whatever runs on it, but its samples carry the workload's
   ``namespace``/``pod``/``job`` tags, so each workload is its own series.  The
   readings of all of a GPU's series are merged in time order; the increase
   between two consecutive readings belongs to the workload of the later one
   (what was running when the counter was read).  A drop is a reset or a wrap
   (:func:`reports.energy.unwrap`).  A GPU without the counter is integrated
   from ``power_w`` (trapezoid): estimated.  Readings with no workload tags are
   an idle GPU: its energy goes to :data:`UNALLOCATED`.
2. **Node energy** = the sum of the node's outlet energies (outlet samples
   carrying ``feeds=<node>``: outlet ``energy_kwh`` counters, else integrated
   outlet ``power_w``, estimated).  It is split among the node's workloads (and
   the idle share) in proportion to their GPU energy in that hour, so the
   node's non-GPU energy (CPUs, memory, fans, PSU losses) follows the GPU
   energy.  An hour with outlet energy but no GPU energy goes to
   :data:`UNALLOCATED`.  A node with no outlet readings at all counts its GPU
   energy only (estimated, and named in the warnings).
3. **PDU residual** = the PDU's output (its total ``energy_kwh``) minus what
   its wired outlets explain (plus, for a node without outlet readings, its
   share of that node's GPU energy).  Unwired outlets, the PDU's own draw and
   metering differences are in it.
4. **UPS residual** = the UPS output (an IT meter of category 1 that
   ``measures`` it, else its ``ups`` ``stage=output`` counter, else integrated
   output power) minus the outputs of the PDUs it feeds (a PDU fed by several
   UPSes counts an equal share under each).
5. **Facility energy** = IT energy x that month's PUE, and **carbon** = IT
   energy x that month's CUE (grid kWh x emission factor / E_IT), both from
   the PUE report of the same period and category (:mod:`reports.pue`).

The rows add up: entities + unallocated + PDU residual + UPS residual =
the measured IT total (the UPS outputs, plus PDUs no UPS feeds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from reports.energy import counter_energy, iso_utc, power_energy, unwrap

__all__ = [
    "BY_KINDS", "UNALLOCATED", "UNMAPPED", "RESIDUAL_PDU", "RESIDUAL_UPS", "Workload", "GpuSeries",
    "OutletSeries", "ChainInputs", "EntityRow", "Attribution", "gpu_energy", "series_energy", "attribute",
    "add_facility", "entity_of",
]

#: what ``dcim report energy --by`` groups by
BY_KINDS = ("tenant", "namespace", "job", "rack", "hall")
#: idle GPUs, and node energy in hours whose GPUs ran nothing
UNALLOCATED = "unallocated"
#: tenant of a namespace no tenant lists (``--by tenant``)
UNMAPPED = "unmapped"
RESIDUAL_PDU = "residual: PDU output not explained by its outlets"
RESIDUAL_UPS = "residual: UPS output not explained by its PDUs"
#: readings further apart than this are not integrated (power): the PUE report's rule
MAX_POWER_GAP_S = 900.0


@dataclass(frozen=True, order=True)
class Workload:
    """What ran on a GPU: dcgm-exporter's pod labels (``namespace``, ``pod``) and/or an HPC ``job``."""

    namespace: str = ""
    pod: str = ""
    job: str = ""

    @property
    def idle(self) -> bool:
        return not (self.namespace or self.pod or self.job)

    def job_id(self) -> str:
        """``namespace/job`` (the pod's name where no job label is given)."""
        name = self.job or self.pod
        return f"{self.namespace}/{name}" if self.namespace else name


@dataclass
class GpuSeries:
    """One series of one GPU: its readings while one workload (or none) ran on it."""

    node: str
    gpu: str
    workload: Workload
    field: str                              # energy_kwh | power_w
    readings: np.ndarray | Sequence          # (t s, value)


@dataclass
class OutletSeries:
    pdu: str
    outlet: str
    feeds: str                               # the device the outlet feeds ("" when unwired)
    field: str                               # energy_kwh | power_w
    readings: np.ndarray | Sequence


@dataclass
class ChainInputs:
    """Everything the attribution reads, already fetched (reports/attribution_build.py does the I/O).

    ``pdu_totals[pdu]`` / ``ups_outputs[ups]``: (field, readings) — several series of one device
    (inlets) are summed by the caller as separate entries in the list.
    """

    edges: np.ndarray                                       # hour edges, n+1 epoch seconds
    gpus: list[GpuSeries]
    outlets: list[OutletSeries]
    pdu_totals: dict[str, list[tuple[str, np.ndarray | Sequence]]]
    ups_outputs: dict[str, list[tuple[str, np.ndarray | Sequence]]]
    node_place: dict[str, tuple[str, str]]                  # node -> (hall, rack)
    node_pdus: dict[str, list[str]]                         # node -> PDUs its fed_by names
    pdu_upses: dict[str, list[str]]                         # PDU -> UPSes it is fed by
    #: PDU or UPS -> its hall (where its residual's facility share is counted)
    device_hall: dict[str, str] = field(default_factory=dict)
    tenant_of: Callable[[str], str | None] = lambda ns: None
    #: power integration: segments longer than this are not integrated
    max_power_gap_s: float = MAX_POWER_GAP_S


@dataclass
class EntityRow:
    entity: str
    kind: str                    # workload | unallocated | rack | hall | residual
    it_kwh: float = 0.0
    gpu_kwh: float = 0.0         # the entity's own GPU energy (workload rows), before the node split
    estimated_kwh: float = 0.0
    facility_kwh: float | None = None
    co2_kg: float | None = None
    peak_kw: float = 0.0         # highest hourly mean power
    peak_at: str = ""
    share_pct: float = 0.0       # of the measured IT total
    nodes: int = 0
    by_month: dict[str, float] = field(default_factory=dict)
    facility_by_month: dict[str, float | None] = field(default_factory=dict)
    co2_by_month: dict[str, float | None] = field(default_factory=dict)
    detail: dict[str, float] = field(default_factory=dict)    # residual rows: per device

    @property
    def estimated_share(self) -> float:
        return self.estimated_kwh / self.it_kwh if self.it_kwh else 0.0


@dataclass
class Attribution:
    by: str
    rows: list[EntityRow]
    measured_kwh: float          # UPS outputs (+ PDUs no UPS feeds): what the rows add up to
    hourly: dict[str, np.ndarray]            # entity -> kWh per hour
    #: (entity, hall) -> kWh per hour: the facility share is counted with each hall's PUE
    hourly_by_hall: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)     # how many series were read which way


# -- per-series energy per hour ------------------------------------------------------------
def _arr(readings) -> np.ndarray:
    a = np.asarray(readings, dtype=float).reshape(-1, 2) if len(readings) else np.empty((0, 2))
    return a[np.isfinite(a[:, 1]) & np.isfinite(a[:, 0])]


def series_energy(name: str, fld: str, readings, edges: np.ndarray,
                  max_power_gap_s: float = MAX_POWER_GAP_S) -> np.ndarray:
    """kWh per hour of one series: counter differences (resets bridged), or integrated power."""
    grid = np.column_stack((edges[:-1], edges[1:]))
    if fld == "power_w":
        return np.asarray(power_energy(name, [tuple(r) for r in _arr(readings)], grid.tolist(),
                                       max_gap_s=max_power_gap_s).values)
    return np.asarray(counter_energy(name, _arr(readings), grid, field_name=fld).values)


def gpu_energy(series: Sequence[GpuSeries], edges: np.ndarray,
               max_power_gap_s: float = MAX_POWER_GAP_S) -> tuple[dict[Workload, np.ndarray], bool]:
    """One GPU's kWh per hour per workload, and whether it was estimated (integrated power).

    Counters: the readings of every series of the GPU merged in time (at one instant the
    lower value first: two tier buckets of a job change end together), the increase up to each
    reading credited to that reading's workload, and each workload's cumulative credit
    interpolated at the hour edges.  Power: each series integrated on its own.
    """
    counters = [s for s in series if s.field != "power_w"]
    if not counters:
        out: dict[Workload, np.ndarray] = {}
        for s in series:
            e = series_energy(f"{s.node}/{s.gpu}", "power_w", s.readings, edges, max_power_gap_s)
            out[s.workload] = out.get(s.workload, 0.0) + e
        return out, True
    labels = sorted({s.workload for s in counters})
    index = {w: i for i, w in enumerate(labels)}
    parts = []
    for s in counters:
        a = _arr(s.readings)
        if len(a):
            parts.append(np.column_stack((a, np.full(len(a), index[s.workload], dtype=float))))
    if not parts:
        return {}, False
    m = np.concatenate(parts)
    m = m[np.lexsort((m[:, 1], m[:, 0]))]
    t, v, lab = m[:, 0], m[:, 1], m[:, 2].astype(int)
    keep = np.ones(len(t), dtype=bool)            # one reading per instant and value
    keep[1:] = (t[1:] != t[:-1]) | (v[1:] != v[:-1])
    t, v, lab = t[keep], v[keep], lab[keep]
    if len(v) > 1 and np.any(np.diff(v) < 0):
        _, uv, _ = unwrap(f"{counters[0].node}/{counters[0].gpu}", "energy_kwh", list(zip(t.tolist(), v.tolist())))
        v = np.asarray(uv)
    step = np.diff(v, prepend=v[0])
    out = {}
    for i, w in enumerate(labels):
        mine = np.where(lab == i, step, 0.0)
        if not mine.any():
            continue
        cum = np.cumsum(mine)
        e = np.interp(edges[1:], t, cum) - np.interp(edges[:-1], t, cum)
        out[w] = e
    return out, False


# -- grouping -------------------------------------------------------------------------------
def entity_of(by: str, w: Workload, hall: str, rack: str, tenant_of: Callable[[str], str | None]) -> tuple[str, str]:
    """(entity, kind) a node's workload share counts under for ``--by``."""
    if by == "hall":
        return hall or "(no hall)", "hall"
    if by == "rack":
        return rack or "(no rack)", "rack"
    if w.idle:
        return UNALLOCATED, "unallocated"
    if by == "namespace":
        return w.namespace or "(no namespace)", "workload"
    if by == "job":
        return w.job_id(), "workload"
    if by == "tenant":
        return (tenant_of(w.namespace) if w.namespace else None) or UNMAPPED, "workload"
    raise ValueError(f"unknown --by {by!r}: use one of {', '.join(BY_KINDS)}")


def _sum_series(name: str, entries: Iterable[tuple[str, object]], edges: np.ndarray,
                gap: float) -> tuple[np.ndarray, bool, bool]:
    """(kWh per hour summed over a device's series, any data, any estimated)."""
    total = np.zeros(len(edges) - 1)
    have = est = False
    for fld, rs in entries:
        if len(rs) == 0:
            continue
        have = True
        est |= fld == "power_w"
        total += series_energy(name, fld, rs, edges, gap)
    return total, have, est


def attribute(inp: ChainInputs, by: str) -> tuple[Attribution, dict[str, np.ndarray]]:
    """Split the measured energy hour by hour; rows per entity of ``by`` plus unallocated and residuals.

    Returns the attribution (rows without facility/carbon: :func:`add_facility`) and the
    per-hour estimated kWh per entity.
    """
    if by not in BY_KINDS:
        raise ValueError(f"unknown --by {by!r}: use one of {', '.join(BY_KINDS)}")
    edges = np.asarray(inp.edges, dtype=float)
    n = len(edges) - 1
    warnings: list[str] = []
    methods: dict[str, int] = {}
    hourly: dict[str, np.ndarray] = {}
    est_h: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    gpu_kwh: dict[str, float] = {}
    nodes_of: dict[str, set[str]] = {}

    by_hall: dict[tuple[str, str], np.ndarray] = {}

    def add(entity: str, kind: str, e: np.ndarray, est: np.ndarray | None = None, hall: str = "") -> None:
        kinds.setdefault(entity, kind)
        hourly[entity] = hourly.get(entity, np.zeros(n)) + e
        by_hall[(entity, hall)] = by_hall.get((entity, hall), np.zeros(n)) + e
        if est is not None:
            est_h[entity] = est_h.get(entity, np.zeros(n)) + est

    # 1. GPUs, per node
    by_gpu: dict[tuple[str, str], list[GpuSeries]] = {}
    for s in inp.gpus:
        by_gpu.setdefault((s.node, s.gpu), []).append(s)
    node_gpu: dict[str, dict[Workload, np.ndarray]] = {}
    node_gpu_est: dict[str, bool] = {}
    for (node, _gpu), ss in sorted(by_gpu.items()):
        per, est = gpu_energy(ss, edges, inp.max_power_gap_s)
        methods["gpu series from integrated power" if est else "gpu series from energy counters"] = (
            methods.get("gpu series from integrated power" if est else "gpu series from energy counters", 0) + len(ss))
        acc = node_gpu.setdefault(node, {})
        for w, e in per.items():
            acc[w] = acc.get(w, 0.0) + e
        node_gpu_est[node] = node_gpu_est.get(node, False) or est

    # 2. outlets -> nodes; what each PDU's outlets explain
    node_outlets: dict[str, list[tuple[str, object]]] = {}
    outlet_e: dict[tuple[str, str], np.ndarray] = {}
    outlet_est: dict[str, bool] = {}
    for o in inp.outlets:
        if not o.feeds:
            continue
        e = series_energy(f"{o.pdu}:{o.outlet}", o.field, o.readings, edges, inp.max_power_gap_s)
        key = (o.pdu, o.outlet)
        outlet_e[key] = outlet_e.get(key, 0.0) + e
        node_outlets.setdefault(o.feeds, []).append((o.pdu, e))
        outlet_est[o.feeds] = outlet_est.get(o.feeds, False) or o.field == "power_w"
        m = "outlet series from integrated power" if o.field == "power_w" else "outlet series from energy counters"
        methods[m] = methods.get(m, 0) + 1
    explained: dict[str, np.ndarray] = {}
    for (pdu, _), e in outlet_e.items():
        explained[pdu] = explained.get(pdu, np.zeros(n)) + e

    gpu_only: list[str] = []
    for node in sorted(set(node_gpu) | set(node_outlets)):
        hall, rack = inp.node_place.get(node, ("", ""))
        gpus = node_gpu.get(node, {})
        gtot = np.zeros(n)
        for e in gpus.values():
            gtot = gtot + e
        if node in node_outlets:
            node_e = np.zeros(n)
            for _, e in node_outlets[node]:
                node_e = node_e + e
            est_node = outlet_est.get(node, False)
        else:
            node_e = gtot.copy()
            est_node = True
            gpu_only.append(node)
            pdus = inp.node_pdus.get(node, [])
            for p in pdus:   # the PDU's output holds this node's draw: its GPU part is explained
                explained[p] = explained.get(p, np.zeros(n)) + node_e / len(pdus)
        est_any = est_node or node_gpu_est.get(node, False)
        with np.errstate(divide="ignore", invalid="ignore"):
            assigned = np.zeros(n)
            for w, e in sorted(gpus.items()):
                share = np.where(gtot > 0, e / np.where(gtot > 0, gtot, 1.0), 0.0)
                part = node_e * share
                assigned = assigned + part
                ent, kind = entity_of(by, w, hall, rack, inp.tenant_of)
                add(ent, kind, part, part if est_any else np.zeros(n), hall)
                gpu_kwh[ent] = gpu_kwh.get(ent, 0.0) + math.fsum(e)
                nodes_of.setdefault(ent, set()).add(node)
        rest = node_e - assigned   # hours with outlet energy and no GPU energy
        if np.any(np.abs(rest) > 1e-12):
            ent, kind = entity_of(by, Workload(), hall, rack, inp.tenant_of)
            add(ent, kind, rest, rest if est_node else np.zeros(n), hall)
            nodes_of.setdefault(ent, set()).add(node)
    if gpu_only:
        warnings.append(f"{len(gpu_only)} node(s) without outlet readings count their GPU energy only "
                        f"(estimated): {', '.join(gpu_only[:10])}{' …' if len(gpu_only) > 10 else ''}")

    # 3. PDU residuals
    pdu_out: dict[str, np.ndarray] = {}
    res_pdu = np.zeros(n)
    res_pdu_est = np.zeros(n)
    pdu_detail: dict[str, float] = {}
    all_pdus = sorted(set(inp.pdu_totals) | set(explained))
    no_total = []
    for pdu in all_pdus:
        total, have, est = _sum_series(pdu, inp.pdu_totals.get(pdu, []), edges, inp.max_power_gap_s)
        exp = explained.get(pdu, np.zeros(n))
        if not have:
            no_total.append(pdu)
            total = exp.copy()
        pdu_out[pdu] = total
        r = total - exp
        res_pdu = res_pdu + r
        add(RESIDUAL_PDU, "residual", r, r if est else np.zeros(n), inp.device_hall.get(pdu, ""))
        pdu_detail[pdu] = math.fsum(r)
    if no_total:
        warnings.append(f"{len(no_total)} PDU(s) without a total energy reading: their output is taken as the sum "
                        f"of their outlets (no residual): {', '.join(no_total[:10])}{' …' if len(no_total) > 10 else ''}")
    if RESIDUAL_PDU not in hourly:
        add(RESIDUAL_PDU, "residual", res_pdu, res_pdu_est)

    # 4. UPS residuals
    ups_pdus: dict[str, list[tuple[str, int]]] = {}
    for pdu in all_pdus:
        ups = [u for u in inp.pdu_upses.get(pdu, [])]
        for u in ups:
            ups_pdus.setdefault(u, []).append((pdu, len(ups)))
    res_ups = np.zeros(n)
    res_ups_est = np.zeros(n)
    ups_detail: dict[str, float] = {}
    measured = np.zeros(n)
    fed = set()
    no_out = []
    for ups in sorted(set(inp.ups_outputs) | set(ups_pdus)):
        exp = np.zeros(n)
        for pdu, k in ups_pdus.get(ups, []):
            exp = exp + pdu_out[pdu] / k
            fed.add(pdu)
        out, have, est = _sum_series(ups, inp.ups_outputs.get(ups, []), edges, inp.max_power_gap_s)
        if not have:
            no_out.append(ups)
            out = exp.copy()
        r = out - exp
        res_ups = res_ups + r
        add(RESIDUAL_UPS, "residual", r, r if est else np.zeros(n), inp.device_hall.get(ups, ""))
        ups_detail[ups] = math.fsum(r)
        measured = measured + out
    for pdu in all_pdus:
        if pdu not in fed:
            measured = measured + pdu_out[pdu]
    if no_out:
        warnings.append(f"{len(no_out)} UPS(es) without an output energy reading: their output is taken as the sum "
                        f"of their PDUs (no residual): {', '.join(no_out[:10])}{' …' if len(no_out) > 10 else ''}")
    if RESIDUAL_UPS not in hourly:
        add(RESIDUAL_UPS, "residual", res_ups, res_ups_est)

    rows = []
    total_kwh = math.fsum(measured)
    for ent in sorted(hourly, key=lambda e: (kinds[e] == "residual", kinds[e] == "unallocated", e)):
        e = hourly[ent]
        row = EntityRow(entity=ent, kind=kinds[ent], it_kwh=math.fsum(e), gpu_kwh=gpu_kwh.get(ent, 0.0),
                        estimated_kwh=math.fsum(est_h.get(ent, np.zeros(n))), nodes=len(nodes_of.get(ent, ())))
        row.share_pct = 100.0 * row.it_kwh / total_kwh if total_kwh else 0.0
        if ent == RESIDUAL_PDU:
            row.detail = pdu_detail
        elif ent == RESIDUAL_UPS:
            row.detail = ups_detail
        rows.append(row)
    _peaks(rows, hourly, edges)
    return Attribution(by=by, rows=rows, measured_kwh=total_kwh, hourly=hourly, hourly_by_hall=by_hall,
                       warnings=warnings, methods=methods), est_h


def _peaks(rows: list[EntityRow], hourly: Mapping[str, np.ndarray], edges: np.ndarray) -> None:
    """Highest hourly mean power (kW) per entity: kWh in the hour / hours in it (the period's ends may clip)."""
    hours = np.diff(edges) / 3600.0
    for r in rows:
        kw = hourly[r.entity] / np.where(hours > 0, hours, 1.0)
        if len(kw):
            i = int(np.argmax(kw))
            r.peak_kw = float(kw[i])
            r.peak_at = iso_utc(edges[i])


def add_facility(att: Attribution, edges: np.ndarray, month_of_hour: Sequence[str],
                 pue: Mapping[str, float | None], cue: Mapping[str, float | None],
                 hall_pue: Mapping[str, Mapping[str, float | None]] | None = None,
                 hall_cue: Mapping[str, Mapping[str, float | None]] | None = None) -> None:
    """Facility energy (IT x the month's PUE) and carbon (IT x the month's CUE) per row, month by month.

    ``pue``/``cue``: the site's, per month.  ``hall_pue``/``hall_cue``: a hall's own, where
    its meters allow one (:func:`reports.attribution_build.hall_pue_reports`): energy in that
    hall is counted with it, the rest with the site's.  A month whose PUE (or CUE) is
    undefined leaves the row's figure undefined: no share is invented.
    """
    months = sorted(set(month_of_hour))
    idx = {m: np.asarray([i for i, mo in enumerate(month_of_hour) if mo == m], dtype=int) for m in months}
    hall_pue, hall_cue = hall_pue or {}, hall_cue or {}
    parts: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (ent, hall), e in att.hourly_by_hall.items():
        parts.setdefault(ent, []).append((hall, e))
    for r in att.rows:
        e = att.hourly[r.entity]
        r.by_month = {m: math.fsum(e[idx[m]]) for m in months}
        for m in months:
            fac: float | None = 0.0
            co2: float | None = 0.0
            for hall, eh in parts.get(r.entity, [("", e)]):
                kwh = math.fsum(eh[idx[m]])
                p = (hall_pue.get(hall) or pue).get(m)
                c = (hall_cue.get(hall) or cue).get(m)
                fac = None if fac is None or p is None else fac + kwh * p
                co2 = None if co2 is None or c is None else co2 + kwh * c
            r.facility_by_month[m], r.co2_by_month[m] = fac, co2
        fs, cs = list(r.facility_by_month.values()), list(r.co2_by_month.values())
        r.facility_kwh = None if None in fs else math.fsum(fs)
        r.co2_kg = None if None in cs else math.fsum(cs)
