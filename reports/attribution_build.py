"""Glue for ``dcim report energy``: site + InfluxDB -> the attribution chain's inputs -> an :class:`EnergyReport`.

The only I/O of the attribution: which series the site's devices need
(:mod:`reports.attribution_query`), the PUE report of the same period for
the facility share and carbon (:func:`reports.build.build_pue_report`), then
the pure split (:mod:`reports.attribution`).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from contract import tags as T
from contract.measurements import METER
from inventory.model import Site
from inventory.topology import PowerGraph
from reports.attribution import (UNALLOCATED, ChainInputs, EntityRow, GpuSeries, OutletSeries,
                                 Workload, add_facility, attribute)
from reports.attribution_query import Fetched, SeriesRead, fetch_series, input_hash
from reports.build import ReportRequest, build_pue_report, choose_source
from reports.energy import hour_grid, iso_utc
from reports.pue import ReportError
from sinks.influx_query import InfluxQuery
from storage.influxql import literal
from storage.read import TierSource

__all__ = ["EnergyRequest", "EnergyReport", "TenantStatement", "build_energy_report", "tenant_statement",
           "chain_reads", "fallback_reads", "chain_inputs", "site_topology", "UNALLOCATED"]

GPU_M, PDU_M, UPS_M = "gpu", "pdu", "ups"
_PDU_KINDS = ("pdu", "rpp", "busway")
STAGE, OUTPUT, BRANCH, INLET, UNIT = "stage", "output", "branch", "inlet", "pdu"
#: more devices than this in a second-pass read: read them all and keep the wanted ones
DEVICE_FILTER_MAX = 200


@dataclass
class EnergyRequest:
    start_s: float
    end_s: float
    by: str = "tenant"
    #: the PUE report's IT category for the facility share (1: UPS output, the top of this chain)
    category: int = 1
    tier: str = "auto"
    emission_factor: float | None = None
    emission_factors: dict[str, float] | None = None
    #: ``hall``: a hall whose meters make a PUE of its own shares its facility energy by it (else the
    #: site's); ``site``: the site's PUE for every hall
    pue_scope: str = "hall"


@dataclass
class EnergyReport:
    site_id: str
    site_name: str
    period_start: str
    period_end: str
    by: str
    rows: list[EntityRow]
    measured_kwh: float
    months: list[str]
    pue_category: int
    pue_by_month: dict[str, float | None]
    cue_by_month: dict[str, float | None]
    pue_total: float | None
    cue_total: float | None
    e_it_kwh_pue: float | None          # E_IT of the PUE report (the same meters when category 1)
    #: hall -> its own PUE per month, for the halls whose meters make one (``pue_scope`` hall)
    pue_by_hall: dict[str, dict[str, float | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    input_sha256: str = ""
    pue_input_sha256: str = ""
    source: str = ""
    #: entity -> kWh per hour (not rendered; the tenant statement and peaks read it)
    hourly: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    edges: np.ndarray | None = field(default=None, repr=False)

    @property
    def total_it_kwh(self) -> float:
        return math.fsum(r.it_kwh for r in self.rows)


def _devices_where(ids: list[str]) -> str:
    return "(" + " OR ".join(f'"{T.DEVICE}" = {literal(i)}' for i in sorted(ids)) + ")" if ids else ""


def _only(ids: list[str]) -> str:
    return _devices_where(ids) if len(ids) <= DEVICE_FILTER_MAX else ""


@dataclass
class _Topology:
    halls: dict[str, str]                    # PDU / UPS -> its hall
    nodes: dict[str, tuple[str, str]]        # node -> (hall, rack)
    node_pdus: dict[str, list[str]]
    pdus: list[str]
    pdu_upses: dict[str, list[str]]
    upses: list[str]
    ups_meter: dict[str, str]                # UPS -> its category-1 IT meter


def site_topology(site: Site) -> _Topology:
    """The chain as the attribution walks it: nodes and their PDUs, PDUs and their UPSes, UPS output meters."""
    g = PowerGraph(site)
    kind = {d.id: d.kind for d in site.all_devices()}
    nodes = {d.id: (d.hall or "", d.rack or "") for d in site.all_devices() if d.kind == "gpu_node"}
    node_pdus = {n: [p for p in g.upstream(n) if kind.get(p) in _PDU_KINDS] for n in nodes}
    pdus = sorted(d for d, k in kind.items() if k in _PDU_KINDS)

    def upses_above(dev: str, depth: int = 0) -> list[str]:
        out: list[str] = []
        for p in g.upstream(dev):
            if kind.get(p) == "ups":
                out.append(p)
            elif depth < 8 and kind.get(p) in _PDU_KINDS + ("switchgear", "ats"):
                out += upses_above(p, depth + 1)
        return sorted(set(out))

    pdu_upses = {p: upses_above(p) for p in pdus}
    upses = sorted(d for d, k in kind.items() if k == "ups")
    ups_meter = {}
    for d in site.all_devices():
        if d.meter is not None and d.meter.role == "it" and d.meter.category == 1 and d.measures in upses:
            ups_meter.setdefault(d.measures, d.id)
    halls = {d: site.device(d).hall or "" for d in pdus + upses}
    return _Topology(halls, nodes, node_pdus, pdus, pdu_upses, upses, ups_meter)


#: what each read stands for in the chain (the first element of a fetched series' key)
R_GPU, R_OUTLET, R_PDU, R_UPS_METER, R_UPS = "gpu", "outlet", "pdu", "ups_meter", "ups"
_GPU_TAGS = (T.DEVICE, T.GPU, *T.WORKLOAD_TAGS)
_OUTLET_TAGS = (T.DEVICE, T.OUTLET, T.FEEDS)
_TOTAL_TAGS = (T.DEVICE, UNIT, INLET)
_OUTLET_WHERE = f"\"{T.FEEDS}\" != ''"
_TOTAL_WHERE = f"\"{T.OUTLET}\" = '' AND \"{T.PHASE}\" = '' AND \"{BRANCH}\" = ''"


def _and(*parts: str) -> str:
    return " AND ".join(p for p in parts if p)


def chain_reads(topo: _Topology) -> list[SeriesRead]:
    """The first-pass reads: every counter the chain uses (power fallbacks come after, for what lacks one)."""
    reads = [
        SeriesRead(R_GPU, GPU_M, "energy_kwh", "", _GPU_TAGS),
        SeriesRead(R_OUTLET, PDU_M, "energy_kwh", _OUTLET_WHERE, _OUTLET_TAGS),
        SeriesRead(R_PDU, PDU_M, "energy_kwh", _TOTAL_WHERE, _TOTAL_TAGS),
    ]
    meters = sorted(topo.ups_meter.values())
    if meters:
        reads.append(SeriesRead(R_UPS_METER, METER, "energy_kwh", _and(_only(meters), f"\"{T.PHASE}\" = ''"),
                                (T.DEVICE,)))
    bare = sorted(u for u in topo.upses if u not in topo.ups_meter)
    if bare:
        reads.append(SeriesRead(R_UPS, UPS_M, "energy_kwh",
                                _and(_only(bare), f"\"{STAGE}\" = '{OUTPUT}'", f"\"{T.PHASE}\" = ''"), (T.DEVICE, T.PHASE)))
    return reads


def fallback_reads(topo: _Topology, got: Fetched) -> list[SeriesRead]:
    """Power reads for the GPU nodes, outlets, PDUs and UPSes that have no energy counter in the period."""
    have = {role: {k[2][0] for k in got.series if k[0] == role} for role in (R_GPU, R_OUTLET, R_PDU, R_UPS)}
    meter_ups = {m: u for u, m in topo.ups_meter.items()}
    have[R_UPS] |= {meter_ups[k[2][0]] for k in got.series if k[0] == R_UPS_METER and k[2][0] in meter_ups}
    out = []
    nodes = sorted(n for n in topo.nodes if n not in have[R_GPU])
    if nodes:
        out.append(SeriesRead(R_GPU, GPU_M, "power_w", _only(nodes), _GPU_TAGS))
    pdus_o = sorted(p for p in topo.pdus if p not in have[R_OUTLET])
    if pdus_o:
        out.append(SeriesRead(R_OUTLET, PDU_M, "power_w", _and(_only(pdus_o), _OUTLET_WHERE), _OUTLET_TAGS))
    pdus_t = sorted(p for p in topo.pdus if p not in have[R_PDU])
    if pdus_t:
        out.append(SeriesRead(R_PDU, PDU_M, "power_w", _and(_only(pdus_t), _TOTAL_WHERE), _TOTAL_TAGS))
    ups = sorted(u for u in topo.upses if u not in have[R_UPS])
    if ups:
        out.append(SeriesRead(R_UPS, UPS_M, "power_w", _and(_only(ups), f"\"{STAGE}\" = '{OUTPUT}'"),
                              (T.DEVICE, T.PHASE)))
    return out


def chain_inputs(topo: _Topology, got: Fetched, edges: np.ndarray, site: Site, gap_s: float) -> ChainInputs:
    """The fetched series as the pure chain's inputs (devices the inventory does not know are left out)."""
    gpus: list[GpuSeries] = []
    outlets: list[OutletSeries] = []
    pdu_totals: dict[str, list] = {}
    ups_out: dict[str, list] = {}
    meter_ups = {m: u for u, m in topo.ups_meter.items()}
    ups_power: dict[str, dict[str, np.ndarray]] = {}
    gpu_counters = {(k[2][0], k[2][1]) for k in got.series if k[0] == R_GPU and k[1] == "energy_kwh"}
    outlet_counters = {k[2][:2] for k in got.series if k[0] == R_OUTLET and k[1] == "energy_kwh"}
    pdus = set(topo.pdus)
    for (role, fld, tags), a in sorted(got.series.items(), key=lambda kv: kv[0]):
        if role == R_GPU and tags[0] in topo.nodes:
            if fld == "power_w" and (tags[0], tags[1]) in gpu_counters:
                continue      # a GPU read both ways: its counter counts
            gpus.append(GpuSeries(tags[0], tags[1], Workload(*tags[2:]), fld, a))
        elif role == R_OUTLET and tags[0] in pdus:
            if fld == "power_w" and tags[:2] in outlet_counters:
                continue
            outlets.append(OutletSeries(tags[0], tags[1], tags[2], fld, a))
        elif role == R_PDU and tags[0] in pdus:
            pdu_totals.setdefault(tags[0], []).append((fld, a))
        elif role == R_UPS_METER and tags[0] in meter_ups:
            ups_out.setdefault(meter_ups[tags[0]], []).append((fld, a))
        elif role == R_UPS and fld == "energy_kwh":
            ups_out.setdefault(tags[0], []).append((fld, a))
        elif role == R_UPS:
            ups_power.setdefault(tags[0], {})[tags[1]] = a
    for ups, by_phase in ups_power.items():
        if ups in ups_out:
            continue
        if "" in by_phase:       # the unit's total beats the sum of its phases
            ups_out[ups] = [("power_w", by_phase[""])]
        else:
            ups_out[ups] = [("power_w", a) for _, a in sorted(by_phase.items())]
    return ChainInputs(edges=edges, gpus=gpus, outlets=outlets, pdu_totals=pdu_totals, ups_outputs=ups_out,
                       node_place=topo.nodes, node_pdus=topo.node_pdus, pdu_upses=topo.pdu_upses,
                       device_hall=topo.halls, tenant_of=site.tenant_of, max_power_gap_s=gap_s)


