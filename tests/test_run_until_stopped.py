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
