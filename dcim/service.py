"""The collection service: inventory -> targets -> scheduler -> writer (+ other consumers).

``dcim run`` and ``dcim demo`` both use :class:`CollectionService`.  With
``traps`` settings it also runs the SNMP trap receiver: trap samples go to the
same consumers as polled ones, and each trap asks the scheduler to poll its
device at once.  Extra
consumers (rule engine, derived metrics) are plain callables taking a list of
samples, added with :meth:`add_consumer`; the service knows nothing of them.
With a writer, the service also writes the writer's own ``writer`` sample
(contract/writer.py: points dropped by reason, spool state) every
``stats_interval_s`` and once more when it stops.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import signal
import sys
import time
from typing import Callable, NoReturn

from collectors.base import Collector
from collectors.fdlimit import raise_open_file_limit
from collectors.registry import collector_class
from contract import writer as W
from contract.sample import Sample
from collectors.scheduler import Job, Scheduler
from collectors.targets import TargetProblem, build_targets
from dcim.gc_policy import GcClock, GcSettler, young_threshold
from inventory.model import Device, Site
from sinks.influx_writer import InfluxConfig, InfluxWriter

__all__ = ["CollectionService", "select_shard", "StopSignals", "install_signal_handlers", "run_until_stopped",
           "STOP_BUDGET_S", "PARTS_STOP_S", "exit_after_stop"]

log = logging.getLogger("dcim.service")


def select_shard(site: Site, shard: tuple[int, int]) -> list[Device]:
    from collectors.sharding import in_shard

    test = in_shard(shard)
    return site.polled_devices() if test is None else [d for d in site.polled_devices() if test(d)]


class CollectionService:
    def __init__(self, site: Site, influx: InfluxConfig | None, *, shard: tuple[int, int] = (0, 1),
                 concurrency: dict[str, int] | None = None, devices: list[Device] | None = None,
                 traps=None) -> None:
        self.site = site
        self.shard = shard
        self.writer = InfluxWriter(influx) if influx else None
        self._consumers: list[Callable[[list[Sample]], None]] = []
        if self.writer:
            self._consumers.append(self.writer.write)
        chosen = devices if devices is not None else select_shard(site, shard)
        targets, self.problems = build_targets(site, chosen)
        self.collectors: dict[type, Collector] = {}
        jobs: list[Job] = []
        for t in targets:
            try:
                cls = collector_class(t.protocol)
            except (ValueError, ImportError) as exc:
                self.problems.append(TargetProblem(t.device_id, f"no collector for {t.protocol}: {exc}"))
                continue
            if cls not in self.collectors:
                self.collectors[cls] = cls()
            jobs.append(Job(t, self.collectors[cls]))
        self.scheduler = Scheduler(jobs, self.emit, concurrency=concurrency)
        # one socket per poll in flight, plus kept-alive HTTP connections (one per DCGM/Redfish endpoint)
        limit = raise_open_file_limit(len(jobs))
        if limit < len(jobs):
            log.warning("open-file limit %d is below the %d devices polled: raise it (ulimit -n)", limit, len(jobs))
        self.traps = None
        if traps is not None:
            from collectors.snmp.traps.listener import TrapListener

            self.traps = TrapListener(targets, self.emit, settings=traps, poll_now=self.scheduler.poll_now)
        self._stats_task: asyncio.Task | None = None
        self._writer_task: asyncio.Task | None = None
        self._stopped = False
        self._writer_started = False
        for p in self.problems:
            log.error("device %s not polled: %s", p.device_id, p.message)

    def warmup_s(self, cap_s: float = 600.0) -> float:
        """Until every device has had its first poll: the longest interval plus its poll's deadline
        (at most ``cap_s``); what the garbage-collection settler treats as the warm-up."""
        sched = self.scheduler
        longest = max((j.target.interval_s + sched.deadline_for(j.target) for j in sched.jobs), default=0.0)
        return min(cap_s, max(1.0, longest))

    def add_consumer(self, consumer: Callable[[list[Sample]], None]) -> None:
        self._consumers.append(consumer)

    def emit(self, samples: list[Sample]) -> None:
        """Hand one poll's samples to every consumer (the scheduler, and the demo's backfill)."""
        for consumer in self._consumers:
            try:
                consumer(samples)
            except Exception:
                log.exception("consumer %r failed", consumer)

    async def start_writer(self) -> None:
        """Start the writer alone (idempotent): the demo's backfill writes history before polling starts."""
        if self.writer and not self._writer_started:
            self._writer_started = True
            await self.writer.start()

    async def start(self) -> None:
        if self.traps is not None:
            await self.traps.start()  # first: a port that cannot be bound stops start-up before anything runs
        await self.start_writer()
        self.scheduler.start()
        log.info("polling %d devices (shard %d/%d)", len(self.scheduler.jobs), *self.shard)
        if self.traps is not None:
            self._stats_task = asyncio.create_task(self._trap_stats(), name="trap-stats")
        if self.writer is not None:
            self._writer_task = asyncio.create_task(self._writer_stats(), name="writer-stats")

    def _service_tags(self) -> dict[str, str]:
        return {"site": self.site.site.id, W.SHARD: f"{self.shard[0]}/{self.shard[1]}"}

    async def _writer_stats(self) -> None:
        """Every ``stats_interval_s``: the writer's losses and spool state, as a ``writer`` sample."""
        assert self.writer is not None
        tags = self._service_tags()
        while True:
            await asyncio.sleep(self.writer.config.stats_interval_s)
            self.emit([self.writer.status_sample(tags)])

    async def _trap_stats(self) -> None:
        tags = self._service_tags()
        while True:
            await asyncio.sleep(self.traps.settings.stats_interval_s)
            self.emit([self.traps.stats_sample(tags)])

    async def stop(self, budget_s: float = 6.0) -> None:
        """Stop polling at once, then flush (or spool) everything, within ``budget_s`` seconds.

        Order and bounds, so SIGTERM on the full site exits within 10 s:
        1. polling stops (every device loop cancelled; a third of the budget, at most 3 s, for loops to end, the
           rest are left behind and named in the log);
        2. the writer flushes what it holds for what remains of the budget, less 1 s, and
           spools the rest to disk (nothing polled is lost); meanwhile the collectors close
           their clients (Redfish sessions logged out), bounded by the same budget.
        """
        if self._stopped:
            return
        self._stopped = True
        t0 = time.monotonic()
        end = t0 + budget_s
        if self.traps is not None:
            self.traps.close()
            if self._stats_task is not None:
                self._stats_task.cancel()
                await asyncio.gather(self._stats_task, return_exceptions=True)
            self.emit([self.traps.stats_sample(self._service_tags())])
        # every loop ends in the turn after halt; one still running a second later is in a library
        # that swallows cancellations (it is cancelled again every 50 ms meanwhile), and waiting
        # longer for it only takes from the flush: on a loaded full-site shard hundreds were
        # still running after 1.5 s
        await self.scheduler.stop(timeout=min(1.0, budget_s / 5))
        log.info("polling stopped in %.2f s", time.monotonic() - t0)
        if self._writer_task is not None:
            self._writer_task.cancel()
            await asyncio.gather(self._writer_task, return_exceptions=True)
            self.emit([self.writer.status_sample(self._service_tags())])  # the last word, flushed below

        async def close_writer() -> None:
            if self.writer:
                await self.writer.close(max(0.5, end - time.monotonic() - 1.0))

        async def close_collector(c: Collector) -> None:
            try:
                await asyncio.wait_for(c.close(), timeout=max(0.2, end - time.monotonic()))
            except asyncio.TimeoutError:
                log.warning("closing %s took longer than the stop budget: left open", type(c).__name__)
            except Exception:
                log.exception("closing %s", type(c).__name__)

        await asyncio.gather(close_writer(), *(close_collector(c) for c in self.collectors.values()))
        log.info("stopped in %.2f s", time.monotonic() - t0)


