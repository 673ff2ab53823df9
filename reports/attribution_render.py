"""``dcim report energy`` renderings: CSV, JSON, HTML and PDF, and the tenant statement (PDF, HTML, JSON, CSV).

Like the PUE report's: byte-identical for identical inputs (sorted keys, fixed
decimals, no generation time unless asked), the methodology printed with the
figures, the statements run and the input hash at the end.
"""
from __future__ import annotations

import csv
import io
import json

from reports.attribution import RESIDUAL_PDU, RESIDUAL_UPS, UNALLOCATED, UNMAPPED, EntityRow
from reports.attribution_build import EnergyReport, TenantStatement
from reports.html_table import esc as _e, html_table
from reports.render_data import fmt, plain

__all__ = ["ROW_COLUMNS", "energy_dict", "render_energy", "render_statement", "methodology"]

#: (column, decimals) of each entity row, in order
ROW_COLUMNS: tuple[tuple[str, int], ...] = (
    ("it_kwh", 3), ("share_pct", 3), ("gpu_kwh", 3), ("estimated_kwh", 3), ("estimated_share", 4),
    ("facility_kwh", 3), ("co2_kg", 3), ("peak_kw", 3),
)


def methodology(r: EnergyReport) -> list[tuple[str, str]]:
    cat = {1: "UPS output (category 1)", 2: "PDU output (category 2)", 3: "IT equipment input (category 3)"}
    return [
        ("Period", f"From {r.period_start} (inclusive) to {r.period_end} (exclusive), UTC; every energy is computed "
                   "per UTC hour (counters interpolated at the hour edges) and split within the hour."),
        ("GPU energy per workload", "Each GPU's DCGM total-energy counter; the increase up to each reading belongs "
         "to the workload (namespace, pod, job labels) on the GPU at that reading. Resets and wraps are bridged as "
         "in the PUE report. A GPU without the counter is integrated from its power readings (estimated). Readings "
         f"without workload labels are an idle GPU: {UNALLOCATED}."),
        ("Node energy", "The sum of the node's PDU outlet energies (outlets tagged feeds=<node>: outlet energy "
         "counters, else integrated outlet power, estimated), split among the workloads on its GPUs in proportion "
         "to their GPU energy in the hour; the node's non-GPU energy follows the same shares, the idle GPUs' share "
         f"and hours without GPU energy go to {UNALLOCATED}. A node without outlet readings counts its GPU energy "
         "only (estimated)."),
        ("Residuals", f"'{RESIDUAL_PDU}': each PDU's total energy minus its wired outlets (unwired outlets, the "
         f"PDU's own draw, metering differences). '{RESIDUAL_UPS}': each UPS's output (its category-1 IT meter, else "
         "its output counter, else integrated output power) minus the PDUs it feeds. Rows add up to the measured IT "
         "total: the UPS outputs plus PDUs no UPS feeds."),
        ("Tenants", "A workload's tenant is the site file's tenant listing its namespace (tenants: [{id, "
         f"namespaces}}]); a namespace no tenant lists is '{UNMAPPED}'."),
        ("Facility share", f"IT energy x that month's PUE (ISO/IEC 30134-2, energy-based, from the PUE report at "
         f"{cat.get(r.pue_category, r.pue_category)}), summed over months: the PUE of the hall the energy was used "
         "in where the hall's own meters (boundary and IT) make one"
         + (f" (here: {', '.join(sorted(r.pue_by_hall))})" if r.pue_by_hall else " (none here)")
         + f", else the site's. Site period PUE {fmt(r.pue_total, 4) or 'n/a'}."),
        ("Carbon", "IT energy x that month's CUE from the same PUE report, hall or site (grid kWh x the month's "
         "emission factor / E_IT), summed over months: each kWh of IT carries its grid carbon per kWh of IT."),
        ("Peak", "The highest hourly mean power of the entity (kWh in the hour / its length)."),
        ("Readings", f"Read from {r.source or 'raw readings'}."),
        ("Audit trail", "The InfluxQL statements run (attribution, then the PUE report's) and two SHA-256 hashes "
         "in the PUE report's canonical form: over the series the attribution read (named role|tag values), and "
         "the PUE report's."),
    ]


