"""Glue between a site file, InfluxDB and the pure computation (the only I/O path of a report)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from inventory.model import Site
from reports.pue import Certificate, PueReport, ReportError, compute_report, field_for, report_meters
from reports.query import fetch_readings
from sinks.influx_query import InfluxQuery

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


def build_pue_report(site: Site, client: InfluxQuery, req: ReportRequest) -> PueReport:
    """Read the meters the site declares and compute the report; the queries and input hash go with it."""
    meters = [d for d in site.all_devices() if d.meter is not None]
    if not any(d.meter.role == "boundary" for d in meters):
        raise ReportError("the site has no boundary meter (meter.role: boundary); E_DC, and so PUE, "
                          "cannot be computed")
    wanted = [(d.id, field_for(d, req.integrate_power)) for d in report_meters(meters, req.category)]
    fetched = fetch_readings(client, wanted, req.start_s, req.end_s, progress=req.progress)
    default = req.emission_factor if req.emission_factor is not None else site.site.grid_emission_kgco2e_per_kwh
    factors = None if req.emission_factor is not None else req.emission_factors
    report = compute_report(
        site_id=site.site.id, site_name=site.site.name or site.site.id, meters=meters,
        readings=fetched.readings, start_s=req.start_s, end_s=req.end_s, category=req.category,
        integrate_power=req.integrate_power, emission_factors=factors, default_emission_factor=default,
        certificates=req.certificates)
    report.queries = fetched.queries
    report.input_sha256 = fetched.sha256
    return report


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
