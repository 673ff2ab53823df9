"""Self-contained HTML report: inline CSS, charts as embedded PNG, no scripts, no external links."""
from __future__ import annotations

import base64
import datetime as dt

from reports.charts import all_charts
from reports.html_table import esc as _e, html_table as _table
from reports.methodology import methodology
from reports.pue import PueReport
from reports.render_data import fmt

__all__ = ["to_html"]

_CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 7px;font-size:13px}
th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:11px;word-break:break-all}
.warn{color:#a33}"""


def kpi_rows(r: PueReport) -> list[list[str]]:
    rows = []
    for k in [*r.months, r.total]:
        rows.append([k.label, fmt(k.e_dc_kwh, 1), fmt(k.e_it_kwh, 1), fmt(k.pue, 3), fmt(k.ref, 3),
                     fmt(k.cue, 3), fmt(k.wue, 3) if r.has_water else "-", fmt(k.hourly_match_pct, 1),
                     fmt(100 * k.estimated_share, 2), fmt(k.coverage_pct, 2)])
    return rows


KPI_HEAD = ["Period", "E_DC kWh", "E_IT kWh", "PUE", "REF", "CUE kg/kWh", "WUE L/kWh", "Hourly match %",
            "Estimated %", "Coverage %"]


def meter_rows(r: PueReport) -> list[list[str]]:
    return [[m.id, m.role + (f" cat {m.category}" if m.category else ""), m.source or "-", m.method,
             f"{m.window_start[:10]}..{m.window_end[:10]}", fmt(m.total, 1) + " " + m.unit,
             fmt(m.coverage_pct, 2), fmt(m.longest_gap_h, 1), str(m.bridges)] for m in r.meters]


METER_HEAD = ["Meter", "Role", "Source", "Method", "Active", "Total", "Coverage %", "Longest gap h", "Bridges"]


def bridge_rows(r: PueReport) -> list[list[str]]:
    return [[b.meter, dt.datetime.fromtimestamp(b.time_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), b.kind,
             fmt(b.before, 3), fmt(b.after, 3), fmt(b.credited, 3), b.method] for b in r.bridges]


BRIDGE_HEAD = ["Meter", "Time (UTC)", "Kind", "Before", "After", "Credited", "How bridged"]


def to_html(r: PueReport, generated_at: str | None = None) -> str:
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>PUE report {_e(r.site_id)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Energy-based PUE report — {_e(r.site_name)}</h1>",
             f"<p>Site <b>{_e(r.site_id)}</b>, period {_e(r.period_start)} to {_e(r.period_end)} (end exclusive), "
             f"IT energy category {r.category}." + (f" Generated {_e(generated_at)}." if generated_at else "") + "</p>",
             f"<h2>Results</h2><p>Period PUE <b>{fmt(r.total.pue, 3) or 'n/a'}</b>, REF <b>{fmt(r.total.ref, 3) or 'n/a'}"
             f"</b>, CUE <b>{fmt(r.total.cue, 3) or 'n/a'}</b> kgCO2e/kWh"
             + (f", WUE <b>{fmt(r.total.wue, 3)}</b> L/kWh" if r.has_water else "") + ".</p>",
             _table(KPI_HEAD, kpi_rows(r))]
    if r.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class=\"warn\">{_e(w)}</li>" for w in r.warnings) + "</ul>")
    parts.append("<h2>Charts</h2>")
    for title, png in all_charts(r):
        parts.append(f"<figure><img alt=\"{_e(title)}\" src=\"data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}\"><figcaption>{_e(title)}</figcaption></figure>")
    parts.append("<h2>Meters</h2>" + _table(METER_HEAD, meter_rows(r), numeric_from=5))
    parts.append("<h2>Counter bridging</h2>" + (_table(BRIDGE_HEAD, bridge_rows(r), numeric_from=3) if r.bridges
                                                 else "<p>No counter resets or wraps in the period.</p>"))
    if r.certificates:
        parts.append("<h2>Certificates</h2>" + _table(["Id", "Month", "kWh", "Source"],
                     [[c.id, c.month, fmt(c.kwh, 1), c.source] for c in r.certificates], numeric_from=2))
    parts.append("<h2>Methodology</h2><dl>" + "".join(f"<dt><b>{_e(t)}</b></dt><dd>{_e(p)}</dd>"
                                                    for t, p in methodology(r)) + "</dl>")
    parts.append(f"<h2>Audit trail</h2><p>Input SHA-256: <code>{_e(r.input_sha256)}</code></p><ol>"
                 + "".join(f"<li><code>{_e(q)}</code></li>" for q in r.queries) + "</ol></body></html>\n")
    return "".join(parts)
