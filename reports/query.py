"""Reads the raw meter readings a report needs from InfluxDB, and records how.

Why raw points and not ``GROUP BY time(...) fill(none)`` aggregates: an
aggregate stamps each value with its bucket start, not the instant the meter
was read, which would shift energy across month boundaries.  Raw counter
readings are few enough (one per poll) when read month by month.  Every query
is bounded in time, one per field and month for all meters at once
(``GROUP BY "device"``), plus one ``last()`` before the period and one
``first()`` after it so the counter can be interpolated at the period edges.

The exact statements and a SHA-256 over the readings in a canonical binary form
go into the report: an auditor can rerun the queries and check the hash.

From a rollup tier (``source``, see docs/storage.md) the same plan reads the
tier's retention policy instead: one ``last`` (and ``max``) per counter and
bucket, placed at the bucket's end by :mod:`storage.read` — a year of hourly
buckets is ≈8,800 rows per meter instead of ≈3 million raw readings.
"""
from __future__ import annotations

import hashlib
import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from contract.fields import field_kind
from contract.measurements import METER
from contract.tags import DEVICE, PHASE
from reports.energy import Reading, iso_utc, month_grid
from sinks.influx_query import InfluxQuery, QueryError
from storage.fields import MAX_SUFFIX
from storage.influxql import literal
from storage.read import RAW, TierSource, counter_readings, mean_readings

__all__ = ["FetchResult", "MeterField", "QueryError", "canonical_hash", "fetch_readings", "plan_queries"]

#: Queries in flight at once: InfluxDB encodes one while this process decodes another.
QUERY_WORKERS = 3

#: How far before/after the period to look for the reading that anchors the counter at its edges.
EDGE_LOOKBACK_S = 7 * 86400

MeterField = tuple[str, str]   # (meter id, field)


@dataclass
class FetchResult:
    readings: dict[str, dict[str, list[Reading]]]
    queries: list[str] = field(default_factory=list)
    sha256: str = ""


#: Above this many meters a query reads every meter's series and the report keeps the ones it
#: wants: InfluxDB 1.x answers a month of a thousand meters ≈30 % sooner without a long OR.
DEVICE_FILTER_MAX = 200


def _where(ids: Sequence[str], fld: str) -> str:
    phase = f"\"{PHASE}\" = ''" if fld in ("energy_kwh", "power_w") else ""
    if len(ids) > DEVICE_FILTER_MAX:
        return phase or "true"
    devs = " OR ".join(f'"{DEVICE}" = {literal(i)}' for i in ids)
    return f"({devs})" + (f" AND {phase}" if phase else "")


def plan_queries(wanted: Iterable[MeterField], start_s: float, end_s: float,
                 measurement: str = METER, source: TierSource = RAW) -> list[tuple[str, str]]:
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
                         f"'{iso_utc(start_s - EDGE_LOOKBACK_S)}' AND time < '{iso_utc(start_s)}' GROUP BY \"device\""))
        for a, b in month_grid(start_s, end_s):
            out.append((fld, f'SELECT "{fld}" FROM {frm} WHERE {w} AND time >= '
                             f"'{iso_utc(a)}' AND time < '{iso_utc(b)}' GROUP BY \"device\""))
        out.append((fld, f'SELECT first("{fld}") FROM {frm} WHERE {w} AND time >= '
                         f"'{iso_utc(end_s)}' AND time < '{iso_utc(end_s + EDGE_LOOKBACK_S)}' GROUP BY \"device\""))
    return out


def canonical_hash(readings: dict[str, dict[str, list[Reading]]]) -> str:
    """SHA-256 of the readings in canonical form (reports/README.md, "Audit trail").

    For each meter in sorted order, each of its fields in sorted order: the meter
    id, a NUL byte, the field name, a NUL byte, the number of readings as an
    unsigned 64-bit little-endian integer, then the readings sorted by time as
    little-endian float64 pairs (epoch seconds, value).  Binary rather than JSON
    because a year of hourly buckets for a thousand meters is nine million
    readings: printing each float costs more than reading it.
    """
    h = hashlib.sha256()
    for m in sorted(readings):
        for f in sorted(readings[m]):
            rs = readings[m][f]
            if isinstance(rs, np.ndarray):
                arr = rs.astype("<f8").reshape(-1, 2)
                arr = arr[np.argsort(arr[:, 0], kind="stable")]
            else:
                arr = np.asarray(sorted(rs), dtype="<f8").reshape(-1, 2)
            h.update(m.encode() + b"\0" + f.encode() + b"\0" + len(arr).to_bytes(8, "little"))
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def fetch_readings(client: InfluxQuery, wanted: Iterable[MeterField], start_s: float, end_s: float, *,
                   progress: bool | None = None, source: TierSource = RAW) -> FetchResult:
    """Run the planned queries; readings keyed ``[meter][field] -> [(epoch s, value)]`` sorted by time.

    From a tier, a counter's readings are an (n, 2) array of the same pairs (storage.read).
    """
    wanted = list(wanted)
    plan = plan_queries(wanted, start_s, end_s, source=source)
    readings: dict[str, dict[str, list[Reading]]] = {m: {f: []} for m, f in wanted}
    for m, f in wanted:
        readings[m].setdefault(f, [])
    buckets: dict[tuple[str, str], list[tuple]] = {}   # tier rows, converted once all are in
    show = sys.stderr.isatty() if progress is None else progress
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    def rows_of(series, fld: str) -> list[tuple]:
        """(epoch s, value) per row with a value; a clear error naming a non-numeric one."""
        try:
            return [(r[0] / 1000.0, float(r[1])) for r in series.values if r[1] is not None]
        except (TypeError, ValueError):
            bad = next(r for r in series.values if r[1] is not None and not isinstance(r[1], (int, float)))
            raise QueryError(f"meter {series.tags.get(DEVICE, '')}: field {fld} holds a non-numeric value "
                             f"{bad[1]!r} at {bad[0]} ms") from None

    with Progress(TextColumn("reading meters"), BarColumn(), MofNCompleteColumn(),
                  console=Console(file=sys.stderr), transient=True, disable=not show) as bar, \
            ThreadPoolExecutor(max_workers=QUERY_WORKERS) as pool:
        task = bar.add_task("q", total=len(plan))
        # the server encodes one month while this process decodes the one before
        for (fld, _stmt), result in zip(plan, pool.map(lambda p: client.query(p[1], epoch="ms"), plan)):
            for series in result:
                dev = series.tags.get(DEVICE, "")
                if dev not in readings or fld not in readings[dev] or len(series.columns) < 2:
                    continue
                if source.is_raw:
                    readings[dev][fld].extend(rows_of(series, fld))
                else:
                    buckets.setdefault((dev, fld), []).append(_bucket_array(series, fld))
            bar.advance(task)
    queries = [q for _, q in plan]
    if buckets:
        queries += _tier_readings(client, source, buckets, readings)
    for fs in readings.values():
        for f in fs:
            if isinstance(fs[f], list):
                fs[f].sort()
    return FetchResult(readings, queries, canonical_hash(readings))


