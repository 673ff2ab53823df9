"""Which rollup each field gets, from what the field means (docs/conventions.md).

Why by meaning and not one function for all: a cumulative counter averaged over
an hour is no longer a counter, so energy computed from it would be wrong; a
state averaged is not a state.  Counters and states keep their ``last`` value
in each bucket, so energy from a rollup equals energy from the raw counters;
gauges keep their ``mean`` (under the field's own name, so a panel's query is
the same on every tier) plus ``max`` (and ``min`` where a low value is what
matters: flow, voltage, pressure, charge, runtime left).

The rules are keyed on the unit-bearing field names of the conventions, so a
new profile field is classified without touching this file; the InfluxDB field
type decides first (strings and booleans are states).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rollup", "classify", "rollups", "MAX_SUFFIX", "MIN_SUFFIX", "KINDS"]

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

# Cumulative counters: energy and volume registers, DCGM violation times and
# error counters, starts and run-hours.  ``runtime_s`` alone is a UPS's runtime
# *left* (a gauge); ``compressor_1a_runtime_s`` is run-hours (a counter).
_COUNTER_SUFFIXES = ("_kwh", "_kvarh", "_wh", "_mwh", "_l", "_us", "_errors", "_starts", "_total", "_count")
_COUNTER_NAMES = frozenset({"hours", "volume_l", "xid_errors"})
_STATE_SUFFIXES = ("_state", "_status", "_code", "_word", "_cause", "_reasons", "_last", "_mode", "_control")
_STATE_NAMES = frozenset({"state", "status", "running", "ok", "replace", "firmware", "model", "serial",
                          "counter_reset", "counter_wrap", "leak_detected", "error_kind", "error"})
# Gauges whose minimum matters (a dip in flow or voltage is the event).
_LOW_SUFFIXES = ("_v", "_lpm", "_kpa", "_pa", "_hz", "_cfm", "_cmm")
_LOW_NAMES = frozenset({"charge_pct", "runtime_s", "power_factor", "level_pct", "capacity_pct", "speed_rpm"})


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


def classify(field: str, influx_type: str = "float") -> str:
    """The field's kind: ``counter``, ``state``, ``gauge`` or ``gauge_low``."""
    if influx_type in ("string", "boolean"):
        return "state"
    if field in _STATE_NAMES or field.endswith(_STATE_SUFFIXES):
        return "state"
    if field in _COUNTER_NAMES or field.endswith(_COUNTER_SUFFIXES):
        return "counter"
    if field.endswith("_runtime_s"):
        return "counter"
    if field in _LOW_NAMES or field.endswith(_LOW_SUFFIXES):
        return "gauge_low"
    return "gauge"


def rollups(field: str, influx_type: str = "float") -> tuple[Rollup, ...]:
    """The aggregates a rollup tier keeps for one raw field."""
    return tuple(Rollup(fn, field, field + suffix, "float" if fn == "mean" else influx_type)
                 for fn, suffix in KINDS[classify(field, influx_type)])
