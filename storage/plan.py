"""What ``dcim storage init`` must change on the server: a pure diff of wanted against present.

Idempotent by construction: a second run against the same server plans nothing
but the tier table (rewritten in place, same points).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from storage.fields import rollups
from storage.influxql import (CQ_PREFIX, alter_rp, create_cq, create_rp, cq_name, drop_cq, ident)
from storage.tiers import META_RP, StorageConfig

__all__ = ["ServerState", "RetentionPolicy", "plan_init", "wanted_rollups"]


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    duration_s: int | None     # None: infinite
    default: bool


@dataclass
class ServerState:
    """What the server has, as read by ``admin.read_state``."""

    database_exists: bool
    policies: dict[str, RetentionPolicy] = field(default_factory=dict)
    continuous_queries: list[str] = field(default_factory=list)      # names in this database
    #: measurement -> field -> InfluxDB type, as in the raw retention policy
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    supports_cq: bool = True


def wanted_rollups(config: StorageConfig, fields: Mapping[str, Mapping[str, str]]):
    """measurement -> the rollups its raw fields need (excluded measurements left out)."""
    out = {}
    for m in sorted(fields):
        if m in config.exclude:
            continue
        rs = tuple(r for f in sorted(fields[m]) for r in rollups(f, fields[m][f]))
        if rs:
            out[m] = rs
    return out


def _rp_statements(db: str, name: str, want_s: int | None, state: ServerState, *, default: bool) -> list[str]:
    have = state.policies.get(name)
    if have is None:
        stmt = create_rp(db, name, want_s)
        return [stmt + (" DEFAULT" if default else "")]
    out = []
    if want_s is not None and have.duration_s != want_s:
        out.append(alter_rp(db, name, want_s))
    if default and not have.default:
        out.append(f"ALTER RETENTION POLICY {ident(name)} ON {ident(db)} DEFAULT")
    return out


def plan_init(db: str, config: StorageConfig, state: ServerState, *, use_cq: bool) -> list[str]:
    """Statements, in order: database, retention policies, then continuous queries (dropped, created)."""
    out: list[str] = []
    if not state.database_exists:
        out.append(f"CREATE DATABASE {ident(db)}")
    out += _rp_statements(db, config.raw.rp, config.raw.retention_s, state, default=True)
    for t in config.tiers:
        out += _rp_statements(db, t.rp, t.retention_s, state, default=False)
    out += _rp_statements(db, META_RP, None, state, default=False)
    wanted: dict[str, str] = {}
    if use_cq:
        for t in config.tiers:
            for m, rs in wanted_rollups(config, state.fields).items():
                wanted[cq_name(t, m, rs)] = create_cq(db, config, t, m, rs)
    for name in sorted(state.continuous_queries):
        if name.startswith(CQ_PREFIX) and name not in wanted:
            out.append(drop_cq(db, name))
    for name, stmt in wanted.items():
        if name not in state.continuous_queries:
            out.append(stmt)
    return out
