"""The service's account of garbage collection (the stop line of dcim run)."""
from __future__ import annotations

import gc

from dcim.service import GcClock


def test_gc_clock_counts_collections_by_generation_and_their_time():
    clock = GcClock()
    gc.callbacks.append(clock)
    try:
        gc.collect(2)
        gc.collect(0)
        gc.collect(0)
    finally:
        gc.callbacks.remove(clock)
    assert clock.count[2] >= 1 and clock.count[0] >= 2
    assert all(t >= 0.0 for t in clock.seconds) and clock.seconds[2] > 0.0
    assert clock.summary().startswith(f"gen0 {clock.count[0]} in ")
    before = list(clock.count)
    gc.collect(2)  # after removal nothing more is counted
    assert clock.count == before
