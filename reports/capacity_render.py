"""CSV, JSON and HTML renderings of a :class:`~reports.capacity.CapacityReport`.

Byte-identical for identical inputs (fixed float formatting, sorted JSON keys,
no generation time unless one is passed), like the PUE report's renderings.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json

from reports.capacity import LEVEL_ORDER, CapacityReport, CapacityRow, top_stranded
from reports.energy import iso_utc
from reports.html_table import esc as _e, html_table
from reports.render_data import fmt, plain

__all__ = ["CSV_COLUMNS", "to_csv", "to_json", "to_html", "render_capacity", "METHOD"]

#: (column, decimals or None for text/integers), in order
CSV_COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("level", None), ("id", None), ("hall", None), ("row", None), ("redundancy", None),
    ("rated_w", 1), ("allocated_w", 1), ("unallocated_w", 1), ("unrated", None), ("usable_w", 1),
    ("peak_w", 1), ("p99_w", 1), ("own_peak_w", 1), ("own_p99_w", 1), ("samples", None),
    ("headroom_w", 1), ("headroom_pct", 2), ("stranded_w", 1), ("stranded_pct", 2),
)

#: the method, in the report (reports/README.md says the same at length)
METHOD = (
    ("Allocated", "PDU, UPS, transformer: Σ nameplate (rated_kw; a transformer's rated_kva at unity power factor) "
                  "of the devices it feeds directly. Rack: Σ nameplate of its GPU nodes, servers and switches. "
                  "Row: Σ its racks; hall: Σ its racks and loose PDUs. 'unrated' counts connected devices "
                  "without a nameplate (the allocation is low by their share)."),
    ("Usable", "What the element carries with its redundancy kept: N all units, N+1 all but the largest, 2N the "
               "weakest side (rack PDUs grouped by their UPS; a UPS or transformer group one unit a side), "
               "never above the rack's rating. PDU: its rating. Row: Σ rack usable. Hall: its rating (else Σ racks)."),
    ("Peak, p99", "Of design_load_w: the load the element must carry when the failure its design survives "
                  "happens (a 2N rack's PDU: the whole rack; a UPS or transformer of a redundant group: the "
                  "group; otherwise its own load). own_peak/own_p99: of its own load_w. InfluxDB percentile "
                  "(nearest rank)."),
    ("Headroom", "usable − peak."),
    ("Stranded", "allocated − peak: connected nameplate never drawn, even on a failure. Unallocated: rated − "
                 "allocated."),
)


def _cells(r: CapacityRow) -> list[str]:
    out = []
    for name, dec in CSV_COLUMNS:
        v = getattr(r, name)
        out.append(fmt(v, dec) if dec is not None else ("" if v is None else str(v)))
    return out


def to_csv(report: CapacityReport, generated_at: str | None = None) -> str:
    """One row per element, in report order; the input hash and source as trailing comment rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _ in CSV_COLUMNS])
    for r in report.rows:
        w.writerow(_cells(r))
    w.writerow([f"# {report.site_id} {iso_utc(report.start_s)}..{iso_utc(report.end_s)} (end exclusive); {report.source}"])
    w.writerow([f"# input sha256 {report.input_sha256}"])
    if generated_at:
        w.writerow([f"# generated {generated_at}"])
    return buf.getvalue()


def to_json(report: CapacityReport, generated_at: str | None = None) -> str:
    d = plain(dataclasses.asdict(report))
    d["period_start"], d["period_end"] = iso_utc(report.start_s), iso_utc(report.end_s)
    d["format"] = "iozera-dcim/capacity-report/1"
    d["method"] = dict(METHOD)
    if generated_at:
        d["generated_at"] = generated_at
    return json.dumps(d, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


_CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 7px;font-size:12px}
th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:11px;word-break:break-all}
.warn{color:#a33}"""


def _kw(x: float | None) -> str:
    return fmt(x / 1000.0, 1) if x is not None else ""


_HEAD = ["Id", "Hall", "Row", "Redundancy", "Rated kW", "Allocated kW", "Unallocated kW", "Usable kW", "Peak kW",
         "p99 kW", "Own peak kW", "Headroom kW", "Headroom %", "Stranded kW", "Stranded %", "Samples"]


def _html_row(r: CapacityRow) -> list[str]:
    return [r.id, r.hall, r.row, r.redundancy, _kw(r.rated_w), _kw(r.allocated_w), _kw(r.unallocated_w),
            _kw(r.usable_w), _kw(r.peak_w), _kw(r.p99_w), _kw(r.own_peak_w), _kw(r.headroom_w),
            fmt(r.headroom_pct, 1), _kw(r.stranded_w), fmt(r.stranded_pct, 1), str(r.samples)]


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 4) -> str:
    return html_table(head, rows, numeric_from)


def to_html(report: CapacityReport, generated_at: str | None = None) -> str:
    """One self-contained page: totals per level, the top stranded racks, a table per level, method, audit trail."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Capacity report "
             f"{_e(report.site_id)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Capacity and stranded power — {_e(report.site_name)}</h1>",
             f"<p>Site <b>{_e(report.site_id)}</b>, window {iso_utc(report.start_s)} to {iso_utc(report.end_s)} "
             f"(end exclusive). Read from {_e(report.source)}."
             + (f" Generated {_e(generated_at)}." if generated_at else "") + "</p>"]
    tot_rows = [[lvl, str(t["elements"]), _kw(t["rated_w"]), _kw(t["allocated_w"]), _kw(t["unallocated_w"]),  # type: ignore[arg-type]
                 _kw(t["stranded_w"]), fmt(t["min_headroom_pct"], 1), str(t["unmeasured"])]  # type: ignore[arg-type]
                for lvl in LEVEL_ORDER if (t := report.totals.get(lvl))]
    parts.append("<h2>Per level</h2>" + _table(["Level", "Elements", "Σ rated kW", "Σ allocated kW",
                                                "Σ unallocated kW", "Σ stranded kW", "Lowest headroom %",
                                                "Unmeasured"], tot_rows, numeric_from=1))
    if report.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class=\"warn\">{_e(w)}</li>" for w in report.warnings)
                     + "</ul>")
    top = top_stranded(report.rows)
    if top:
        parts.append("<h2>Top stranded racks</h2>" + _table(_HEAD, [_html_row(r) for r in top]))
    for lvl in LEVEL_ORDER:
        rows = [_html_row(r) for r in report.rows if r.level == lvl]
        if rows:
            parts.append(f"<h2>{_e(lvl.capitalize())}s</h2>" + _table(_HEAD, rows))
    parts.append("<h2>Method</h2><dl>" + "".join(f"<dt><b>{_e(t)}</b></dt><dd>{_e(p)}</dd>" for t, p in METHOD)
                 + "</dl>")
    parts.append(f"<h2>Audit trail</h2><p>Input SHA-256: <code>{_e(report.input_sha256)}</code></p><ol>"
                 + "".join(f"<li><code>{_e(q)}</code></li>" for q in report.queries) + "</ol></body></html>\n")
    return "".join(parts)


def render_capacity(report: CapacityReport, fmt_name: str, generated_at: str | None = None) -> str:
    """The report in one of the formats ``dcim report capacity --format`` offers."""
    if fmt_name == "csv":
        return to_csv(report, generated_at)
    if fmt_name == "json":
        return to_json(report, generated_at)
    if fmt_name == "html":
        return to_html(report, generated_at)
    raise ValueError(f"unknown capacity report format {fmt_name!r}")
