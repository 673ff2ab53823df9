"""Which rollup each field gets, from what the field means (docs/conventions.md).

Why by meaning and not one function for all: a cumulative counter averaged over
an hour is no longer a counter, so energy computed from it would be wrong; a
state averaged is not a state.  Counters and states keep their ``last`` value
in each bucket, so energy from a rollup equals energy from the raw counters;
gauges keep their ``mean`` (under the field's own name, so a panel's query is
the same on every tier) plus ``max`` (and ``min`` where a low value is what
matters: flow, voltage, pressure, charge, runtime left).

What a field is (counter, state, gauge) is the shared conventions' call
(:mod:`contract.fields`); this module only says what each kind keeps.
"""
from __future__ import annotations

from dataclasses import dataclass

from contract.fields import field_kind

__all__ = ["Rollup", "rollups", "MAX_SUFFIX", "MIN_SUFFIX", "KINDS"]

MAX_SUFFIX = "_max"
MIN_SUFFIX = "_min"

#: kind -> the aggregates it keeps, as (InfluxQL function, suffix of the stored field)
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    # ``max`` beside ``last``: a bucket holding a reset or wrap keeps the peak before
    # it, so energy across the drop is bridged exactly as from raw (storage.read).
    "counter": (("last", ""), ("max", MAX_SUFFIX)),
    "state": (("last", ""),),
    "gauge": (("mean", ""), ("max", MAX_SUFFIX)),
    "gauge_low": (("mean", ""), ("max", MAX_SUFFIX), ("min", MIN_SUFFIX)),
}


@dataclass(frozen=True)
class Rollup:
    """One stored aggregate: ``function(source) AS target``, of InfluxDB type ``type``.

    The type is kept because query results come back as JSON, where ``1005.0`` reads
    as ``1005``: written back as an integer it would clash with the float field.
    """

    function: str
    source: str
    target: str
    type: str = "float"


def rollups(field: str, influx_type: str = "float") -> tuple[Rollup, ...]:
    """The aggregates a rollup tier keeps for one raw field."""
    return tuple(Rollup(fn, field, field + suffix, "float" if fn == "mean" else influx_type)
                 for fn, suffix in KINDS[field_kind(field, influx_type)])
