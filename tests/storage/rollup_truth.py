"""The rollups a tier should hold, computed here from raw points read back: an independent check.

Not the code under test: plain Python over ``SELECT *`` rows, bucketed by hand.
"""
from __future__ import annotations

import math
from collections import defaultdict

from storage.fields import rollups


def _series_key(tags: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in tags.items() if v not in (None, "")))


def read_series(server, db: str, rp: str, measurement: str, a_ns: int, b_ns: int) -> dict[tuple, list[dict]]:
    body = server.query(f'SELECT * FROM "{rp}"."{measurement}" WHERE time >= {a_ns} AND time < {b_ns} GROUP BY *',
                        db=db)
    out: dict[tuple, list[dict]] = {}
    for s in body["results"][0].get("series", []):
        out[_series_key(s.get("tags") or {})] = [dict(zip(s["columns"], v)) for v in s["values"]]
    return out


def field_types(server, db: str, rp: str, measurement: str) -> dict[str, str]:
    body = server.query(f'SHOW FIELD KEYS FROM "{rp}"."{measurement}"', db=db)
    return {k: t for s in body["results"][0].get("series", []) for k, t in s["values"]}


def expected(raw: dict[tuple, list[dict]], types: dict[str, str], step_ns: int) -> dict[tuple, dict[int, dict]]:
    """series -> bucket start -> stored field -> value."""
    out: dict[tuple, dict[int, dict]] = {}
    for key, rows in raw.items():
        buckets: dict[int, list[dict]] = defaultdict(list)
        for r in rows:
            buckets[r["time"] - r["time"] % step_ns].append(r)
        per = {}
        for b, rs in buckets.items():
            rs.sort(key=lambda r: r["time"])
            vals = {}
            for f, typ in types.items():
                xs = [r[f] for r in rs if r.get(f) is not None]
                if not xs:
                    continue
                for ro in rollups(f, typ):
                    if ro.function == "mean":
                        vals[ro.target] = math.fsum(xs) / len(xs)
                    elif ro.function == "max":
                        vals[ro.target] = max(xs)
                    elif ro.function == "min":
                        vals[ro.target] = min(xs)
                    else:
                        vals[ro.target] = xs[-1]
            if vals:
                per[b] = vals
        out[key] = per
    return out


def mismatches(want: dict[tuple, dict[int, dict]], got: dict[tuple, list[dict]], buckets: set[int] | None = None,
               rel: float = 1e-9) -> list[str]:
    """What differs between the expected buckets and the tier's rows (only ``buckets`` if given)."""
    have = {k: {r["time"]: r for r in rows} for k, rows in got.items()}
    bad = []
    for key, per in want.items():
        for b, vals in per.items():
            if buckets is not None and b not in buckets:
                continue
            row = have.get(key, {}).get(b)
            if row is None:
                bad.append(f"{key} @ {b}: bucket missing")
                continue
            for f, v in vals.items():
                g = row.get(f)
                if isinstance(v, float) or isinstance(g, float):
                    if g is None or not math.isclose(float(g), float(v), rel_tol=rel, abs_tol=1e-9):
                        bad.append(f"{key} @ {b} {f}: tier {g!r} != raw {v!r}")
                elif g != v:
                    bad.append(f"{key} @ {b} {f}: tier {g!r} != raw {v!r}")
    return bad


def count_points(server, db: str, rp: str, measurement: str) -> int:
    rows = read_series(server, db, rp, measurement, 0, 2 ** 62)
    return sum(len(v) for v in rows.values())