def build_energy_report(site: Site, client: InfluxQuery, req: EnergyRequest) -> EnergyReport:
    """Read, split, and add the facility share and carbon from the PUE report of the same period."""
    topo = site_topology(site)
    if not topo.nodes:
        raise ReportError("the site has no GPU nodes (kind: gpu_node): there is nothing to attribute")
    pue_req = ReportRequest(req.start_s, req.end_s, req.category, tier=req.tier,
                            emission_factor=req.emission_factor, emission_factors=req.emission_factors,
                            progress=False)
    source, why = _source(client, pue_req, site)
    got = fetch_series(client, chain_reads(topo), req.start_s, req.end_s, source)
    more = fallback_reads(topo, got)
    if more:
        extra = fetch_series(client, more, req.start_s, req.end_s, source)
        got.series.update(extra.series)
        got.queries += extra.queries
    hours = hour_grid(req.start_s, req.end_s)
    edges = np.asarray([a for a, _ in hours] + [hours[-1][1]], dtype=float)
    gap = 900.0 if source.is_raw else 1.5 * source.step_s
    att, _ = attribute(chain_inputs(topo, got, edges, site, gap), req.by)
    months = [dt.datetime.fromtimestamp(a, dt.timezone.utc).strftime("%Y-%m") for a, _ in hours]
    warnings = list(att.warnings)
    pue_m: dict[str, float | None] = {}
    cue_m: dict[str, float | None] = {}
    pue_t = cue_t = e_it = None
    pue_hash = ""
    queries = list(got.queries)
    try:
        pue = build_pue_report(site, client, pue_req)
        pue_m = {k.label: k.pue for k in pue.months}
        cue_m = {k.label: k.cue for k in pue.months}
        pue_t, cue_t, e_it = pue.total.pue, pue.total.cue, pue.total.e_it_kwh
        pue_hash = pue.input_sha256
        queries += pue.queries
        warnings += [f"PUE report: {w}" for w in pue.warnings]
    except ReportError as exc:
        warnings.append(f"no facility share or carbon: the PUE report cannot be made ({exc})")
    hall_p: dict[str, dict[str, float | None]] = {}
    hall_c: dict[str, dict[str, float | None]] = {}
    if req.pue_scope == "hall" and pue_m:
        for hall, rep in hall_pue_reports(site, client, pue_req, warnings).items():
            hall_p[hall] = {k.label: k.pue for k in rep.months}
            hall_c[hall] = {k.label: k.cue for k in rep.months}
            queries += rep.queries
    add_facility(att, edges, months, pue_m, cue_m, hall_p, hall_c)
    if e_it and att.measured_kwh and abs(e_it - att.measured_kwh) > 0.01 * e_it:
        warnings.append(f"the measured IT total here ({att.measured_kwh:.1f} kWh, UPS outputs) differs from the PUE "
                        f"report's E_IT at category {req.category} ({e_it:.1f} kWh) by more than 1 %")
    return EnergyReport(
        site_id=site.site.id, site_name=site.site.name or site.site.id, period_start=iso_utc(req.start_s),
        period_end=iso_utc(req.end_s), by=req.by, rows=att.rows, measured_kwh=att.measured_kwh,
        months=sorted(set(months)), pue_category=req.category, pue_by_month=pue_m, cue_by_month=cue_m,
        pue_total=pue_t, cue_total=cue_t, e_it_kwh_pue=e_it, pue_by_hall=hall_p, warnings=warnings, methods=att.methods,
        queries=queries, input_sha256=input_hash(got), pue_input_sha256=pue_hash, source=why,
        hourly=att.hourly, edges=edges)