def _row_dict(r: EntityRow) -> dict:
    d = plain(r)
    d["estimated_share"] = round(r.estimated_share, 6)
    return d


def energy_dict(r: EnergyReport, generated_at: str | None = None) -> dict:
    d = {k: plain(getattr(r, k)) for k in (
        "site_id", "site_name", "period_start", "period_end", "by", "measured_kwh", "months", "pue_category",
        "pue_by_month", "cue_by_month", "pue_by_hall", "pue_total", "cue_total", "e_it_kwh_pue", "warnings", "methods", "queries",
        "input_sha256", "pue_input_sha256", "source")}
    d["rows"] = [_row_dict(x) for x in r.rows]
    d["total_it_kwh"] = round(r.total_it_kwh, 6)
    d["format"] = "iozera-dcim/energy-report/1"
    if generated_at:
        d["generated_at"] = generated_at
    return d


def _csv_row(r: EntityRow) -> list[str]:
    return [r.entity, r.kind] + [fmt(r.estimated_share if c == "estimated_share" else getattr(r, c), n)
                                 for c, n in ROW_COLUMNS] + [r.peak_at, str(r.nodes)]


def _csv(r: EnergyReport, generated_at: str | None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["entity", "kind"] + [c for c, _ in ROW_COLUMNS] + ["peak_at", "nodes"])
    for x in r.rows:
        w.writerow(_csv_row(x))
    fac = [x.facility_kwh for x in r.rows]
    co2 = [x.co2_kg for x in r.rows]
    w.writerow(["total", "measured", fmt(r.total_it_kwh, 3), fmt(100.0 if r.measured_kwh else 0.0, 3),
                fmt(sum(x.gpu_kwh for x in r.rows), 3), fmt(sum(x.estimated_kwh for x in r.rows), 3), "",
                fmt(None if None in fac else sum(fac), 3), fmt(None if None in co2 else sum(co2), 3), "", "", ""])
    w.writerow([f"# input_sha256 {r.input_sha256}"])
    if generated_at:
        w.writerow([f"# generated {generated_at}"])
    return buf.getvalue()


_CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 7px;font-size:13px}
th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:11px;word-break:break-all}
.warn{color:#a33}"""

HEAD = ["Entity", "Kind", "IT kWh", "Share %", "Facility kWh", "CO2 kg", "Peak kW", "Estimated %", "Nodes"]


def table_rows(rows: list[EntityRow]) -> list[list[str]]:
    return [[x.entity, x.kind, fmt(x.it_kwh, 1), fmt(x.share_pct, 2), fmt(x.facility_kwh, 1), fmt(x.co2_kg, 1),
             fmt(x.peak_kw, 2), fmt(100 * x.estimated_share, 2), str(x.nodes)] for x in rows]


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 2) -> str:
    return html_table(head, rows, numeric_from)


def _html_tail(r: EnergyReport) -> list[str]:
    out = ["<h2>Methodology</h2>"]
    out += [f"<p><b>{_e(t)}.</b> {_e(x)}</p>" for t, x in methodology(r)]
    out.append(f"<h2>Audit trail</h2><p>Input SHA-256 (attribution): <code>{_e(r.input_sha256)}</code><br>"
               f"Input SHA-256 (PUE report): <code>{_e(r.pue_input_sha256)}</code></p><ol>")
    out += [f"<li><code>{_e(q)}</code></li>" for q in r.queries]
    out.append("</ol>")
    return out


def _html(r: EnergyReport, generated_at: str | None) -> str:
    body = [f"<h1>Energy attribution by {_e(r.by)} — {_e(r.site_name)}</h1>",
            f"<p>Site {_e(r.site_id)}. Period {_e(r.period_start)} to {_e(r.period_end)} (end exclusive, UTC)."
            + (f" Generated {_e(generated_at)}." if generated_at else "") + "</p>",
            f"<p><b>Measured IT energy {fmt(r.measured_kwh, 1)} kWh</b> (UPS outputs); rows total "
            f"{fmt(r.total_it_kwh, 1)} kWh. Period PUE {fmt(r.pue_total, 3) or 'n/a'}, CUE "
            f"{fmt(r.cue_total, 3) or 'n/a'} kgCO2e/kWh.</p>",
            "<h2>Rows</h2>", _table(HEAD, table_rows(r.rows))]
    if r.warnings:
        body.append("<h2>Warnings</h2><ul>" + "".join(f'<li class="warn">{_e(w)}</li>' for w in r.warnings) + "</ul>")
    body += _html_tail(r)
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Energy attribution</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")


