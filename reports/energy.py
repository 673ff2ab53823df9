"""Energy per interval from meter readings: pure functions, no I/O.

Why counters and not power: an auditor's PUE (ISO/IEC 30134-2) is a ratio of
*energies*.  A meter's cumulative register (``energy_kwh``, ``volume_l``) keeps
counting while the network is down, so the energy of an interval is exactly
the counter at its end minus the counter at its start — a lost poll costs
nothing.  Power (``power_w``) integrated over time is only an estimate, and is
used only for the meters the caller names (``--integrate-power``); the
estimated share is reported.

Counter at an instant: the *unwrapped* counter (resets and wraps bridged, see
:func:`unwrap`) interpolated linearly between the two readings around the
instant.  When the interval grid falls on reading times (hourly polls, hourly
grid) no interpolation happens at all.  Before a meter's first reading and
after its last one the counter is held flat: energy there is not invented, and
shows up as lost coverage instead.

Times are UTC epoch seconds (floats); the grid is a list of ``(start, end)``
half-open intervals.
"""
from __future__ import annotations

import bisect
import calendar
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "Bridge", "Coverage", "MeterEnergy", "Reading", "WRAP_CANDIDATES",
    "clean", "counter_energy", "coverage", "hour_grid", "iso_utc", "month_grid", "power_energy", "unwrap",
]

Reading = tuple[float, float]          # (epoch seconds, value)
Grid = Sequence[tuple[float, float]]   # half-open [start, end) intervals

#: Counter maxima seen in the field, in kWh: 32-bit and 31-bit registers counting
#: Wh, 10 Wh, 100 Wh or kWh.  A drop from within ``WRAP_NEAR`` of one of these
#: to a small value is a wrap, not a reset.
WRAP_CANDIDATES: tuple[float, ...] = tuple(sorted(
    {bits * scale for bits in (2.0 ** 31, 2.0 ** 32) for scale in (0.001, 0.01, 0.1, 1.0)}))
WRAP_NEAR = 0.9


@dataclass(frozen=True)
class Bridge:
    """One place where a counter went down and how the step across it was counted."""

    meter: str
    field: str
    time_s: float        # time of the first reading after the drop
    before: float        # last reading before the drop
    after: float         # first reading after the drop
    kind: str            # "reset" | "wrap"
    method: str          # how the step was bridged, in words
    credited: float      # amount counted for the step across the drop


@dataclass(frozen=True)
class Coverage:
    intervals_total: int       # grid intervals in which the meter was active
    intervals_with_data: int   # ... of which hold at least one reading
    longest_gap_s: float       # longest time without a reading inside the active span

    @property
    def pct(self) -> float:
        return 100.0 * self.intervals_with_data / self.intervals_total if self.intervals_total else 0.0


@dataclass
class MeterEnergy:
    """Energy (or litres) per grid interval for one meter."""

    meter: str
    field: str
    method: str                       # "counter" | "power"
    values: list[float]               # per grid interval; 0 where inactive
    active: list[bool]                # inside the meter's commissioned window
    has_data: list[bool]              # at least one reading inside the interval
    bridges: list[Bridge] = field(default_factory=list)
    readings: int = 0

    @property
    def total(self) -> float:
        return math.fsum(self.values)

    @property
    def estimated(self) -> float:
        """Share of this meter's total that is an estimate (all of it for power integration)."""
        return self.total if self.method == "power" else 0.0