class _MetersOf:
    """A site as the PUE report sees it, holding only some of its meters (one hall's)."""

    def __init__(self, site: Site, meters: list) -> None:
        self.site, self._meters = site.site, meters

    def all_devices(self) -> list:
        return self._meters


def meter_halls(site: Site) -> dict[str, str]:
    """Meter id -> the hall it meters: its own hall, its measured device's, or the one hall every
    placed device downstream of the measured device sits in (a hall's transformer feeds that hall)."""
    g = PowerGraph(site)
    out: dict[str, str] = {}
    for d in site.all_devices():
        if d.meter is None:
            continue
        hall = d.hall
        if not hall and d.measures and site.has_device(d.measures):
            target = site.device(d.measures)
            hall = target.hall
            if not hall:
                below = {site.device(x).hall for x in g.downstream(target.id) if site.device(x).hall}
                hall = below.pop() if len(below) == 1 else None
        if hall:
            out[d.id] = hall
    return out


def hall_pue_reports(site: Site, client: InfluxQuery, req: ReportRequest, warnings: list[str]) -> dict:
    """Hall -> the PUE report of its own meters, for each hall of a site with several whose meters make one."""
    if len(site.halls) < 2:
        return {}
    of = meter_halls(site)
    out = {}
    for h in site.halls:
        meters = [d for d in site.all_devices() if d.meter is not None and of.get(d.id) == h.id]
        try:
            out[h.id] = build_pue_report(_MetersOf(site, meters), client, req)  # type: ignore[arg-type]
        except ReportError as exc:
            warnings.append(f"hall {h.id}: no PUE of its own ({exc}); its facility share uses the site's PUE")
    return out


