"""Grafana's query macros, done the way Grafana does them, so a query can run without Grafana.

``preview`` and the tests use this to run every panel query against InfluxDB:
if a query works here with concrete values it works in Grafana too (same
InfluxQL, same substitution rules for ``$timeFilter``, ``$__interval`` and
multi-value regex variables).  Pure functions only.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Callable, Iterable, Mapping

__all__ = ["substitute", "auto_interval", "referenced_variables", "parse_time", "BUILTIN_VARIABLES",
           "resolve_variables"]

BUILTIN_VARIABLES = frozenset({"timeFilter", "__interval", "__interval_ms", "__timeFilter", "__from", "__to",
                               "__range", "__rate_interval", "col"})
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_NOTHING = r"[^\s\S]"  # a Go RE2 regex matching nothing (no look-ahead in RE2)
_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def referenced_variables(text: str) -> set[str]:
    """Names used as ``$name`` or ``${name}`` (Grafana's built-ins excluded)."""
    names = {a or b for a, b in _VAR.findall(text)}
    return {n for n in names if n not in BUILTIN_VARIABLES}


def auto_interval(from_ms: int, to_ms: int, max_points: int = 300) -> str:
    """A round interval giving at most ``max_points`` buckets, like Grafana's ``$__interval``."""
    want = max((to_ms - from_ms) / 1000.0 / max_points, 1.0)
    step = next((s for s in _STEPS_S if s >= want), _STEPS_S[-1])
    return f"{step}s"


def _regex_value(values: list[str]) -> str:
    if not values:
        return _NOTHING
    escaped = [re.escape(v).replace("/", "\\/") for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(query: str, from_ms: int, to_ms: int, interval: str, variables: Mapping[str, list[str]]) -> str:
    """Replace Grafana macros and template variables with concrete values.

    Multi-value variables become a regex alternation, as Grafana formats them
    inside ``/^$var$/``.  An unknown variable raises ``KeyError`` naming it:
    a dashboard referencing a variable it does not define is a bug.
    """
    interval_ms = _interval_ms(interval)

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name in ("timeFilter", "__timeFilter"):
            return f"time >= {from_ms}ms and time <= {to_ms}ms"
        if name == "__interval":
            return interval
        if name == "__interval_ms":
            return str(interval_ms)
        if name == "__from":
            return str(from_ms)
        if name == "__to":
            return str(to_ms)
        if name not in variables:
            raise KeyError(f"template variable ${name} is not defined")
        return _regex_value(variables[name])

    return _VAR.sub(repl, query)


def _interval_ms(interval: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", interval)
    if not m:
        raise ValueError(f"interval {interval!r}: expected e.g. 10s, 5m, 1h")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]


def parse_time(text: str, now: dt.datetime | None = None) -> int:
    """``now``, ``now-6h``, ``now-7d``, an ISO 8601 time or epoch milliseconds -> epoch ms."""
    now = now or dt.datetime.now(dt.timezone.utc)
    t = text.strip()
    if t == "now":
        return int(now.timestamp() * 1000)
    m = re.fullmatch(r"now-(\d+)([smhdw])", t)
    if m:
        secs = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return int(now.timestamp() * 1000) - secs * 1000
    if t.isdigit():
        return int(t)
    try:
        when = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"time {text!r}: expected now, now-6h, an ISO 8601 time or epoch ms") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def resolve_variables(variables: Iterable[Mapping], run: Callable[[str], list[list]], from_ms: int, to_ms: int,
                      interval: str) -> dict[str, list[str]]:
    """Each variable's values, in order, each query seeing the ones before it ("All" selected).

    ``run(query)`` returns rows as lists; ``SHOW TAG VALUES`` rows are ``[key, value]``.
    """
    values: dict[str, list[str]] = {}
    for var in variables:
        q = substitute(var["query"], from_ms, to_ms, interval, values)
        values[var["name"]] = sorted({str(row[-1]) for row in run(q)})
    return values
