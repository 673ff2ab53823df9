"""collectors/slots.py: the per-protocol bound on polls in flight, FIFO, whose cancelled waiters cost nothing."""
from __future__ import annotations

import asyncio

import pytest

from collectors.slots import Slots


def test_at_most_n_hold_a_slot_and_waiters_are_served_in_order():
    async def main() -> tuple[int, list[int], int]:
        slots = Slots(3)
        holding = peak = 0
        order: list[int] = []
        gate = asyncio.Event()

        async def worker(i: int) -> None:
            nonlocal holding, peak
            async with slots:
                order.append(i)
                holding += 1
                peak = max(peak, holding)
                await gate.wait()
                holding -= 1

        tasks = [asyncio.create_task(worker(i)) for i in range(10)]
        for _ in range(3):
            await asyncio.sleep(0)
        assert order == [0, 1, 2] and slots.waiting() == 7
        gate.set()
        await asyncio.gather(*tasks)
        return peak, order, slots.free

    peak, order, free = asyncio.run(main())
    assert peak == 3
    assert order == list(range(10))
    assert free == 3


def test_cancelled_waiters_leave_every_slot_accounted_for():
    """The stop's case: thousands queued, all cancelled at once; then the holders finish."""
    async def main() -> tuple[int, int, bool]:
        slots = Slots(2)
        release = asyncio.Event()

        async def hold() -> None:
            async with slots:
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0)
        queued = [asyncio.create_task(hold()) for _ in range(20_000)]
        await asyncio.sleep(0)
        waiting = slots.waiting()
        for t in queued:
            t.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        release.set()
        await asyncio.gather(*holders)
        async with slots:  # a new poll gets a slot at once
            pass
        return waiting, slots.free, all(t.cancelled() for t in queued)

    waiting, free, cancelled = asyncio.run(main())
    assert waiting == 20_000 and cancelled
    assert free == 2


def test_a_waiter_cancelled_just_as_it_was_handed_a_slot_passes_it_on():
    async def main() -> tuple[list[str], int]:
        slots = Slots(1)
        got: list[str] = []
        await slots.acquire()

        async def wait_for_slot(name: str) -> None:
            async with slots:
                got.append(name)

        a = asyncio.create_task(wait_for_slot("a"))
        b = asyncio.create_task(wait_for_slot("b"))
        await asyncio.sleep(0)
        slots.release()  # handed to a ...
        a.cancel()       # ... which is cancelled before it runs
        await asyncio.gather(a, b, return_exceptions=True)
        return got, slots.free

    got, free = asyncio.run(main())
    assert got == ["b"] and free == 1


def test_no_slots_is_refused():
    with pytest.raises(ValueError):
        Slots(0)