def _pdf_doc(title: str, generated_at: str | None):
    from reports.render_pdf import new_doc

    return new_doc(title, generated_at)


def _pdf_tail(pdf, r: EnergyReport) -> None:
    pdf.methodology_and_audit(methodology(r), [f"Input SHA-256 (attribution): {r.input_sha256}",
                                               f"Input SHA-256 (PUE report): {r.pue_input_sha256}"], r.queries)


_WIDTHS = [52, 18, 20, 13, 20, 16, 14, 14, 11]


def _pdf(r: EnergyReport, generated_at: str | None) -> bytes:
    pdf = _pdf_doc(f"Energy attribution {r.site_id} {r.period_start[:10]}..{r.period_end[:10]}", generated_at)
    pdf.h1(f"Energy attribution by {r.by} — {r.site_name}")
    pdf.para(f"Site {r.site_id}. Period {r.period_start} to {r.period_end} (end exclusive, UTC)."
             + (f" Generated {generated_at}." if generated_at else ""))
    pdf.para(f"Measured IT energy {fmt(r.measured_kwh, 1)} kWh (UPS outputs); rows total {fmt(r.total_it_kwh, 1)} "
             f"kWh. Period PUE {fmt(r.pue_total, 3) or 'n/a'}, CUE {fmt(r.cue_total, 3) or 'n/a'} kgCO2e/kWh.",
             size=10, style="B")
    pdf.grid(HEAD, table_rows(r.rows), _WIDTHS, numeric_from=2)
    if r.warnings:
        pdf.h2("Warnings")
        for w in r.warnings:
            pdf.para("- " + w, size=8)
    _pdf_tail(pdf, r)
    return bytes(pdf.output())


