"""The digital twin on its own event-loop thread, for tests and benchmarks that poll it.

Tests drive collectors (or net-snmp command-line tools) from their own thread
and loop; the twin must keep answering meanwhile, so it runs on a private loop
in a daemon thread.  ``call`` runs a function on that loop (fault injection,
stepping the model) and returns its result.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from inventory.model import Site
from simulator.twin import Twin
from localservers.process import ServerStartError

__all__ = ["TwinThread"]


class TwinThread:
    def __init__(self, site: Site, *, seed: int = 11, refresh_s: float = 3600.0, slow_s: float = 3.0,
                 trap_to: tuple[str, int] | None = None) -> None:
        self.site = site
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="twin", daemon=True)
        self.twin = Twin(site, seed=seed, refresh_s=refresh_s, slow_s=slow_s, trap_to=trap_to)

    def start(self) -> "TwinThread":
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.twin.start(), self._loop).result(timeout=30)
        except Exception as exc:
            self.stop()
            raise ServerStartError(f"twin did not start: {exc!r}") from exc
        return self

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.twin.stop(), self._loop).result(timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)

    def __enter__(self) -> "TwinThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
