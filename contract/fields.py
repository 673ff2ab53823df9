"""What a field means, from its name and InfluxDB type: counter, state or gauge (docs/conventions.md).

Field names carry their unit (``power_w``, ``energy_kwh``…), and that name
already says how the value behaves over time.  Anything that aggregates over
time asks here rather than keeping its own list: the storage tiers (a counter
keeps its last value, a gauge its mean), the PUE report reading a tier back.

Kinds:
- ``counter``: cumulative, only goes up (resets and wraps aside): energy and volume
  registers, DCGM violation times and error counters, starts and run-hours;
- ``state``: a word, a flag or a code (strings and booleans always);
- ``gauge_low``: an instantaneous value whose minimum matters (flow, voltage,
  pressure, frequency, charge and runtime left, capacity headroom);
- ``gauge``: every other instantaneous value.
"""
from __future__ import annotations

__all__ = ["FIELD_KINDS", "field_kind"]

FIELD_KINDS = ("counter", "state", "gauge", "gauge_low")

# Cumulative counters: energy and volume registers, DCGM violation times and
# error counters, starts, run-hours and a filter's service hours.  ``runtime_s`` alone is a UPS's runtime
# *left* (a gauge); ``compressor_1a_runtime_s`` is run-hours (a counter).
_COUNTER_SUFFIXES = ("_kwh", "_kvarh", "_wh", "_mwh", "_l", "_us", "_errors", "_starts", "_total", "_count")
_COUNTER_NAMES = frozenset({"hours", "service_hours", "volume_l", "xid_errors"})
_STATE_SUFFIXES = ("_state", "_status", "_code", "_word", "_cause", "_reasons", "_last", "_mode", "_control")
_STATE_NAMES = frozenset({"state", "status", "running", "ok", "replace", "firmware", "model", "serial",
                          "counter_reset", "counter_wrap", "leak_detected", "error_kind", "error"})
# Gauges whose minimum matters (a dip in flow or voltage is the event).
_LOW_SUFFIXES = ("_v", "_lpm", "_kpa", "_pa", "_hz", "_cfm", "_cmm")
_LOW_NAMES = frozenset({"charge_pct", "runtime_s", "power_factor", "level_pct", "capacity_pct", "speed_rpm",
                        "headroom_w", "headroom_pct"})


def field_kind(field: str, influx_type: str = "float") -> str:
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
