"""How the service uses Python's cyclic garbage collector, and what that costs.

A full-site shard holds millions of long-lived objects: the inventory and what start-up builds
from it, then, from each device's first polls, its per-node page shapes, known SNMP rows and
kept-alive connections.  A full collection walks every one of them that is not frozen; on a
loaded full-site shard that was ≈1.5 s per collection, 27 collections in three minutes, each
stalling the event loop so that replies already received timed out.  So:

- :func:`gc_paused_for_startup`: no collection while start-up builds what lives until exit;
  then it is frozen (``gc.freeze``) and collection turns on again;
- :class:`GcSettler`: during the warm-up (the first interval, when every device's first poll
  builds its state), the survivors of each full collection are frozen too, and once more when
  the warm-up ends; afterwards a full collection walks only what was built since;
- :data:`YOUNG_THRESHOLD`: the youngest generation is collected every 20,000 allocations,
  not Python's 700, so that what a poll in flight allocates dies young instead of being
  promoted into the generations that full collections walk (bench/gpu_service.py's service
  path, 360 DCGM pages every 5 s, 700 and 20,000 alternated 4 times: 0.81× the CPU per page);
- :class:`GcClock`: the collections and their time, for the stop line of ``dcim run``.

What freezing costs: an object frozen while alive that later becomes unreachable *through a
reference cycle* is never freed (plain reference counting still frees everything else).
Freezes happen only during the warm-up, so that is bounded by what was in flight at those few
moments; failed polls leave no cycles (collectors.scheduler.poll_once).
"""
from __future__ import annotations

import contextlib
import gc
import time
from typing import Iterator

__all__ = ["gc_paused_for_startup", "GcClock", "GcSettler", "YOUNG_THRESHOLD", "young_threshold"]

#: allocations between collections of the youngest generation while polling (module docstring)
YOUNG_THRESHOLD = 20_000


@contextlib.contextmanager
def gc_paused_for_startup() -> Iterator[None]:
    """No cyclic garbage collection while the service starts; :func:`dcim.service.run_until_stopped`
    freezes what start-up built and turns collection on again.

    Why: start-up allocates the shard's inventory, targets, rule selectors and suppression graph
    (millions of objects on the full site) and almost nothing of it is garbage, yet every full
    collection walks all of it again: on a full-site shard the collector ran 5.9 s of CPU to its
    first poll with collection on, 3.4 s with it off, at the same peak RSS.  Restores the
    previous setting on exit (the command may run in-process, e.g. under a test); once polling
    has started, ``run_until_stopped`` has turned collection on whatever it was before.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextlib.contextmanager
def young_threshold(allocations: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """The youngest generation's threshold set to ``allocations`` inside, restored after."""
    before = gc.get_threshold()
    gc.set_threshold(allocations, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class GcClock:
    """Collections, wall time and CPU time spent in cyclic garbage collection, per generation
    (``gc.callbacks``).

    Why: on a full-site shard the heap that is not frozen can reach a gigabyte, and a full
    collection walks all of it; the stop line says what collection cost, so a slow shard can be
    told from a busy one.  Both clocks, because on a loaded machine the wall time of a
    collection is mostly the process waiting for a core (run7 of bench/site_full.py: 18 s of
    wall time in 363 young collections at load average 7.7), which is not what it costs.
    """

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.cpu_seconds = [0.0, 0.0, 0.0]
        self._t0: tuple[float, float] | None = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            # the collecting thread's own CPU: the collection runs in it, nothing else does meanwhile
            self._t0 = (time.perf_counter(), time.thread_time())
        elif self._t0 is not None:
            g = info.get("generation", 2)
            self.count[g] += 1
            self.seconds[g] += time.perf_counter() - self._t0[0]
            self.cpu_seconds[g] += time.thread_time() - self._t0[1]
            self._t0 = None

    def summary(self) -> str:
        return ", ".join(f"gen{g} {n} in {t:.2f} s ({c:.2f} s CPU)"
                         for g, (n, t, c) in enumerate(zip(self.count, self.seconds, self.cpu_seconds)))


class GcSettler:
    """Freeze the survivors of full collections until ``until`` (loop time), and once at ``until``.

    A ``gc.callbacks`` entry notes each full collection's end; :meth:`tick` (the service's
    once-a-second loop, never inside a collection) freezes then.  Survivors of a full collection
    are what is alive; during the warm-up that is mostly state every later poll reuses.
    """

    def __init__(self, until: float) -> None:
        self.until: float | None = until
        self.freezes = 0
        self._due = False

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "stop" and info.get("generation") == 2 and self.until is not None:
            self._due = True

    def tick(self, now: float) -> bool:
        """Freeze if a full collection ended since the last tick or the warm-up is over; True if it froze."""
        if self.until is None:
            return False
        done = now >= self.until
        froze = self._due or done
        if froze:
            gc.freeze()
            self.freezes += 1
            self._due = False
        if done:
            self.until = None
        return froze

    def summary(self) -> str:
        # not gc.get_freeze_count(): it walks the frozen objects, ≈1 M on a full-site shard,
        # 0.4 s of the 10 s SIGTERM budget on a loaded machine (py-spy), to print a number
        return f"{self.freezes} freeze(s) after start-up"
