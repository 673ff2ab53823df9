"""Reading a rollup tier back as the raw readings it stands for: pure functions for the report.

A bucket ``[t, t + step)`` is stamped ``t`` by InfluxDB, but its ``last`` is the
counter at (very nearly) ``t + step``: the last raw reading inside the bucket,
at most one poll before its end.  So a counter read from a tier is placed at
the bucket's end, and energy over whole hours equals the raw counters'
difference to within one poll's energy at each end of the period.  A mean
(power) stands for the bucket's middle.

Where a bucket's ``last`` is below the one before (the counter reset or wrapped
inside it), the bucket's ``max`` — the peak before the drop — is put in the
middle of the bucket, so the drop is bridged as it is from raw readings.
"""
from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["TierSource", "counter_readings", "mean_readings", "RAW"]


class TierSource:
    """Where a reader reads: ``rp`` None for raw, else the tier's retention policy and step."""

    __slots__ = ("name", "rp", "step_s")

    def __init__(self, name: str = "raw", rp: str | None = None, step_s: int = 0) -> None:
        self.name, self.rp, self.step_s = name, rp, step_s

    @property
    def is_raw(self) -> bool:
        return self.rp is None

    def __repr__(self) -> str:
        return f"TierSource({self.name!r}, {self.rp!r}, {self.step_s})"


RAW = TierSource()


def counter_readings(rows: Iterable[Sequence], step_s: float) -> list[tuple[float, float]]:
    """``[(bucket start s, last, max)]`` sorted by time -> counter readings ``(t, value)``."""
    out: list[tuple[float, float]] = []
    prev: float | None = None
    half = step_s / 2.0
    for row in rows:
        t, last = float(row[0]), row[1]
        peak = row[2] if len(row) > 2 else None
        if last is None:
            continue
        last = float(last)
        if prev is not None and last < prev and peak is not None and float(peak) > last:
            out.append((t + half, float(peak)))
        out.append((t + step_s, last))
        prev = last
    return out


def mean_readings(rows: Iterable[Sequence], step_s: float) -> list[tuple[float, float]]:
    """``[(bucket start s, mean)]`` -> readings at each bucket's middle."""
    half = step_s / 2.0
    return [(float(r[0]) + half, float(r[1])) for r in rows if r[1] is not None]
