"""The storage tiers as configuration: how long raw data stays, which rollups exist and for how long.

One ``storage:`` section (in the ``dcim run`` config or a file of its own) is
read by ``dcim storage``, the PUE report and the dashboards, so the tier a
reader picks is the tier the server has.  Durations are InfluxQL-style
(``30d``, ``26w``, ``1h``, ``10s``); a rollup step must divide a day so that
hourly buckets line up with calendar days and months.

Defaults are sized for the full site at ≈300,000 fields/s: see
:func:`disk_per_day` and docs/storage.md for the measured bytes per point.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.alert_event import ALERT_MEASUREMENT
from contract.measurements import TRAP

__all__ = ["Tier", "RawTier", "StorageConfig", "parse_duration", "format_duration", "disk_per_day",
           "DEFAULT_STORAGE", "META_RP", "TIER_MEASUREMENT"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^([1-9][0-9]{0,6})(s|m|h|d|w)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

#: Where ``dcim storage init`` records the tier table that dashboards read (a tiny
#: measurement in a retention policy of infinite duration).
META_RP = "dcim_meta"
TIER_MEASUREMENT = "storage_tier"

#: Longest raw retention accepted (10 years) and the smallest step (10 s).
_MAX_RETENTION_S = 3653 * 86400
_MIN_STEP_S = 10


def parse_duration(text: str) -> int:
    """Seconds in ``30d`` / ``1h`` / ``10s``; a clear ValueError otherwise."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration: use a whole number and one of s, m, h, d, w (e.g. 30d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    """The largest whole InfluxQL unit: 2592000 -> '30d', 3600 -> '1h'."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Kept(_Strict):
    """What raw and every tier share: how long data is kept, the longest span dashboards read from it."""

    retention: str
    max_span: str = ""

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        _check_retention(v)
        return v

    @property
    def retention_s(self) -> int:
        return parse_duration(self.retention)

    @property
    def max_span_s(self) -> int:
        return parse_duration(self.max_span)


class RawTier(_Kept):
    """The raw samples as collectors write them: the database's default retention policy."""

    rp: str = "autogen"
    retention: str = "30d"
    #: Longest dashboard time span read from raw; longer spans read a rollup tier.
    max_span: str = "1d"

    @field_validator("rp")
    @classmethod
    def _rp(cls, v: str) -> str:
        return _ident(v)


class Tier(_Kept):
    """One rollup tier: buckets of ``step`` kept for ``retention`` in retention policy ``rp``.

    ``max_span``: the longest dashboard time span read from this tier (default: 7 days
    per minute of step; the last tier serves every longer span).
    """

    name: str
    step: str
    rp: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[0-9a-z_]{1,16}$", v):
            raise ValueError(f"tier name {v!r}: use 1-16 of a-z, 0-9, _ (e.g. 1m, 1h)")
        return v

    @field_validator("step")
    @classmethod
    def _step(cls, v: str) -> str:
        s = parse_duration(v)
        if s < _MIN_STEP_S or 86400 % s:
            raise ValueError(f"step {v}: must be at least {_MIN_STEP_S}s and divide a day (10s, 1m, 5m, 1h, …)")
        return v

    @model_validator(mode="after")
    def _default_rp(self) -> "Tier":
        if not self.rp:
            self.rp = "rollup_" + self.name
        _ident(self.rp)
        if not self.max_span:
            self.max_span = format_duration(self.step_s * 7 * 1440)
        parse_duration(self.max_span)
        if self.retention_s < self.step_s:
            raise ValueError(f"tier {self.name}: retention {self.retention} is shorter than its step {self.step}")
        return self

    @property
    def step_s(self) -> int:
        return parse_duration(self.step)