def _source(client: InfluxQuery, req: ReportRequest, site: Site) -> tuple[TierSource, str]:
    meters = [d.id for d in site.all_devices() if d.meter is not None]
    return choose_source(client, req, meters)


# -- the tenant statement -----------------------------------------------------------------------
@dataclass
class TenantStatement:
    tenant: str
    tenant_name: str
    report: EnergyReport                 # by namespace
    namespaces: list[EntityRow]
    it_kwh: float
    facility_kwh: float | None
    co2_kg: float | None
    estimated_kwh: float
    peak_kw: float
    peak_at: str
    by_month: dict[str, float]
    facility_by_month: dict[str, float | None]
    co2_by_month: dict[str, float | None]
    share_pct: float


def tenant_statement(site: Site, report: EnergyReport, tenant: str) -> TenantStatement:
    """One tenant's figures from a ``--by namespace`` report: its namespaces' rows, summed hour by hour."""
    if report.by != "namespace":
        raise ValueError("a tenant statement is made from a report by namespace")
    known = {t.id: t for t in site.tenants}
    if tenant not in known:
        raise ReportError(f"--tenant {tenant}: no such tenant in the site file "
                          f"(tenants: {', '.join(sorted(known)) or 'none'})")
    t = known[tenant]
    rows = [r for r in report.rows if r.kind == "workload" and r.entity in t.namespaces]
    n = len(report.edges) - 1 if report.edges is not None else 0
    h = np.zeros(n)
    for r in rows:
        h = h + report.hourly[r.entity]
    hours = np.diff(report.edges) / 3600.0 if n else np.zeros(0)
    peak, at = 0.0, ""
    if n:
        kw = h / np.where(hours > 0, hours, 1.0)
        i = int(np.argmax(kw))
        peak, at = float(kw[i]), iso_utc(float(report.edges[i]))

    def total(attr: str) -> float | None:
        vals = [getattr(r, attr) for r in rows]
        return None if any(v is None for v in vals) else math.fsum(vals)

    it = math.fsum(r.it_kwh for r in rows)
    by_month = {m: math.fsum(r.by_month.get(m, 0.0) for r in rows) for m in report.months}

    def month_sum(attr: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for m in report.months:
            vals = [getattr(r, attr).get(m) for r in rows]
            out[m] = None if any(v is None for v in vals) else math.fsum(vals)
        return out
    return TenantStatement(tenant=tenant, tenant_name=t.name or tenant, report=report, namespaces=rows, it_kwh=it,
                           facility_kwh=total("facility_kwh"), co2_kg=total("co2_kg"),
                           estimated_kwh=math.fsum(r.estimated_kwh for r in rows), peak_kw=peak, peak_at=at,
                           by_month=by_month, facility_by_month=month_sum("facility_by_month"),
                           co2_by_month=month_sum("co2_by_month"),
                           share_pct=100.0 * it / report.measured_kwh if report.measured_kwh else 0.0)

