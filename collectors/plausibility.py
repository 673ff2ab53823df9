"""Physical plausibility of readings, by the unit their field name carries.

A device that lies (a PDU reporting -40 kW, a meter sending NaN or 1e30 after a
firmware bug, a probe at 3,000 °C) must not put that number on a dashboard or
into a PUE figure.  Every collector's samples pass :func:`screen` in the
scheduler: implausible fields are removed from the sample and named in the
poll sample (``implausible`` count and the message), so the reading is
flagged, not silently dropped and not silently kept.

Bounds are generous on purpose (a 386 MW site's whole-site meter fits; a
current transformer's sub-watt negative noise at idle passes, but negative
power beyond -1 W, from a GPU, a PDU or a meter alike, is dropped): they catch
nonsense, not unusual-but-real values; alert rules handle the latter.

One reading is signed by its nature: a UPS battery's DC current (``ups``,
``stage=battery``, ``*_a``) is negative while the battery discharges (UPS-MIB
upsBatteryCurrent, Huawei, Socomec, Riello); there the current's bounds are
symmetric, so a discharge is kept exactly when it matters.
"""
from __future__ import annotations

from contract.sample import Sample

__all__ = ["bounds_for", "screen"]

# suffix -> (low, high); the longest matching suffix wins
_BOUNDS: dict[str, tuple[float, float]] = {
    "_w": (-1.0, 2e9),
    "_va": (-1.0, 2e9),
    "_var": (-2e9, 2e9),
    "_a": (-1.0, 1e5),
    "_v": (-1.0, 1e6),
    "_kwh": (0.0, 1e13),
    "_kvarh": (0.0, 1e13),
    "_hz": (0.0, 1000.0),
    "power_factor": (-1.0001, 1.0001),
    "_c": (-80.0, 400.0),
    "humidity_pct": (0.0, 100.5),
    "_pct": (-1.0, 1000.0),
    "_lpm": (-1.0, 1e7),
    "_kpa": (-200.0, 1e5),
    "_rpm": (0.0, 1e6),
    "_mhz": (0.0, 1e5),
    "_bytes": (0.0, 1e17),
    "_l": (0.0, 1e14),
    "_s": (-1.0, 1e11),
    "_us": (0.0, 1e19),
}
_SUFFIXES = sorted(_BOUNDS, key=len, reverse=True)
#: (measurement, stage) -> unit suffix whose reading is signed there, and its symmetric bound
_SIGNED: dict[tuple[str, str], tuple[str, float]] = {("ups", "battery"): ("_a", 1e5)}
_cache: dict[str, tuple[float, float] | None] = {}
_UNSEEN = object()


def bounds_for(field: str) -> tuple[float, float] | None:
    """(low, high) for a field name by its unit suffix; None when it carries no known unit."""
    try:
        return _cache[field]
    except KeyError:
        pass
    found = None
    for suffix in _SUFFIXES:
        if field.endswith(suffix):
            found = _BOUNDS[suffix]
            break
    if len(_cache) < 10_000:
        _cache[field] = found
    return found


def _signed_ok(s: Sample, name: str, value: float) -> bool:
    """A reading out of its unit's bounds that is a signed quantity at this place (checked off the hot path)."""
    signed = _SIGNED.get((s.measurement, s.tags.get("stage", "")))
    return signed is not None and name.endswith(signed[0]) and -signed[1] <= value <= signed[1]


def screen(samples: list[Sample]) -> list[str]:
    """Remove non-finite and out-of-bounds numeric fields in place; return one message per removal.

    Samples left with no field are removed from the list.
    """
    problems: list[str] = []
    emptied = False
    cached = _cache.get
    for s in samples:
        bad = None
        for name, value in s.fields.items():
            t = type(value)
            if t is float:
                if value - value != 0.0:  # NaN or ±Inf
                    bad = bad or []
                    bad.append((name, value))
                    continue
            elif t is not int:
                continue
            b = cached(name, _UNSEEN)
            if b is _UNSEEN:
                b = bounds_for(name)
            if b is not None and not b[0] <= value <= b[1] and not _signed_ok(s, name, value):
                bad = bad or []
                bad.append((name, value))
        if bad:
            where = ",".join(f"{k}={v}" for k, v in sorted(s.tags.items()) if k not in ("site", "hall", "row", "rack", "device", "vendor", "model"))
            for name, value in bad:
                del s.fields[name]
                problems.append(f"{s.measurement}{'[' + where + ']' if where else ''}.{name}={value!r} implausible")
            emptied = emptied or not s.fields
    if emptied:
        samples[:] = [s for s in samples if s.fields]
    return problems