def render_energy(r: EnergyReport, fmt_name: str, generated_at: str | None = None) -> str | bytes:
    """The report in one of ``dcim report energy --format``'s formats."""
    if fmt_name == "json":
        return json.dumps(energy_dict(r, generated_at), sort_keys=True, indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    if fmt_name == "csv":
        return _csv(r, generated_at)
    if fmt_name == "html":
        return _html(r, generated_at)
    if fmt_name == "pdf":
        return _pdf(r, generated_at)
    raise ValueError(f"unknown report format {fmt_name!r}")


# -- the tenant statement ----------------------------------------------------------------------
def _statement_lines(s: TenantStatement) -> list[tuple[str, str]]:
    r = s.report
    return [("IT energy", f"{fmt(s.it_kwh, 1)} kWh ({fmt(s.share_pct, 2)} % of the site's measured IT energy)"),
            ("Facility energy", f"{fmt(s.facility_kwh, 1) or 'n/a'} kWh (IT x the month's PUE; period PUE "
                                f"{fmt(r.pue_total, 3) or 'n/a'})"),
            ("Facility overhead share", f"{fmt(None if s.facility_kwh is None else s.facility_kwh - s.it_kwh, 1) or 'n/a'} kWh"),
            ("Carbon", f"{fmt(s.co2_kg, 1) or 'n/a'} kgCO2e (IT x the month's CUE)"),
            ("Peak", f"{fmt(s.peak_kw, 2)} kW (hourly mean) at {s.peak_at or 'n/a'}"),
            ("Estimated", f"{fmt(s.estimated_kwh, 1)} kWh of the IT energy comes from integrated power")]


def _statement_dict(s: TenantStatement, generated_at: str | None) -> dict:
    d = {"format": "iozera-dcim/tenant-statement/1", "tenant": s.tenant, "tenant_name": s.tenant_name,
         "site_id": s.report.site_id, "period_start": s.report.period_start, "period_end": s.report.period_end,
         "it_kwh": s.it_kwh, "facility_kwh": s.facility_kwh, "co2_kg": s.co2_kg, "estimated_kwh": s.estimated_kwh,
         "peak_kw": s.peak_kw, "peak_at": s.peak_at, "share_pct": s.share_pct, "by_month": s.by_month,
         "facility_by_month": s.facility_by_month, "co2_by_month": s.co2_by_month,
         "namespaces": [_row_dict(x) for x in s.namespaces], "pue_total": s.report.pue_total,
         "pue_by_month": s.report.pue_by_month, "cue_by_month": s.report.cue_by_month,
         "input_sha256": s.report.input_sha256, "pue_input_sha256": s.report.pue_input_sha256,
         "queries": s.report.queries, "warnings": s.report.warnings}
    if generated_at:
        d["generated_at"] = generated_at
    return plain(d)


def render_statement(s: TenantStatement, fmt_name: str, generated_at: str | None = None) -> str | bytes:
    """One tenant's statement: energy, facility share, carbon, peak, with the method and audit trail."""
    r = s.report
    month_rows = [[m, fmt(v, 1), fmt(s.facility_by_month.get(m), 1), fmt(s.co2_by_month.get(m), 1),
                   fmt(None if not v or s.facility_by_month.get(m) is None else s.facility_by_month[m] / v, 4)]
                  for m, v in sorted(s.by_month.items())]
    month_head = ["Month", "IT kWh", "Facility kWh", "CO2 kg", "PUE applied"]
    if fmt_name == "json":
        return json.dumps(_statement_dict(s, generated_at), sort_keys=True, indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    if fmt_name == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["namespace", "kind"] + [c for c, _ in ROW_COLUMNS] + ["peak_at", "nodes"])
        for x in s.namespaces:
            w.writerow(_csv_row(x))
        w.writerow(["total", s.tenant, fmt(s.it_kwh, 3), fmt(s.share_pct, 3), "", fmt(s.estimated_kwh, 3), "",
                    fmt(s.facility_kwh, 3), fmt(s.co2_kg, 3), fmt(s.peak_kw, 3), s.peak_at, ""])
        w.writerow([f"# input_sha256 {r.input_sha256}"])
        return buf.getvalue()
    title = f"Energy statement — {s.tenant_name}"
    if fmt_name == "html":
        body = [f"<h1>{_e(title)}</h1>",
                f"<p>Tenant {_e(s.tenant)} at site {_e(r.site_id)} ({_e(r.site_name)}). Period {_e(r.period_start)} "
                f"to {_e(r.period_end)} (end exclusive, UTC)." + (f" Generated {_e(generated_at)}." if generated_at else "")
                + "</p>", "<table>"]
        body += [f"<tr><th>{_e(a)}</th><td>{_e(b)}</td></tr>" for a, b in _statement_lines(s)]
        body += ["</table><h2>Per month</h2>", _table(month_head, month_rows, 1),
                 "<h2>Per namespace</h2>", _table(HEAD, table_rows(s.namespaces))]
        body += _html_tail(r)
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Energy statement</title>"
                f"<style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")
    if fmt_name == "pdf":
        pdf = _pdf_doc(f"Energy statement {s.tenant} {r.period_start[:10]}..{r.period_end[:10]}", generated_at)
        pdf.h1(title)
        pdf.para(f"Tenant {s.tenant} at site {r.site_id} ({r.site_name}). Period {r.period_start} to {r.period_end} "
                 "(end exclusive, UTC)." + (f" Generated {generated_at}." if generated_at else ""))
        for a, b in _statement_lines(s):
            pdf.para(f"{a}: {b}", size=10, style="B" if a in ("IT energy", "Carbon") else "")
        pdf.h2("Per month")
        pdf.grid(month_head, month_rows, [30, 35, 35, 35, 25])
        pdf.h2("Per namespace")
        pdf.grid(HEAD, table_rows(s.namespaces), _WIDTHS, numeric_from=2)
        _pdf_tail(pdf, r)
        return bytes(pdf.output())
    raise ValueError(f"unknown statement format {fmt_name!r}")
