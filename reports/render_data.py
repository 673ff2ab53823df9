"""CSV and JSON renderings of a :class:`~reports.pue.PueReport`.

Byte-identical for identical inputs: sorted keys, fixed float formatting,
``\\n`` line ends, and no generation time unless the caller passes one — so
two runs can be compared with ``cmp`` and a report's hash means something.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

from reports.energy import iso_utc
from reports.pue import PeriodKpis, PueReport

__all__ = ["KPI_COLUMNS", "fmt", "report_dict", "to_csv", "to_json"]

#: (column, decimals) of the CSV, in order.
KPI_COLUMNS: tuple[tuple[str, int], ...] = (
    ("e_dc_kwh", 3), ("e_it_kwh", 3), ("pue", 4), ("boundary_kwh", 3), ("grid_kwh", 3), ("fuel_l", 3),
    ("fuel_kwh", 3), ("renewable_onsite_kwh", 3), ("renewable_ppa_kwh", 3), ("certificates_kwh", 3),
    ("renewable_kwh", 3), ("ref", 4), ("hourly_matched_kwh", 3), ("hourly_match_pct", 2),
    ("emission_factor", 4), ("co2_kg", 3), ("cue", 4), ("water_l", 3), ("wue", 4),
    ("estimated_kwh", 3), ("estimated_share", 4), ("coverage_pct", 2),
)


def fmt(x: float | None, decimals: int) -> str:
    """Fixed-point text; empty for an undefined value (never "nan")."""
    if x is None:
        return ""
    s = f"{x:.{decimals}f}"
    return "0." + "0" * decimals if s.startswith("-") and float(s) == 0 else s


def plain(obj: Any) -> Any:
    """JSON-ready copy of a report value: dataclasses as dicts, str keys, floats rounded to 6 places with no -0.0,
    so every report's JSON is byte-reproducible the same way."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, float):
        r = round(obj, 6)
        return 0.0 if r == 0 else r
    return obj


def report_dict(report: PueReport, generated_at: str | None = None) -> dict[str, Any]:
    d = plain(report)
    for b in d["bridges"]:
        b["time"] = iso_utc(b.pop("time_s"))
    d["format"] = "iozera-dcim/pue-report/1"
    if generated_at:
        d["generated_at"] = generated_at
    return d


def to_json(report: PueReport, generated_at: str | None = None) -> str:
    return json.dumps(report_dict(report, generated_at), sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


def _row(k: PeriodKpis) -> list[str]:
    return [k.label, k.start, k.end] + [fmt(getattr(k, c), n) for c, n in KPI_COLUMNS]


def to_csv(report: PueReport, generated_at: str | None = None) -> str:
    """One row per month then a ``total`` row; the period's PUE is E_DC/E_IT of the sums, not a mean of months."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["period", "start", "end"] + [c for c, _ in KPI_COLUMNS])
    for k in report.months:
        w.writerow(_row(k))
    w.writerow(_row(report.total))
    if generated_at:
        w.writerow([f"# generated {generated_at}"])
    return buf.getvalue()
