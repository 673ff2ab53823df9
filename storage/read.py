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


import numpy as np

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


def counter_readings(rows, step_s: float) -> np.ndarray:
    """``[(bucket start s, last, max)]`` sorted by time -> counter readings, an (n, 2) array of (t, value).

    ``rows``: a sequence of triples or an (n, 3) array; ``max`` may be None/NaN where unknown.
    An array, not a list of tuples: a year of a thousand meters' buckets goes
    straight into the report's vector maths.
    """
    if len(rows) == 0:
        return np.empty((0, 2))
    arr = np.asarray(rows, dtype=float).reshape(-1, 3)
    arr = arr[np.isfinite(arr[:, 1])]
    t, last, peak = arr[:, 0], arr[:, 1], arr[:, 2]
    drop = np.zeros(len(t), dtype=bool)
    drop[1:] = last[1:] < last[:-1]
    drop &= peak > last                                   # NaN (no max) compares False
    times = np.concatenate((t + step_s, t[drop] + step_s / 2.0))
    values = np.concatenate((last, peak[drop]))
    order = np.argsort(times, kind="stable")
    return np.column_stack((times[order], values[order]))


def mean_readings(rows, step_s: float) -> list[tuple[float, float]]:
    """``[(bucket start s, mean)]`` (or an (n, 2) array) -> readings at each bucket's middle."""
    half = step_s / 2.0
    return [(float(r[0]) + half, float(r[1])) for r in rows if r[1] is not None and r[1] == r[1]]
