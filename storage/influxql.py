"""InfluxQL statements for tiers: pure functions from configuration and field lists to text.

Kept apart from any I/O so ``dcim storage init --dry-run`` prints exactly what
``init`` would run, and tests can read the statements.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

from storage.fields import Rollup
from storage.tiers import META_RP, TIER_MEASUREMENT, StorageConfig, Tier, format_duration

__all__ = ["ident", "literal", "select_rollup", "create_rp", "alter_rp", "create_cq", "drop_cq", "cq_name",
           "rollup_select", "into_window", "shard_duration", "tier_rows", "tier_variable_query"]


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(text: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select_rollup(rollups: Sequence[Rollup]) -> str:
    """``mean("power_w") AS "power_w", max("power_w") AS "power_w_max", …``"""
    return ", ".join(f"{r.function}({ident(r.source)}) AS {ident(r.target)}" for r in rollups)


def _rp_clause(duration_s: int, shard_s: int) -> str:
    return f"DURATION {format_duration(duration_s)} REPLICATION 1 SHARD DURATION {format_duration(shard_s)}"


def shard_duration(retention_s: int) -> int:
    """InfluxDB's own guidance: 1h shards under 2 days, 1d under 6 months, 7d beyond."""
    if retention_s < 2 * 86400:
        return 3600
    if retention_s <= 183 * 86400:
        return 86400
    return 7 * 86400


def create_rp(db: str, rp: str, retention_s: int | None) -> str:
    dur = f"DURATION {format_duration(retention_s)}" if retention_s else "DURATION INF"
    shard = format_duration(shard_duration(retention_s)) if retention_s else "52w"
    return f"CREATE RETENTION POLICY {ident(rp)} ON {ident(db)} {dur} REPLICATION 1 SHARD DURATION {shard}"


def alter_rp(db: str, rp: str, retention_s: int) -> str:
    return (f"ALTER RETENTION POLICY {ident(rp)} ON {ident(db)} "
            f"{_rp_clause(retention_s, shard_duration(retention_s))}")


CQ_PREFIX = "dcim_"


def cq_name(tier: Tier, measurement: str, rollups: Sequence[Rollup]) -> str:
    """``dcim_<tier>_<measurement>_<hash of the field set>``: a changed field set is a new name.

    The server rewrites a continuous query's text when it stores it, so comparing
    texts would be brittle; the name carries what the query does instead.
    """
    digest = hashlib.sha256(select_rollup(rollups).encode()).hexdigest()[:8]
    safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in measurement)
    return f"{CQ_PREFIX}{tier.name}_{safe}_{digest}"


def create_cq(db: str, config: StorageConfig, tier: Tier, measurement: str, rollups: Sequence[Rollup]) -> str:
    """A continuous query that keeps ``tier`` filled from raw, recomputing recent buckets for late points."""
    step = format_duration(tier.step_s)
    span = format_duration(tier.step_s * config.resample_steps)
    return (f"CREATE CONTINUOUS QUERY {ident(cq_name(tier, measurement, rollups))} ON {ident(db)} "
            f"RESAMPLE EVERY {step} FOR {span} BEGIN "
            f"SELECT {select_rollup(rollups)} INTO {ident(db)}.{ident(tier.rp)}.{ident(measurement)} "
            f"FROM {ident(db)}.{ident(config.raw.rp)}.{ident(measurement)} GROUP BY time({step}), * END")


def drop_cq(db: str, name: str) -> str:
    return f"DROP CONTINUOUS QUERY {ident(name)} ON {ident(db)}"


def rollup_select(db: str, config: StorageConfig, tier: Tier, measurement: str, rollups: Sequence[Rollup],
                  start_ns: int, end_ns: int, *, into: bool) -> str:
    """One window ``[start, end)`` of a tier, computed by the server from raw.

    ``into=True``: the server writes the buckets itself (backfill on 1.x);
    ``into=False``: the rows come back for the rollup job to write.
    """
    target = f" INTO {ident(db)}.{ident(tier.rp)}.{ident(measurement)}" if into else ""
    return (f"SELECT {select_rollup(rollups)}{target} FROM {ident(db)}.{ident(config.raw.rp)}.{ident(measurement)} "
            f"WHERE time >= {start_ns} AND time < {end_ns} GROUP BY time({format_duration(tier.step_s)}), * fill(none)")


def into_window(db: str, config: StorageConfig, tier: Tier, measurement: str, rollups: Sequence[Rollup],
                start_ns: int, end_ns: int) -> str:
    return rollup_select(db, config, tier, measurement, rollups, start_ns, end_ns, into=True)


def tier_rows(config: StorageConfig) -> list[str]:
    """Line protocol for the tier table the dashboards' ``$tier`` variable reads.

    One point per tier with the dashboard time spans (ms) it serves, ``[from_ms, until_ms)``,
    from :meth:`StorageConfig.spans`.
    """
    steps = {"raw": 0, **{t.name: t.step_s for t in config.tiers}}
    return [f'{TIER_MEASUREMENT},tier={name} rp="{rp}",from_ms={lo * 1000}i,until_ms={hi * 1000}i,'
            f'step_s={steps[name]}i,order={i}i 0'
            for i, (name, rp, lo, hi) in enumerate(config.spans())]


def tier_variable_query() -> str:
    """The dashboards' ``$tier`` variable: the retention policy for the dashboard's time span."""
    span = "${__to} - ${__from}"
    return (f'SELECT "rp" FROM {ident(META_RP)}.{ident(TIER_MEASUREMENT)} '
            f'WHERE "from_ms" <= {span} AND "until_ms" > {span}')


