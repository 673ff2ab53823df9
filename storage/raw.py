"""The raw tier as the rollups see it: which fields it holds, and the windows a rollup walks.

Shared by the server-side backfill (:mod:`storage.admin`, InfluxDB 1.x) and
the client-side rollup job (:mod:`storage.job`), so neither imports the other.
"""
from __future__ import annotations

from sinks.influx_query import InfluxQuery
from storage.tiers import StorageConfig

__all__ = ["raw_fields", "windows", "DAY_NS"]

DAY_NS = 86400 * 10**9


def raw_fields(client: InfluxQuery, config: StorageConfig) -> dict[str, dict[str, str]]:
    """measurement -> field -> type, in the raw retention policy."""
    out: dict[str, dict[str, str]] = {}
    names = [str(r[0]) for s in client.query("SHOW MEASUREMENTS LIMIT 100000") for r in s.values]
    for m in names:
        series = client.query(f'SHOW FIELD KEYS FROM "{config.raw.rp}"."{m}"')
        for s in series:
            for key, typ in s.values:
                out.setdefault(m, {})[str(key)] = str(typ)
    return out


def windows(start_ns: int, end_ns: int, step_ns: int, chunk_ns: int = DAY_NS) -> list[tuple[int, int]]:
    """``[start, end)`` cut at multiples of ``chunk_ns``, start and end aligned out to the tier's step."""
    a = start_ns - start_ns % step_ns
    b = end_ns + (-end_ns) % step_ns
    out = []
    while a < b:
        nxt = min(b, a - a % chunk_ns + chunk_ns)
        out.append((a, nxt))
        a = nxt
    return out
