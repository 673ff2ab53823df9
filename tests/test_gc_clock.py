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


def test_what_the_first_polls_built_is_frozen_once_every_device_was_polled_twice():
    from dcim.service import CollectionService, freeze_what_polling_built, settle_after_s
    from localservers.site import load_relocated

    service = CollectionService(load_relocated(), None)
    longest = max(j.target.interval_s for j in service.scheduler.jobs)
    assert settle_after_s(service) == min(600.0, 2 * longest + 5.0)
    built = [{"shape": [i]} for i in range(10_000)]  # what polling builds and keeps
    before = gc.get_freeze_count()
    try:
        freeze_what_polling_built()
        assert gc.get_freeze_count() >= before + len(built)
    finally:
        gc.unfreeze()
