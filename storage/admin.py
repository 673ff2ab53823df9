"""``dcim storage init`` and ``dcim storage backfill`` against a live InfluxDB (the I/O around ``plan``).

Reads what the server has (retention policies, continuous queries, the raw
fields of every measurement), applies the planned statements, and writes the
tier table the dashboards read.  Backfill on InfluxDB 1.x runs server-side
``SELECT … INTO`` one day and measurement at a time: the same aggregates as the
continuous queries, so a backfilled bucket equals a continuously computed one,
and re-running a window rewrites the same points (no double counting).
"""
from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from sinks.influx_query import InfluxQuery, QueryError
from sinks.influx_transport import V1Transport, V2Transport, WriteFailed, detect_api, server_version
from storage.influxql import ident, into_window, tier_rows
from storage.raw import DAY_NS, raw_fields, windows
from storage.read import TierSource
from storage.plan import RetentionPolicy, ServerState, plan_init, wanted_rollups
from storage.tiers import META_RP, TIER_MEASUREMENT, StorageConfig, Tier

__all__ = ["StorageError", "read_state", "init", "backfill", "uses_cq", "raw_fields", "read_tiers"]


class StorageError(Exception):
    """A storage command that cannot go on; the message says why and what to do."""


def _duration_s(text: str) -> int | None:
    """InfluxDB's ``720h0m0s`` / ``0s`` (infinite) -> seconds / None."""
    if text in ("0s", "0", ""):
        return None
    total = 0
    num = ""
    for ch in text:
        if ch.isdigit():
            num += ch
        else:
            total += int(num or 0) * {"h": 3600, "m": 60, "s": 1}.get(ch, 0)
            num = ""
    return total


def read_state(client: InfluxQuery, config: StorageConfig) -> ServerState:
    dbs = {str(r[0]) for s in client.query("SHOW DATABASES") for r in s.values}
    if client.database not in dbs:
        return ServerState(database_exists=False)
    state = ServerState(database_exists=True)
    for s in client.query(f'SHOW RETENTION POLICIES ON "{client.database}"'):
        cols = s.columns
        for row in s.values:
            r = dict(zip(cols, row))
            state.policies[str(r["name"])] = RetentionPolicy(str(r["name"]), _duration_s(str(r["duration"])),
                                                             bool(r.get("default")))
    try:
        for s in client.query("SHOW CONTINUOUS QUERIES"):
            if s.name == client.database:
                state.continuous_queries = [str(r[0]) for r in s.values]
    except QueryError:
        state.supports_cq = False
    if config.raw.rp in state.policies:
        state.fields = raw_fields(client, config)
    return state


def read_tiers(client: InfluxQuery) -> list[TierSource]:
    """The rollup tiers ``dcim storage init`` recorded on this database (empty if never run)."""
    try:
        series = client.query(f'SELECT "rp", "step_s" FROM {ident(META_RP)}.{ident(TIER_MEASUREMENT)} GROUP BY "tier"')
    except QueryError:
        return []
    out = []
    for s in series:
        for _t, rp, step in s.values:
            if step:
                out.append(TierSource(str(s.tags.get("tier") or rp), str(rp), int(step)))
    return sorted(out, key=lambda t: t.step_s)


def uses_cq(config: StorageConfig, url: str, state: ServerState) -> bool:
    """Continuous queries where the configuration allows and the server has them (InfluxDB 1.x)."""
    if config.mechanism == "job":
        return False
    has = state.supports_cq and _is_1x(url)
    if config.mechanism == "continuous_queries" and not has:
        raise StorageError("mechanism continuous_queries: this InfluxDB has none (2.x/3.x); "
                           "use mechanism: job and run `dcim storage rollup`")
    return has


def _is_1x(url: str) -> bool:
    """InfluxDB 1.x (continuous queries, ``SELECT … INTO``), from the version ``/ping`` reports."""
    try:
        version = server_version(url)
    except WriteFailed as exc:
        raise StorageError(str(exc)) from None
    return version is not None and version[0] == 1


def write_meta(client: InfluxQuery, config: StorageConfig, token=None) -> int:
    """Write the tier table into the meta retention policy; returns the points written."""
    rows = tier_rows(config)
    payload = gzip.compress(("\n".join(rows) + "\n").encode(), 1)
    if detect_api(client.url) == "v1":
        V1Transport(client.url, client.database, META_RP, token).send(payload)
    else:
        transport = V2Transport(client.url, f"{client.database}/{META_RP}", token=token)
        try:
            transport.send(payload)
        finally:
            transport.close()
    return len(rows)


@dataclass
class InitResult:
    statements: list[str]
    use_cq: bool
    measurements: int
    meta_points: int


def init(client: InfluxQuery, config: StorageConfig, *, dry_run: bool = False, token=None) -> InitResult:
    """Create or adjust the tiers; with ``dry_run`` only plan. Idempotent."""
    state = read_state(client, config)
    cq = uses_cq(config, client.url, state)
    stmts = plan_init(client.database, config, state, use_cq=cq)
    if dry_run:
        return InitResult(stmts, cq, len(wanted_rollups(config, state.fields)), 0)
    for stmt in stmts:
        client.command(stmt)
    meta = write_meta(client, config, token)
    if not state.database_exists or not state.fields:
        # fields appear only once collectors have written; a later init adds their queries
        state = read_state(client, config)
    return InitResult(stmts, cq, len(wanted_rollups(config, state.fields)), meta)


#: Server-side ``SELECT … INTO`` statements in flight at once during a backfill.
BACKFILL_WORKERS = 2


def backfill(client: InfluxQuery, config: StorageConfig, start_ns: int, end_ns: int, *,
             tiers: list[Tier] | None = None, progress: Callable[[str], None] | None = None,
             chunk_ns: int = DAY_NS) -> dict[str, int]:
    """Fill ``tiers`` (all by default) from raw for ``[start, end)``; points written per tier.

    On 1.x the server computes and writes each window (``SELECT … INTO``, one per
    measurement and ``chunk_ns`` of time, two at once); elsewhere the rollup job's
    path does the same through the writer (see ``storage.job``).  A day per
    statement bounds the server's memory on a full site; a small or sparse
    database (the demo's month of history) is filled faster in one chunk.
    """
    state = read_state(client, config)
    if not state.database_exists:
        raise StorageError(f"database {client.database!r} does not exist: run `dcim storage init` first")
    missing = [t.rp for t in (tiers or config.tiers) if t.rp not in state.policies]
    if missing:
        raise StorageError(f"retention policies {', '.join(missing)} do not exist: run `dcim storage init` first")
    if not _is_1x(client.url):
        from storage.job import run_windows

        return run_windows(client, config, tiers or config.tiers, start_ns, end_ns, progress=progress)
    wanted = wanted_rollups(config, state.fields)

    def run(stmt: str) -> int:
        return sum(int(row[1] or 0) for s in client.query(stmt) for row in s.values)

    written: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=BACKFILL_WORKERS) as pool:
        for t in tiers or config.tiers:
            n = 0
            for a, b in windows(start_ns, end_ns, t.step_s * 10**9, chunk_ns):
                n += sum(pool.map(run, [into_window(client.database, config, t, m, rs, a, b)
                                        for m, rs in wanted.items()]))
                if progress:
                    progress(f"{t.name}: up to {b // 10**9} s, {n} points")
            written[t.name] = n
    return written