class StopSignals:
    """SIGTERM/SIGINT: the first stops cleanly (flush), the second exits at once.

    Exiting at once is safe: the spool only ever holds whole, renamed batch
    files, so an interrupted flush leaves nothing torn behind.

    Why not ``loop.add_signal_handler``: asyncio runs that handler at the loop's next
    poll, behind every callback already ready, and a saturated full-site shard noticed
    SIGTERM 1-2 s after it came (its log), time the 10 s promise had already spent.
    Here the signal's own Python handler, which the interpreter runs within a few
    bytecodes, notes when the signal came (:attr:`received_at`: the stop's deadlines
    count from it) and exits right there on the second; the stop itself is handed to
    the loop with ``call_soon_threadsafe``, as asyncio's own handler does.

    It also turns the cyclic garbage collector off, there and then (:meth:`restore` turns it
    back on): ending a full-site shard's ≈17,500 device loops makes garbage enough for
    collections of the young generations, 0.4 s of wall time each on a loaded machine,
    in the very turns the stop is waiting for, and the process exits right after.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stop: asyncio.Event, on_signal: list[Callable[[], None]] | None = None) -> None:
        self.stop = stop
        #: called on the loop with ``stop.set()``, first thing (the scheduler's halt)
        self.on_signal = list(on_signal or ())
        self.loop = asyncio.get_running_loop()
        #: ``time.monotonic()`` when the first signal came; None before
        self.received_at: float | None = None
        self._gc_was_enabled = False
        self._previous = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}

    def _handler(self, signum: int, frame) -> None:
        if self.received_at is not None:
            # no logging here: the interrupted code may hold the logging lock
            os.write(2, f"second {signal.Signals(signum).name}: exiting now\n".encode())
            os._exit(128 + signum)
        self.received_at = time.monotonic()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.loop.call_soon_threadsafe(self._on_loop, signum)
        except RuntimeError:  # the loop has closed: nothing left to stop
            pass

    def _on_loop(self, signum: int) -> None:
        assert self.received_at is not None
        log.info("%s: stopping, flushing buffers (send again to exit at once); noticed %.2f s after it came",
                 signal.Signals(signum).name, time.monotonic() - self.received_at)
        for call in self.on_signal:
            call()
        self.stop.set()

    def deadline(self) -> float:
        """When the stop must be done (``time.monotonic()``): :data:`STOP_BUDGET_S` after the signal
        came, or from now when the stop has another cause (``--duration``)."""
        began = self.received_at if self.received_at is not None else time.monotonic()
        return began + STOP_BUDGET_S

    def restore(self) -> None:
        """Put back the handlers there were before, and the garbage collector (a caller that runs on in-process)."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        if self._gc_was_enabled:
            gc.enable()