class StorageConfig(_Strict):
    """``storage:``: the raw tier, the rollup tiers (finest first) and how rollups are made.

    ``mechanism``: ``continuous_queries`` (InfluxDB 1.x computes rollups itself),
    ``job`` (``dcim storage rollup`` reads raw with InfluxQL and writes line protocol),
    or ``auto`` (continuous queries where the server has them).
    """

    raw: RawTier = Field(default_factory=RawTier)
    tiers: list[Tier] = Field(default_factory=lambda: [Tier(name="1m", step="1m", retention="90d"),
                                                       Tier(name="1h", step="1h", retention="1825d")])
    mechanism: Literal["auto", "continuous_queries", "job"] = "auto"
    #: How far back continuous queries recompute, for late points (RESAMPLE FOR = step × this).
    resample_steps: Annotated[int, Field(ge=1, le=60)] = 2
    #: Measurements not rolled up (events are read raw).
    exclude: list[str] = Field(default_factory=lambda: [ALERT_MEASUREMENT, TRAP])

    @model_validator(mode="after")
    def _order(self) -> "StorageConfig":
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be distinct: {names}")
        rps = [self.raw.rp] + [t.rp for t in self.tiers]
        if len(set(rps)) != len(rps):
            raise ValueError(f"retention policy names must be distinct: {rps}")
        steps = [t.step_s for t in self.tiers]
        if steps != sorted(steps) or len(set(steps)) != len(steps):
            raise ValueError("tiers must be listed finest first, each step longer than the one before")
        return self

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(f"no storage tier {name!r}; tiers: {', '.join(t.name for t in self.tiers) or 'none'}")

    def choose(self, span_s: float, *, oldest_age_s: float = 0.0) -> Tier | None:
        """The tier a reader should use for ``span_s`` of data whose oldest point is ``oldest_age_s`` old.

        None means raw: the span is at most raw's ``max_span`` and the oldest point is
        still inside raw retention.  Else the finest tier whose ``max_span`` covers the
        span and whose retention still holds the oldest point; the last tier for longer spans.
        """
        if span_s <= self.raw.max_span_s and oldest_age_s <= self.raw.retention_s:
            return None
        for t in self.tiers:
            if span_s <= t.max_span_s and oldest_age_s <= t.retention_s:
                return t
        return self.tiers[-1] if self.tiers else None

    def spans(self) -> list[tuple[str, str, int, int]]:
        """(tier name, retention policy, from span s, until span s): the table dashboards choose by."""
        out: list[tuple[str, str, int, int]] = []
        lo = 0
        entries = [("raw", self.raw.rp, self.raw.max_span_s)] + [(t.name, t.rp, t.max_span_s) for t in self.tiers]
        for i, (name, rp, hi) in enumerate(entries):
            hi = max(hi, lo)
            if i == len(entries) - 1:
                hi = 2 ** 40
            out.append((name, rp, lo, hi))
            lo = hi
        return out


def _ident(v: str) -> str:
    if not _IDENT.match(v):
        raise ValueError(f"retention policy name {v!r}: use letters, digits and _ (not starting with a digit)")
    return v


def _check_retention(v: str) -> None:
    s = parse_duration(v)
    if s < 3600 or s > _MAX_RETENTION_S:
        raise ValueError(f"retention {v}: must be between 1h and 10 years")


DEFAULT_STORAGE = StorageConfig()


def disk_per_day(fields_per_s: float, bytes_per_point: float, config: StorageConfig = DEFAULT_STORAGE,
                 rollup_fields_per_raw: float = 2.2, raw_interval_s: float = 10.0) -> dict[str, float]:
    """Bytes per day per tier, and held on disk at full retention: for sizing the store.

    ``rollup_fields_per_raw``: stored aggregates per raw field (mean+max for gauges,
    +min for some, one for counters and states): ≈2.2 on this site's field mix.
    """
    out: dict[str, float] = {}
    raw_day = fields_per_s * 86400 * bytes_per_point
    out["raw/day"] = raw_day
    out["raw/held"] = raw_day * config.raw.retention_s / 86400
    for t in config.tiers:
        per_day = fields_per_s * raw_interval_s / t.step_s * rollup_fields_per_raw * 86400 * bytes_per_point
        out[f"{t.name}/day"] = per_day
        out[f"{t.name}/held"] = per_day * t.retention_s / 86400
    return out
