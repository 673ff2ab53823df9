"""Parsing of the report's side inputs: dates, emission factors, certificates.

Side inputs are CSV files so that an auditor can open them in a spreadsheet
and every error can name ``file:line`` and the column at fault.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

from inventory.errors import where
from inventory.yaml_lines import YamlProblem, read_limited
from reports.pue import Certificate, ReportError

__all__ = ["parse_date", "parse_period", "read_certificates", "read_emission_factors"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_date(text: str, option: str) -> float:
    """UTC epoch seconds of ``YYYY-MM``, ``YYYY-MM-DD`` or an ISO 8601 time (``Z`` or offset).

    A date alone means midnight UTC of that day; ``YYYY-MM`` the first of the month.
    """
    s = text.strip()
    try:
        if _MONTH.match(s):
            d = dt.datetime.strptime(s + "-01", "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        elif len(s) == 10:
            d = dt.datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        else:
            d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ReportError(f"{option} {text!r} is not a date: use YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ") from None
    return d.timestamp()


def parse_period(start: str, end: str) -> tuple[float, float]:
    """``--from`` inclusive, ``--to`` exclusive; at most 10 years."""
    a, b = parse_date(start, "--from"), parse_date(end, "--to")
    if b <= a:
        raise ReportError(f"--to {end} must be after --from {start} (the end is exclusive)")
    if b - a > 3653 * 86400:
        raise ReportError("the period is longer than 10 years; split it")
    return a, b


def _rows(path: str | Path, need: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = read_limited(path).removeprefix("\ufeff")  # size-capped like every file the project reads
    except YamlProblem as exc:
        raise ReportError(f"{path}: {exc.message}") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = [ln for ln in text.splitlines()]
    reader = csv.DictReader(lines)
    try:
        return _read_rows(path, reader, need)
    except csv.Error as exc:  # a field over csv's size limit, a NUL byte
        raise ReportError(f"{where(path, reader.line_num)}: not CSV: {str(exc)[:80]}") from None


def _read_rows(path, reader: csv.DictReader, need: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [n for n in need if n not in header]
    if missing:
        raise ReportError(f"{where(path, 1)}: header lacks column(s) {', '.join(missing)} (need {', '.join(need)})")
    reader.fieldnames = header
    out = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values()) or (row.get(header[0]) or "").startswith("#"):
            continue
        out.append((line, {k: (v or "").strip() for k, v in row.items() if k}))
    return out


def _number(path, line: int, col: str, value: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ReportError(f"{where(path, line)}: {col} {value[:40]!r} is not a number") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ReportError(f"{where(path, line)}: {col} {value[:40]} is outside {lo:g}..{hi:g}")
    return x


def _month(path, line: int, value: str) -> str:
    if not _MONTH.match(value):
        raise ReportError(f"{where(path, line)}: month {value[:40]!r} is not YYYY-MM")
    return value


def read_emission_factors(path: str | Path) -> dict[str, float]:
    """CSV ``month,kgco2e_per_kwh`` — grid emission factor per month (location-based)."""
    out: dict[str, float] = {}
    for line, row in _rows(path, ("month", "kgco2e_per_kwh")):
        m = _month(path, line, row["month"])
        if m in out:
            raise ReportError(f"{where(path, line)}: month {m} given twice")
        out[m] = _number(path, line, "kgco2e_per_kwh", row["kgco2e_per_kwh"], 0.0, 3.0)
    return out


def read_certificates(path: str | Path) -> list[Certificate]:
    """CSV ``id,month,kwh[,source]`` — guarantees of origin cancelled for the site's consumption."""
    out: list[Certificate] = []
    seen: set[str] = set()
    for line, row in _rows(path, ("id", "month", "kwh")):
        cid = row["id"]
        if not cid:
            raise ReportError(f"{where(path, line)}: id is empty")
        if cid in seen:
            raise ReportError(f"{where(path, line)}: certificate id {cid} given twice")
        seen.add(cid)
        out.append(Certificate(cid, _month(path, line, row["month"]),
                               _number(path, line, "kwh", row["kwh"], 0.0, 1e12), row.get("source") or "other"))
    return out