def install_signal_handlers(stop: asyncio.Event, on_signal: list[Callable[[], None]] | None = None) -> StopSignals:
    """Set ``stop`` on the first SIGTERM/SIGINT, exit at once on the second (:class:`StopSignals`)."""
    return StopSignals(stop, on_signal)


#: SIGTERM -> exit: the promise, less a second for the process's own exit
STOP_BUDGET_S = 9.0
#: of it, what the parts beside collection get after the service has stopped (the rule engine's
#: alert snapshot and MQTT outbox)
PARTS_STOP_S = 3.0


def exit_after_stop(code: int = 0) -> NoReturn:
    """End the process now, once a service has stopped (everything written or spooled, the outbox closed).

    Why not return: tearing down a heap of millions of objects (the full site's inventory,
    readings, rule state) took longer than the 10 s SIGTERM promise on a loaded machine, and
    ``asyncio.run`` joins every worker thread before it returns, a write still waiting on a
    stalled InfluxDB among them (its batch is already back in the spool)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def run_until_stopped(service: CollectionService, duration: float | None = None, *,
                            starts: list = (), ticks: list = (), stops: list = ()) -> None:
    """Run ``service`` until SIGTERM/SIGINT or ``duration``; the ``dcim run`` and ``dcim agent`` loop.

    ``starts``/``ticks``/``stops`` are coroutine functions of the parts running beside
    collection (rule engine, derived metrics): started after the service, ticked every
    second, stopped after the service has flushed.
    """
    stop = asyncio.Event()
    # no device starts a poll once the signal has come, before the stop gets its turn on the loop
    signals = install_signal_handlers(stop, on_signal=[service.scheduler.halt])
    try:
        await _run_and_stop(service, duration, signals, starts, ticks, stops)
    finally:
        signals.restore()


async def _run_and_stop(service: CollectionService, duration: float | None, signals: StopSignals,
                        starts: list, ticks: list, stops: list) -> None:
    stop = signals.stop
    await service.start()
    for start in starts:
        await start()
    # the inventory and what was built from it live until exit: keep them out of the
    # garbage collector's full scans (dcim/gc_policy.py); collection was paused while they
    # were built (gc_paused_for_startup)
    gc.freeze()
    gc.enable()
    loop = asyncio.get_running_loop()
    gc_clock, settler = GcClock(), GcSettler(loop.time() + service.warmup_s())
    gc.callbacks.extend((gc_clock, settler))
    end = None if duration is None else loop.time() + duration

    async def tick_all() -> None:
        for tick in ticks:
            await tick()

    # the ticks run beside the wait for SIGTERM, not before it: a tick may wait on a worker
    # thread (the rule engine's state files, their fsyncs) for seconds on a loaded machine, and
    # polling must stop at once; the tick in progress is awaited after polling has stopped
    stopped = asyncio.ensure_future(stop.wait())
    pending_tick: asyncio.Future | None = None
    try:
        with young_threshold():
            while not stop.is_set():
                pending_tick = asyncio.ensure_future(tick_all())
                await asyncio.wait((pending_tick, stopped), return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    break
                pending_tick.result()  # a tick that raised ends the loop, as before
                pending_tick = None
                settler.tick(loop.time())
                timeout = 1.0 if end is None else min(1.0, end - loop.time())
                if timeout <= 0:
                    break
                await asyncio.wait((stopped,), timeout=timeout)
    finally:
        stopped.cancel()
        for cb in (gc_clock, settler):  # also when a tick raised (the loop may run in-process)
            gc.callbacks.remove(cb)
    log.info("garbage collection while polling: %s; %s", gc_clock.summary(), settler.summary())
    # SIGTERM to exit within 10 s, counted from when the signal came (not from when the loop got
    # to it): the service (polling stopped, everything written or spooled) until PARTS_STOP_S
    # before the end, then what is left for the parts beside it (the rule engine's MQTT outbox).
    # No cyclic collection meanwhile: cancelling a full-site shard's ≈17,500 device loops
    # makes garbage enough for full collections (a second or more each on a loaded machine),
    # and the process exits right after; turned on again for a caller that runs on in-process
    gc.disable()
    try:
        end = signals.deadline()
        await service.stop(budget_s=max(1.5, end - PARTS_STOP_S - time.monotonic()))
        if pending_tick is not None:  # the tick SIGTERM interrupted finishes before the parts it ticks stop
            await asyncio.wait((pending_tick,), timeout=max(0.5, end - time.monotonic() - 1.0))
            if pending_tick.done() and not pending_tick.cancelled() and pending_tick.exception() is not None:
                log.error("tick interrupted by the stop failed: %s", pending_tick.exception())
        for close in stops:
            left = max(0.5, end - time.monotonic())
            if "timeout" in inspect.signature(close).parameters:
                await close(timeout=left)
            else:
                await close()
    finally:
        gc.enable()
