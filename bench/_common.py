"""Helpers shared by the bench scripts: CPU calibration and medians.

These machines are shared and their speed drifts; every bench measures a
peer in the same run, alternates A B A B, brackets runs with a fixed CPU
calibration loop and discards rounds where the calibration moved by more
than ``tolerance``.
"""
from __future__ import annotations

import statistics
import time


def calibrate(n: int = 2_000_000) -> float:
    """CPU seconds for a fixed pure-Python loop."""
    t = time.process_time()
    x = 0
    for i in range(n):
        x += i * i % 7
    return time.process_time() - t


def stable(before: float, after: float, tolerance: float = 0.25) -> bool:
    return abs(after - before) / max(before, 1e-9) <= tolerance


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
