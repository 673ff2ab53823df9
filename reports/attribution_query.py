"""Reads the series energy attribution needs, grouped by the tags that tell them apart.

The PUE report reads one series per meter (``GROUP BY "device"``); attribution
needs each GPU's series per workload (``GROUP BY "device", "gpu", "namespace",
"pod", "job"``) and each outlet's series with the device it feeds.  The plan
is the PUE report's (:mod:`reports.query`): per field, a ``last()`` in the week
before the period and a ``first()`` in the week after (they anchor counters at
the period's edges), and one bounded ``SELECT`` per calendar month.  From a
rollup tier the same statements read the tier's retention policy; a counter's
bucket ``last`` stands at the bucket's end, a mean at its middle
(:mod:`storage.read`).

Every statement run goes into the report, and the readings into its SHA-256
(:func:`reports.query.canonical_hash`, keyed by :func:`series_key`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from contract.fields import field_kind
from reports.energy import iso_utc, month_grid
from reports.query import EDGE_LOOKBACK_S, QUERY_WORKERS, canonical_hash
from sinks.influx_query import InfluxQuery, QueryError
from storage.read import RAW, TierSource, counter_readings

__all__ = ["SeriesRead", "Fetched", "plan_reads", "fetch_series", "series_key"]


@dataclass(frozen=True)
class SeriesRead:
    """One field of one measurement, restricted by ``where`` (tag conditions), grouped by ``group_by``.

    ``role`` says what the series stand for in the chain (``gpu``, ``outlet``, ``pdu``, ``ups``…):
    two reads of one measurement (a PDU's outlets and its totals) stay apart by it.
    """

    role: str
    measurement: str
    field: str
    where: str
    group_by: tuple[str, ...]


@dataclass
class Fetched:
    #: (role, field, tag values in group_by order) -> (n, 2) array of (epoch s, value), sorted by time
    series: dict[tuple[str, str, tuple[str, ...]], np.ndarray] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


def plan_reads(read: SeriesRead, start_s: float, end_s: float, source: TierSource = RAW) -> list[str]:
    """The statements for one read: edge anchors and one SELECT per calendar month, all bounded in time."""
    frm = f'"{read.measurement}"' if source.is_raw else f'"{source.rp}"."{read.measurement}"'
    w = f"({read.where}) AND " if read.where else ""
    grp = ", ".join(f'"{t}"' for t in read.group_by)
    f = f'"{read.field}"'
    out = [f"SELECT last({f}) FROM {frm} WHERE {w}time >= '{iso_utc(start_s - EDGE_LOOKBACK_S)}' "
           f"AND time < '{iso_utc(start_s)}' GROUP BY {grp}"]
    for a, b in month_grid(start_s, end_s):
        out.append(f"SELECT {f} FROM {frm} WHERE {w}time >= '{iso_utc(a)}' AND time < '{iso_utc(b)}' GROUP BY {grp}")
    out.append(f"SELECT first({f}) FROM {frm} WHERE {w}time >= '{iso_utc(end_s)}' "
               f"AND time < '{iso_utc(end_s + EDGE_LOOKBACK_S)}' GROUP BY {grp}")
    return out


def _rows(series, read: SeriesRead) -> np.ndarray:
    try:
        a = np.asarray(series.values, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        bad = next(r for r in series.values if r[1] is not None and not isinstance(r[1], (int, float)))
        raise QueryError(f"{read.measurement} {series.tags}: field {read.field} holds a non-numeric value "
                         f"{bad[1]!r} at {bad[0]} ms") from None
    return a[np.isfinite(a[:, 1])]


def fetch_series(client: InfluxQuery, reads: Sequence[SeriesRead], start_s: float, end_s: float,
                 source: TierSource = RAW) -> Fetched:
    """Run every read's plan (a few statements in flight at once); readings per series, in seconds."""
    plan = [(r, q) for r in reads for q in plan_reads(r, start_s, end_s, source)]
    parts: dict[tuple, list[np.ndarray]] = {}
    with ThreadPoolExecutor(max_workers=QUERY_WORKERS) as pool:
        for (read, _), result in zip(plan, pool.map(lambda p: client.query(p[1], epoch="ms"), plan)):
            for s in result:
                if len(s.columns) < 2 or not s.values:
                    continue
                key = (read.role, read.field, tuple(s.tags.get(t, "") for t in read.group_by))
                parts.setdefault(key, []).append(_rows(s, read))
    out = Fetched(queries=[q for _, q in plan])
    for key, ps in parts.items():
        a = np.concatenate(ps)
        a[:, 0] /= 1000.0
        a = a[np.argsort(a[:, 0], kind="stable")]
        if not source.is_raw:
            if field_kind(key[1]) == "counter":
                a = counter_readings(np.column_stack((a, np.full(len(a), np.nan))), source.step_s)
            else:
                a = a.copy()
                a[:, 0] += source.step_s / 2.0
        out.series[key] = a
    return out


def series_key(key: tuple[str, str, tuple[str, ...]]) -> str:
    """The name a series has in the input hash: ``role|tag values``."""
    return key[0] + "|" + "|".join(key[2])


def input_hash(fetched: Fetched) -> str:
    """SHA-256 over every series read, in the PUE report's canonical binary form."""
    readings: dict[str, dict[str, np.ndarray]] = {}
    for key, a in fetched.series.items():
        readings.setdefault(series_key(key), {})[key[1]] = a
    return canonical_hash(readings)