def _bucket_array(series, fld: str) -> np.ndarray:
    """A tier query's rows as an (n, 2) array of (epoch ms, value); NaN where empty."""
    vals = series.values
    try:
        return np.fromiter(itertools.chain.from_iterable(vals), dtype=float, count=2 * len(vals)).reshape(-1, 2)
    except (TypeError, ValueError):
        pass
    try:
        return np.asarray(vals, dtype=float).reshape(-1, 2)   # None (an empty value) becomes NaN
    except (TypeError, ValueError):
        bad = next(r for r in series.values if r[1] is not None and not isinstance(r[1], (int, float)))
        raise QueryError(f"meter {series.tags.get(DEVICE, '')}: field {fld} holds a non-numeric value "
                         f"{bad[1]!r} at {bad[0]} ms") from None


#: Bucket conditions per query when fetching the peaks of buckets that hold a drop.
PEAK_BATCH = 200


def _tier_readings(client: InfluxQuery, source: TierSource, buckets: dict, readings: dict) -> list[str]:
    """Turn a tier's buckets into readings (storage.read); fetch ``<field>_max`` only where a counter dropped.

    A counter's ``last`` is read for every bucket; its ``max`` (the peak before a
    reset or wrap) matters only in a bucket whose ``last`` is below the one before,
    so those few are fetched by time afterwards.  Returns the extra statements run.
    """
    arrays: dict[tuple[str, str], np.ndarray] = {}
    wanted_peaks: dict[str, list[tuple[str, int]]] = {}
    for key, parts in buckets.items():
        arr = np.concatenate(parts)
        arr = arr[np.isfinite(arr[:, 1])]
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
        arrays[key] = arr
        if field_kind(key[1]) == "counter" and len(arr) > 1:
            for i in np.flatnonzero(arr[1:, 1] < arr[:-1, 1]) + 1:
                wanted_peaks.setdefault(key[1], []).append((key[0], int(arr[i, 0])))
    peaks: dict[tuple[str, str, int], float] = {}
    extra: list[str] = []
    frm = f'"{source.rp}"."{METER}"'
    for fld, items in sorted(wanted_peaks.items()):
        for i in range(0, len(items), PEAK_BATCH):
            cond = " OR ".join(f'("{DEVICE}" = {literal(d)} AND time = {t}ms)' for d, t in items[i:i + PEAK_BATCH])
            phase = f" AND \"{PHASE}\" = ''" if fld in ("energy_kwh", "power_w") else ""
            q = f'SELECT "{fld}{MAX_SUFFIX}" FROM {frm} WHERE ({cond}){phase} GROUP BY "{DEVICE}"'
            extra.append(q)
            for series in client.query(q, epoch="ms"):
                for row in series.values:
                    if row[1] is not None:
                        peaks[(series.tags.get(DEVICE, ""), fld, int(row[0]))] = float(row[1])
    for (dev, fld), arr in arrays.items():
        t_s = arr[:, 0] / 1000.0
        if field_kind(fld) == "counter":
            peak = np.full(len(arr), np.nan)
            for i, ms in enumerate(arr[:, 0].tolist()) if fld in wanted_peaks else ():
                peak[i] = peaks.get((dev, fld, int(ms)), np.nan)
            # an (n, 2) array: the report's counter maths take it as it is
            readings[dev][fld] = counter_readings(np.column_stack((t_s, arr[:, 1], peak)), source.step_s)
        else:
            readings[dev][fld].extend(mean_readings(np.column_stack((t_s, arr[:, 1])), source.step_s))
    return extra
