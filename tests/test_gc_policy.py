"""The service's use of the garbage collector (dcim/gc_policy.py) and its account on the stop line."""
from __future__ import annotations

import gc

from dcim.gc_policy import GcClock, GcSettler, young_threshold


def test_gc_clock_counts_collections_by_generation_and_their_time():
    clock = GcClock()
    heap = [[i] for i in range(200_000)]  # a full collection with something to walk
    gc.callbacks.append(clock)
    try:
        gc.collect(2)
        gc.collect(0)
        gc.collect(0)
    finally:
        gc.callbacks.remove(clock)
    assert clock.count[2] >= 1 and clock.count[0] >= 2
    assert all(t >= 0.0 for t in clock.seconds) and clock.seconds[2] > 0.0
    assert clock.cpu_seconds[2] > 0.0 and all(c >= 0.0 for c in clock.cpu_seconds)
    assert clock.summary().startswith(f"gen0 {clock.count[0]} in ")
    assert clock.summary().count(" s CPU)") == 3
    del heap
    before = list(clock.count)
    gc.collect(2)  # after removal nothing more is counted
    assert clock.count == before


class _Node:
    """A small cycle, as long-lived per-device state often is (it holds itself)."""

    def __init__(self) -> None:
        self.me = self


def test_settler_freezes_the_survivors_of_full_collections_only_during_the_warm_up():
    settler = GcSettler(until=100.0)
    gc.callbacks.append(settler)
    try:
        gc.unfreeze()
        base = gc.get_freeze_count()
        assert base == 0
        assert settler.tick(1.0) is False  # no full collection yet: nothing frozen
        assert gc.get_freeze_count() == 0
        kept = [_Node() for _ in range(1000)]
        gc.collect(1)  # a young collection is not a full one
        assert settler.tick(2.0) is False
        gc.collect(2)
        assert settler.tick(3.0) is True and settler.freezes == 1
        frozen = gc.get_freeze_count()
        assert frozen >= 1000  # the survivors, the kept state among them
        assert not any(o is kept[0] for o in gc.get_objects(2))  # no longer walked by full collections
        assert settler.tick(4.0) is False  # once per full collection
        assert settler.tick(100.0) is True  # the warm-up's end freezes once more
        gc.collect(2)
        assert settler.tick(200.0) is False and settler.freezes == 2  # after the warm-up: left alone
        assert settler.summary() == "2 freeze(s) after start-up"
    finally:
        gc.callbacks.remove(settler)
        gc.unfreeze()


def test_frozen_state_is_still_freed_by_reference_counting():
    import weakref

    class Leaf:
        pass

    gc.unfreeze()
    leaf = Leaf()
    ref = weakref.ref(leaf)
    gc.freeze()
    try:
        del leaf
        assert ref() is None  # no cycle: reference counting frees it though it was frozen
    finally:
        gc.unfreeze()


def test_young_threshold_is_set_inside_and_restored_after():
    before = gc.get_threshold()
    with young_threshold(12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before
