"""Reads the raw meter readings a report needs from InfluxDB, and records how.

Why raw points and not ``GROUP BY time(...) fill(none)`` aggregates: an
aggregate stamps each value with its bucket start, not the instant the meter
was read, which would shift energy across month boundaries.  Raw counter
readings are few enough (one per poll) when read month by month.  Every query
is bounded in time, one per field and month for all meters at once
(``GROUP BY "device"``), plus one ``last()`` before the period and one
``first()`` after it so the counter can be interpolated at the period edges.

The exact statements and a SHA-256 over the canonical JSON of the readings go
into the report: an auditor can rerun the queries and check the hash.

From a rollup tier (``source``, see docs/storage.md) the same plan reads the
tier's retention policy instead: one ``last`` (and ``max``) per counter and
bucket, placed at the bucket's end by :mod:`storage.read` — a year of hourly
buckets is ≈8,800 rows per meter instead of ≈3 million raw readings.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from reports.energy import Reading, month_grid
from sinks.influx_query import InfluxQuery, QueryError
from contract.fields import field_kind
from storage.fields import MAX_SUFFIX
from storage.read import RAW, TierSource, counter_readings, mean_readings

__all__ = ["FetchResult", "MeterField", "QueryError", "canonical_hash", "fetch_readings", "plan_queries"]

#: How far before/after the period to look for the reading that anchors the counter at its edges.
EDGE_LOOKBACK_S = 7 * 86400

MeterField = tuple[str, str]   # (meter id, field)


@dataclass
class FetchResult:
    readings: dict[str, dict[str, list[Reading]]]
    queries: list[str] = field(default_factory=list)
    sha256: str = ""


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(ids: Sequence[str], fld: str) -> str:
    devs = " OR ".join(f'"device" = {_q(i)}' for i in ids)
    phase = " AND \"phase\" = ''" if fld in ("energy_kwh", "power_w") else ""
    return f"({devs}){phase}"


def _columns(fld: str, source: TierSource) -> str:
    if not source.is_raw and field_kind(fld) == "counter":
        return f'"{fld}", "{fld}{MAX_SUFFIX}"'
    return f'"{fld}"'


def plan_queries(wanted: Iterable[MeterField], start_s: float, end_s: float,
                 measurement: str = "meter", source: TierSource = RAW) -> list[tuple[str, str]]:
    """(field, InfluxQL) pairs: per field, edge anchors then one SELECT per calendar month.

    ``source``: raw (the default retention policy) or a rollup tier's retention policy.
    """
    by_field: dict[str, list[str]] = {}
    for meter, fld in wanted:
        by_field.setdefault(fld, []).append(meter)
    frm = f'"{measurement}"' if source.is_raw else f'"{source.rp}"."{measurement}"'
    out: list[tuple[str, str]] = []
    for fld in sorted(by_field):
        ids = sorted(set(by_field[fld]))
        w = _where(ids, fld)
        out.append((fld, f'SELECT last("{fld}") FROM {frm} WHERE {w} AND time >= '
                         f"'{_ts(start_s - EDGE_LOOKBACK_S)}' AND time < '{_ts(start_s)}' GROUP BY \"device\""))
        for a, b in month_grid(start_s, end_s):
            out.append((fld, f'SELECT {_columns(fld, source)} FROM {frm} WHERE {w} AND time >= '
                             f"'{_ts(a)}' AND time < '{_ts(b)}' GROUP BY \"device\""))
        out.append((fld, f'SELECT first("{fld}") FROM {frm} WHERE {w} AND time >= '
                         f"'{_ts(end_s)}' AND time < '{_ts(end_s + EDGE_LOOKBACK_S)}' GROUP BY \"device\""))
    return out


def canonical_hash(readings: dict[str, dict[str, list[Reading]]]) -> str:
    """SHA-256 of the readings as canonical JSON (sorted keys, no spaces, repr floats)."""
    canon = {m: {f: [[float(t), float(v)] for t, v in sorted(rs)] for f, rs in fs.items()}
             for m, fs in readings.items()}
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def fetch_readings(client: InfluxQuery, wanted: Iterable[MeterField], start_s: float, end_s: float, *,
                   progress: bool | None = None, source: TierSource = RAW) -> FetchResult:
    """Run the planned queries; readings keyed ``[meter][field] -> [(epoch s, value)]`` sorted by time."""
    wanted = list(wanted)
    plan = plan_queries(wanted, start_s, end_s, source=source)
    readings: dict[str, dict[str, list[Reading]]] = {m: {f: []} for m, f in wanted}
    for m, f in wanted:
        readings[m].setdefault(f, [])
    buckets: dict[tuple[str, str], list[tuple]] = {}   # tier rows, converted once all are in
    show = sys.stderr.isatty() if progress is None else progress
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("reading meters"), BarColumn(), MofNCompleteColumn(),
                  console=Console(file=sys.stderr), transient=True, disable=not show) as bar:
        task = bar.add_task("q", total=len(plan))
        for fld, q in plan:
            for series in client.query(q, epoch="ms"):
                dev = series.tags.get("device", "")
                if dev not in readings or fld not in readings[dev]:
                    continue
                if len(series.columns) < 2:
                    continue
                col = 1
                rows = []
                for row in series.values:
                    if row[col] is None:
                        continue
                    try:
                        rows.append((row[0] / 1000.0, *(float(x) if x is not None else None for x in row[1:])))
                    except (TypeError, ValueError):
                        raise QueryError(f"meter {dev}: field {fld} holds a non-numeric value {row[col]!r} "
                                         f"at {row[0]} ms") from None
                if source.is_raw:
                    readings[dev][fld].extend((r[0], r[1]) for r in rows)
                else:
                    buckets.setdefault((dev, fld), []).extend(rows)
            bar.advance(task)
    for (dev, fld), rows in buckets.items():
        rows.sort(key=lambda r: r[0])
        convert = counter_readings if field_kind(fld) == "counter" else mean_readings
        readings[dev][fld].extend(convert(rows, source.step_s))
    for fs in readings.values():
        for f in fs:
            fs[f].sort()
    return FetchResult(readings, [q for _, q in plan], canonical_hash(readings))
