"""``run_until_stopped`` (the loop of ``dcim run``): SIGTERM stops polling at once even while a
tick of a part beside the collectors (the rule engine writing its state files in a worker thread)
is still waiting, and that tick finishes before the part is stopped."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from dcim.service import CollectionService, run_until_stopped
from inventory import load_site

SITE = Path(__file__).resolve().parents[1] / "inventory" / "examples" / "tetouan.yaml"


def test_sigterm_during_a_slow_tick_stops_polling_first_then_lets_the_tick_finish():
    events: list[str] = []

    async def main() -> None:
        site = load_site(SITE)
        service = CollectionService(site, None, devices=[])
        release = asyncio.Event()
        real_stop = service.stop

        async def stop_service(*args, **kwargs):
            events.append("service stopped")
            release.set()  # the slow tick can only end once polling has stopped
            await real_stop(*args, **kwargs)

        service.stop = stop_service

        async def slow_tick() -> None:
            if "tick started" in events:
                return
            events.append("tick started")
            os.kill(os.getpid(), signal.SIGTERM)  # SIGTERM arrives while this tick waits
            await release.wait()
            events.append("tick finished")

        async def close() -> None:
            events.append("closed")

        # were SIGTERM noticed only after the tick, nothing would ever release it
        await asyncio.wait_for(run_until_stopped(service, 60, ticks=[slow_tick], stops=[close]), timeout=30)

    asyncio.run(main())
    assert events == ["tick started", "service stopped", "tick finished", "closed"]


def test_the_stop_budget_counts_from_when_sigterm_came_not_from_when_the_loop_got_to_it():
    """A saturated loop gets to a signal late; the 10 s promise counts from the signal itself: the
    service's stop budget shrinks by the time the loop was busy, and the handlers there were
    before are back afterwards."""
    import time

    from dcim.service import PARTS_STOP_S, STOP_BUDGET_S

    budgets: list[float] = []
    busy_s = 1.5
    before = signal.getsignal(signal.SIGTERM)

    async def main() -> None:
        service = CollectionService(load_site(SITE), None, devices=[])
        real_stop = service.stop

        async def stop_service(budget_s: float = 6.0):
            budgets.append(budget_s)
            await real_stop(budget_s=budget_s)

        service.stop = stop_service
        sent = False

        async def busy_tick() -> None:
            nonlocal sent
            if not sent:
                sent = True
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(busy_s)  # the loop is held, as by a batch of thousands of ready callbacks

        await asyncio.wait_for(run_until_stopped(service, 60, ticks=[busy_tick]), timeout=30)

    asyncio.run(main())
    assert len(budgets) == 1
    assert budgets[0] <= STOP_BUDGET_S - PARTS_STOP_S - busy_s + 0.05, budgets  # 6.0 before: counted from the loop
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_turns_garbage_collection_off_at_once_until_the_handlers_are_restored():
    """Collections of the young generations in the turns the stop waits for cost a loaded shard
    seconds; the signal's own handler turns the collector off, before the loop gets to the signal."""
    import gc

    from dcim.service import install_signal_handlers

    seen: dict[str, bool] = {}

    async def main() -> None:
        stop = asyncio.Event()
        signals = install_signal_handlers(stop, on_signal=[lambda: seen.setdefault("on the loop", gc.isenabled())])
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            seen["in the handler's wake"] = gc.isenabled()  # the Python handler has run; the loop has not
            await asyncio.wait_for(stop.wait(), 5)
        finally:
            signals.restore()
        seen["restored"] = gc.isenabled()

    assert gc.isenabled()
    asyncio.run(main())
    assert seen == {"in the handler's wake": False, "on the loop": False, "restored": True}