# -- grids ---------------------------------------------------------------------------
def iso_utc(t: float) -> str:
    """Epoch seconds as the ISO-8601 UTC text (whole seconds, ``Z``) the queries and every report print."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(d: dt.datetime) -> float:
    return calendar.timegm(d.utctimetuple()) + d.microsecond / 1e6


def month_grid(start_s: float, end_s: float) -> list[tuple[float, float]]:
    """Calendar months (UTC) covering [start, end), the first and last clipped to the period."""
    if end_s <= start_s:
        raise ValueError("period end must be after its start")
    out: list[tuple[float, float]] = []
    d = dt.datetime.fromtimestamp(start_s, dt.timezone.utc)
    cur = dt.datetime(d.year, d.month, 1, tzinfo=dt.timezone.utc)
    while _epoch(cur) < end_s:
        nxt = dt.datetime(cur.year + (cur.month == 12), cur.month % 12 + 1, 1, tzinfo=dt.timezone.utc)
        out.append((max(_epoch(cur), start_s), min(_epoch(nxt), end_s)))
        cur = nxt
    return out


def hour_grid(start_s: float, end_s: float) -> list[tuple[float, float]]:
    """Whole UTC hours covering [start, end), clipped to the period."""
    if end_s <= start_s:
        raise ValueError("period end must be after its start")
    first = math.floor(start_s / 3600) * 3600
    return [(max(float(h), start_s), min(float(h + 3600), end_s))
            for h in range(int(first), int(math.ceil(end_s)), 3600) if h < end_s]


# -- readings ------------------------------------------------------------------------
def clean(readings: Iterable[Reading]) -> list[Reading]:
    """Sorted by time, non-finite values dropped, one value per instant (the last one given)."""
    by_time: dict[float, float] = {}
    for t, v in readings:
        if v is None or t is None:
            continue
        v = float(v)
        if math.isfinite(v):
            by_time[float(t)] = v
    return sorted(by_time.items())


def _clean_arrays(readings: Iterable[Reading],
                  window: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clean` then :func:`_window`, as arrays (times, values): same rule, one pass in numpy."""
    rs = readings if isinstance(readings, (list, tuple, np.ndarray)) else list(readings)
    if len(rs) == 0:
        return np.empty(0), np.empty(0)
    arr = np.asarray(rs, dtype=float).reshape(-1, 2)      # None becomes NaN and is dropped below
    t, v = arr[:, 0], arr[:, 1]
    ok = np.isfinite(v) & np.isfinite(t)
    if window is not None:
        ok &= (t >= window[0]) & (t <= window[1])
    t, v = t[ok], v[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    last = np.ones(len(t), dtype=bool)
    last[:-1] = t[1:] != t[:-1]                          # the last one given at each instant
    return t[last], v[last]


def _wrap_max(before: float, after: float, known_max: float | None) -> float | None:
    candidates = (known_max,) if known_max else WRAP_CANDIDATES
    for m in candidates:
        if m > before >= WRAP_NEAR * m and after <= (1 - WRAP_NEAR) * m:
            return m
    return None


def unwrap(meter: str, field_name: str, readings: Sequence[Reading],
           known_max: float | None = None) -> tuple[list[float], list[float], list[Bridge]]:
    """Turn a counter that may reset or wrap into a monotonic one.

    Returns (times, unwrapped values, bridges).  A drop is a *wrap* when the
    value before was within 10 % below a register maximum (``known_max``, or one
    of :data:`WRAP_CANDIDATES`) and the value after is within 10 % above zero:
    the step is credited ``(max - before) + after``.  Any other drop is a
    *reset* (meter replaced, register cleared, firmware update): the counter is
    taken to have restarted from zero, so the step is credited ``after``; the
    energy between the last reading before and the reset itself is unknowable
    and at most one poll interval's worth.  Drops smaller than a millionth of
    the value are rounding jitter, counted as zero and not listed.
    """
    times: list[float] = []
    values: list[float] = []
    bridges: list[Bridge] = []
    total = 0.0
    prev: float | None = None
    for t, v in readings:
        if prev is None:
            total = v
        else:
            step = v - prev
            if step >= 0:
                total += step
            elif -step <= 1e-6 * max(abs(prev), 1.0):
                pass
            else:
                m = _wrap_max(prev, v, known_max)
                if m is not None:
                    credited = (m - prev) + v
                    bridges.append(Bridge(meter, field_name, t, prev, v, "wrap",
                                          f"wrap at {m:g}: (max - before) + after", credited))
                else:
                    credited = max(v, 0.0)
                    bridges.append(Bridge(meter, field_name, t, prev, v, "reset",
                                          "restart from zero: after-value credited", credited))
                total += credited
        times.append(t)
        values.append(total)
        prev = v
    return times, values, bridges


def _window(readings: Sequence[Reading], window: tuple[float, float] | None) -> list[Reading]:
    if window is None:
        return list(readings)
    lo, hi = window
    return [(t, v) for t, v in readings if lo <= t <= hi]


def _spans(grid: Grid, window: tuple[float, float] | None) -> list[tuple[float, float] | None]:
    lo, hi = window if window else (-math.inf, math.inf)
    out: list[tuple[float, float] | None] = []
    for s, e in grid:
        a, b = max(s, lo), min(e, hi)
        out.append((a, b) if a < b else None)
    return out


def _has_data(times: Sequence[float], spans: Sequence[tuple[float, float] | None]) -> list[bool]:
    out = []
    for span in spans:
        if span is None:
            out.append(False)
            continue
        i = bisect.bisect_left(times, span[0])
        out.append(i < len(times) and times[i] < span[1])
    return out


def _span_arrays(grid: Grid, window: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid intervals clipped to the window as arrays: (starts, ends, active)."""
    g = np.asarray(grid, dtype=float).reshape(-1, 2)
    lo, hi = window if window else (-math.inf, math.inf)
    a, b = np.maximum(g[:, 0], lo), np.minimum(g[:, 1], hi)
    return a, b, a < b


def _has_data_arrays(times: np.ndarray, a: np.ndarray, b: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per interval: at least one reading in ``[a, b)`` (the vector form of :func:`_has_data`)."""
    if not len(times):
        return np.zeros(len(a), dtype=bool)
    i = np.searchsorted(times, a, side="left")
    inside = i < len(times)
    first = times[np.minimum(i, len(times) - 1)]
    return active & inside & (first < b)


def counter_energy(meter: str, readings: Iterable[Reading], grid: Grid, *,
                   window: tuple[float, float] | None = None, field_name: str = "energy_kwh",
                   known_max: float | None = None) -> MeterEnergy:
    """Per-interval increase of a cumulative counter, resets and wraps bridged.

    ``window`` is the meter's commissioned span: readings outside it are
    ignored and intervals outside it count zero — so an old and a new meter
    swapped at date D each contribute their own side of D.

    The counter at an interval's edges is linear between the readings around it
    and flat outside them (``numpy.interp``, for the whole grid at once: a year
    of hours for a thousand meters is nine million edges).
    """
    t, v = _clean_arrays(readings, window)
    a, b, active = _span_arrays(grid, window)
    if not len(t):
        return MeterEnergy(meter, field_name, "counter", [0.0] * len(a), active.tolist(), [False] * len(a), [], 0)
    bridges: list[Bridge] = []
    if len(v) > 1 and np.any(np.diff(v) < 0):
        # a drop somewhere: bridge it reading by reading (the common case, none, needs no copy)
        times, values, bridges = unwrap(meter, field_name, list(zip(t.tolist(), v.tolist())), known_max)
        t, v = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    out = np.where(active, np.interp(b, t, v) - np.interp(a, t, v), 0.0)
    return MeterEnergy(meter, field_name, "counter", out.tolist(), active.tolist(),
                       _has_data_arrays(t, a, b, active).tolist(), bridges, len(t))


def power_energy(meter: str, readings: Iterable[Reading], grid: Grid, *,
                 window: tuple[float, float] | None = None, max_gap_s: float = 900.0) -> MeterEnergy:
    """kWh per interval by trapezoid integration of ``power_w`` (an estimate).

    Only segments between readings at most ``max_gap_s`` apart are integrated:
    across a longer gap the power is unknown and nothing is counted (coverage
    shows the gap).
    """
    rs = _window(clean(readings), window)
    spans = _spans(grid, window)
    if not rs:
        return MeterEnergy(meter, "power_w", "power", [0.0] * len(spans),
                           [s is not None for s in spans], [False] * len(spans), [], 0)
    times = [t for t, _ in rs]
    watts = [v for _, v in rs]
    cum = [0.0]
    for i in range(1, len(rs)):
        dt_s = times[i] - times[i - 1]
        seg = (watts[i] + watts[i - 1]) / 2 * dt_s if dt_s <= max_gap_s else 0.0
        cum.append(cum[-1] + seg)

    def at(t: float) -> float:  # joules integrated up to t
        if t <= times[0]:
            return 0.0
        if t >= times[-1]:
            return cum[-1]
        i = bisect.bisect_right(times, t)
        t0, t1 = times[i - 1], times[i]
        if t1 - t0 > max_gap_s:
            return cum[i - 1]
        p0, p1 = watts[i - 1], watts[i]
        x = t - t0
        return cum[i - 1] + p0 * x + (p1 - p0) * x * x / (2 * (t1 - t0))

    out = [(at(sp[1]) - at(sp[0])) / 3.6e6 if sp else 0.0 for sp in spans]
    return MeterEnergy(meter, "power_w", "power", out, [s is not None for s in spans],
                       _has_data(times, spans), [], len(rs))


def coverage(times: Sequence[float], grid: Grid, *, window: tuple[float, float] | None = None) -> Coverage:
    """How much of the meter's active span has readings: intervals with data and the longest silence.

    The longest gap runs from the start of the active span to the first
    reading, between readings, and from the last reading to the end of the span.
    """
    a, b, active = _span_arrays(grid, window)
    idx = np.flatnonzero(active)
    if not len(idx):
        return Coverage(0, 0, 0.0)
    ts = np.sort(np.asarray(times, dtype=float))
    flags = _has_data_arrays(ts, a, b, active)
    lo, hi = float(a[idx[0]]), float(b[idx[-1]])
    inside = ts[(ts >= lo) & (ts < hi)]
    points = np.concatenate(([lo], inside, [hi]))
    gap = float(np.max(np.diff(points)))
    return Coverage(int(len(idx)), int(flags.sum()), gap)
