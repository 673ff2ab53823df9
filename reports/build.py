"""Glue between a site file, InfluxDB and the pure computation (the only I/O path of a report)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from contract.measurements import METER
from inventory.model import Site
from reports.pue import Certificate, PueReport, ReportError, compute_report, field_for, report_meters
from reports.query import fetch_readings
from sinks.influx_query import InfluxQuery, QueryError
from storage.read import RAW, TierSource

__all__ = ["ReportRequest", "build_pue_report"]


@dataclass
class ReportRequest:
    start_s: float
    end_s: float
    category: int = 1
    integrate_power: frozenset[str] = frozenset()
    emission_factors: Mapping[str, float] | None = None
    emission_factor: float | None = None          # overrides the site default for every month
    certificates: Sequence[Certificate] = field(default_factory=list)
    progress: bool | None = None
    #: ``auto`` (the hourly tier where the period allows, else raw), ``raw``, or a tier name
    tier: str = "auto"


def build_pue_report(site: Site, client: InfluxQuery, req: ReportRequest) -> PueReport:
    """Read the meters the site declares and compute the report; the queries and input hash go with it."""
    meters = [d for d in site.all_devices() if d.meter is not None]
    if not any(d.meter.role == "boundary" for d in meters):
        raise ReportError("the site has no boundary meter (meter.role: boundary); E_DC, and so PUE, "
                          "cannot be computed")
    wanted = [(d.id, field_for(d, req.integrate_power)) for d in report_meters(meters, req.category)]
    source, why = choose_source(client, req, [m for m, _ in wanted])
    fetched = fetch_readings(client, wanted, req.start_s, req.end_s, progress=req.progress, source=source)
    default = req.emission_factor if req.emission_factor is not None else site.site.grid_emission_kgco2e_per_kwh
    factors = None if req.emission_factor is not None else req.emission_factors
    report = compute_report(
        site_id=site.site.id, site_name=site.site.name or site.site.id, meters=meters,
        readings=fetched.readings, start_s=req.start_s, end_s=req.end_s, category=req.category,
        integrate_power=req.integrate_power, emission_factors=factors, default_emission_factor=default,
        certificates=req.certificates,
        **({} if source.is_raw else {"max_power_gap_s": 1.5 * source.step_s}))
    report.queries = fetched.queries
    report.input_sha256 = fetched.sha256
    report.source = why
    return report


#: The longest tier step a report reads: hourly buckets keep the hourly renewable matching exact.
REPORT_MAX_STEP_S = 3600


def choose_source(client: InfluxQuery, req: ReportRequest, meter_ids: Sequence[str]) -> tuple[TierSource, str]:
    """Where the report reads, and the sentence that says so in the report.

    ``auto``: the coarsest recorded tier whose step divides an hour, when the period
    is at least a day, starts and ends on that step, and the tier holds a bucket at
    both ends of the period (a tier created after the period began has not got it);
    otherwise raw.  A named tier is used as asked, or refused with the reason.
    """
    from storage.admin import read_tiers

    if req.tier == "raw":
        return RAW, "raw readings (as asked)"
    tiers = [t for t in read_tiers(client) if REPORT_MAX_STEP_S % t.step_s == 0]
    if req.tier != "auto":
        named = [t for t in read_tiers(client) if t.name == req.tier or t.rp == req.tier]
        if not named:
            raise ReportError(f"--tier {req.tier}: no such tier on this database (run `dcim storage init`)")
        t = named[0]
        if REPORT_MAX_STEP_S % t.step_s:
            raise ReportError(f"--tier {req.tier}: its step ({t.step_s} s) does not divide an hour, "
                              "which the hourly renewable matching needs")
        return t, f"rollup tier {t.name} ({t.rp}, {t.step_s} s buckets; as asked)"
    if not tiers or req.end_s - req.start_s < 86400:
        return RAW, "raw readings (no rollup tier recorded, or a period under a day)"
    t = tiers[-1]
    if req.start_s % t.step_s or req.end_s % t.step_s:
        return RAW, f"raw readings (the period is not aligned to the {t.name} tier's {t.step_s} s buckets)"
    if not _has_bucket(client, t, meter_ids, req.start_s) or not _has_bucket(
            client, t, meter_ids, req.end_s - t.step_s):
        return RAW, f"raw readings (the {t.name} tier holds no bucket at one end of the period)"
    return t, f"rollup tier {t.name} ({t.rp}, {t.step_s} s buckets: counter last and max per bucket)"


def _has_bucket(client: InfluxQuery, tier: TierSource, meter_ids: Sequence[str], at_s: float) -> bool:
    """Does the tier hold any meter's bucket starting at ``at_s`` (or within the step after)?"""
    a, b = int(at_s) * 10**9, int(at_s + tier.step_s) * 10**9
    try:
        series = client.query(f'SELECT count(*) FROM "{tier.rp}"."{METER}" WHERE time >= {a} AND time < {b}')
    except QueryError:
        return False
    return any(v for s in series for row in s.values for v in row[1:] if v)


def render(report: PueReport, fmt: str, generated_at: str | None = None) -> str | bytes:
    """The report in one of the formats ``dcim report pue --format`` offers (pdf/html/csv/json).

    Build once, render many: the demo writes PDF, HTML and JSON from one set of queries.
    """
    if fmt == "json":
        from reports.render_data import to_json
        return to_json(report, generated_at)
    if fmt == "csv":
        from reports.render_data import to_csv
        return to_csv(report, generated_at)
    if fmt == "html":
        from reports.render_html import to_html
        return to_html(report, generated_at)
    if fmt == "pdf":
        from reports.render_pdf import to_pdf
        return to_pdf(report, generated_at)
    raise ValueError(f"unknown report format {fmt!r}")
