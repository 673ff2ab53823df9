"""Polls every device on its own interval; a dead or slow device delays no other.

Design, in the order it matters at 50,000 devices:
- **Fixed-rate ticks with a per-device phase.**  Each device's first poll is
  offset by a stable pseudo-random fraction of its interval (hash of its id),
  so thousands of devices do not fire in the same millisecond, and the phase
  survives restarts.  Ticks are ``start + k * interval``: no drift; a poll
  that overruns skips the ticks it missed (counted in ``skipped``) instead of
  queueing a burst.
- **A timer wheel, not a timer per device** (HTTP protocols, ``BATCHED_PROTOCOLS``).
  Ticks are rounded down to the wheel's slot (``tick_s``, :data:`DEFAULT_TICK_S`
  by default, at most a quarter of the shortest interval) and every device due
  in a slot wakes from one timer, in one turn of the event loop: the polls of a
  slot go out together and their replies come back together, so the loop's
  per-iteration cost (epoll, timer heap, a cold cache after every sleep) is paid
  per slot, not per poll.  Polls stay spread over the interval at slot
  granularity (20 slots in a 10 s interval).  Why 0.5 s: on bench/gpu_service.py's
  360 DCGM pages every 5 s, a page cost ~25 % less CPU with 0.5 s slots than with
  0.1 s (0.25 s sat between; 1-2 s saved nothing more), measured side by side.
- **One task per device**, so a device that hangs only holds its own task.
- **A deadline per poll** (``timeout_s * (retries + 1)``, capped below the
  interval) enforced with cancellation (:mod:`collectors.deadline`: a reply
  already in the socket when a late loop reaches the timer is taken), plus retries with jittered
  exponential backoff for transient errors only (timeout, unreachable,
  protocol); auth, config and device errors are not retried.
- **A bound on concurrent polls per protocol** (:class:`~collectors.slots.Slots`,
  not ``asyncio.Semaphore``, whose waiters cost O(n) each to leave the queue), so a
  flood of timeouts cannot exhaust sockets; waiting for a slot is reported as
  ``queue_ms``, separate from the device's own ``duration_ms``.
- Every poll emits one ``poll`` sample (ok, duration, attempts, error kind,
  samples produced) so operators see which device is slow.
- **Polls on demand** (:meth:`Scheduler.poll_now`): a trap wakes its device's
  loop early, so the polled state confirms or clears what the trap said; the
  fixed-rate ticks are unchanged, a poll already in flight is followed by one
  more, and requests coalesce (at most one pending per device).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from collectors.base import Collector, PollError, Target
from collectors.deadline import RECANCEL_S, deadline
from collectors.gpu.node_summary import node_summary
from collectors.plausibility import screen
from collectors.slots import Slots
from collectors.targets import tag_outlet_feeds
from contract import poll as P
from contract.protocols import PROTOCOLS
from contract.sample import Sample, now_ns

__all__ = ["Scheduler", "TimerWheel", "BATCHED_PROTOCOLS", "DEFAULT_TICK_S", "Job", "PollOutcome", "phase_offset", "poll_once", "poll_sample", "finish_poll"]

log = logging.getLogger("dcim.scheduler")

Emit = Callable[[list[Sample]], None]
_RETRYABLE = frozenset({"timeout", "unreachable", "protocol"})
#: samples one device may deliver in one poll: a big PDU or chiller gives a few
#: hundred; a page that lists 100,000 series is a lying device, not data
MAX_SAMPLES_PER_POLL = 5000
#: Protocols whose polls wake from the timer wheel.  SNMP and Modbus keep a timer per device: with
#: SNMP polls bunched into slots, the twin's garbage-answering agent made gufo-snmp panic (a pyo3
#: PanicException) in tests/reliability/test_bad_devices.py, and after such panics the interpreter
#: was once left broken; until that is understood they stay as they were.
BATCHED_PROTOCOLS = frozenset({"dcgm", "redfish", "redfish-https"})
#: the timer wheel's slot (module docstring: why 0.5 s)
DEFAULT_TICK_S = 0.5
#: polls in flight per protocol unless configured (contract/protocols.py)
DEFAULT_CONCURRENCY = {name: p.concurrency for name, p in PROTOCOLS.items() if p.collector}


def phase_offset(device_id: str, interval_s: float) -> float:
    """A stable offset in [0, interval) derived from the device id."""
    h = int.from_bytes(hashlib.blake2b(device_id.encode(), digest_size=8).digest(), "big")
    return (h / 2**64) * interval_s


@dataclass(slots=True)
class Job:
    target: Target
    collector: Collector


@dataclass(slots=True)
class PollOutcome:
    samples: list[Sample]
    ok: bool
    error_kind: str = ""
    error: str = ""
    attempts: int = 1
    duration_ms: float = 0.0
    #: samples dropped beyond the device's cap (its inventory GPU count, :data:`MAX_SAMPLES_PER_POLL`)
    excess: int = 0


def _capped(outcome: PollOutcome, limit: int = MAX_SAMPLES_PER_POLL) -> PollOutcome:
    if len(outcome.samples) > limit:
        outcome.excess += len(outcome.samples) - limit
        del outcome.samples[limit:]
    return outcome


async def poll_once(collector: Collector, target: Target, deadline_s: float) -> PollOutcome:
    """One poll with retries inside ``deadline_s``; never raises (except cancellation)."""
    start = time.monotonic()
    end = start + deadline_s
    attempt = 0
    backoff = 0.05
    last: PollError | None = None
    partial: list[Sample] = []
    while True:
        attempt += 1
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        try:
            # not wait_for: it wraps every poll in a task of its own; not asyncio.timeout: on a late
            # loop it cancels a poll whose reply is already in the socket (collectors/deadline.py)
            async with deadline(remaining):
                samples = await collector.poll(target)
            return _capped(PollOutcome(samples, True, attempts=attempt, duration_ms=(time.monotonic() - start) * 1000))
        except PollError as exc:
            # keep what the error says, not where it was raised: its traceback holds this frame
            # and this frame holds ``last``, a cycle per failed poll (with the poll's partial
            # samples) that only a full garbage collection frees; on a loaded full-site shard
            # half the polls fail and those cycles filled the oldest generation
            last = exc.with_traceback(None)
            last.__context__ = None
            partial = exc.partial or partial
        except asyncio.TimeoutError:
            last = PollError("timeout", f"no complete reply within {deadline_s:.1f}s")
        except asyncio.CancelledError:
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # a collector bug (or a native codec's panic) must not kill the device's loop
            log.exception("collector %s crashed polling %s", type(collector).__name__, target.device_id)
            last = PollError("internal", f"{type(exc).__name__}: {exc}"[:300])
        if last.kind not in _RETRYABLE or attempt > target.retries:
            break
        delay = backoff * (0.5 + random.random())
        backoff *= 2
        if time.monotonic() + delay >= end:
            break
        await asyncio.sleep(delay)
    assert last is not None or attempt == 1
    if last is None:
        last = PollError("timeout", f"no time left within the {deadline_s:.1f}s deadline")
    return _capped(PollOutcome(partial, False, last.kind, last.message, attempt, (time.monotonic() - start) * 1000,
                               excess=last.excess))


def poll_sample(target: Target, outcome: PollOutcome, time_ns: int, *, queue_ms: float = 0.0, skipped: int = 0,
                implausible: list[str] | None = None) -> Sample:
    """The ``poll`` measurement: the collector's own view of one device poll."""
    tags = dict(target.tags)
    tags[P.PROTOCOL] = target.protocol
    fields: dict = {
        P.OK: outcome.ok,
        P.DURATION_MS: round(outcome.duration_ms, 3),
        P.ATTEMPTS: outcome.attempts,
        P.SAMPLES: len(outcome.samples),
        P.ERROR_KIND: outcome.error_kind,
    }
    if outcome.error:
        fields[P.ERROR] = outcome.error[:300]
    if queue_ms:
        fields[P.QUEUE_MS] = round(queue_ms, 3)
    if skipped:
        fields[P.SKIPPED] = skipped
    if outcome.excess:
        fields[P.EXCESS] = outcome.excess
    if implausible:
        fields[P.IMPLAUSIBLE] = len(implausible)
        note = "; ".join(implausible[:3]) + (f"; +{len(implausible) - 3} more" if len(implausible) > 3 else "")
        fields[P.ERROR] = (fields[P.ERROR] + "; " if P.ERROR in fields else "") + note[:300]
    return Sample(P.POLL_MEASUREMENT, tags, fields, time_ns)


def finish_poll(target: Target, outcome: PollOutcome, time_ns: int, *, queue_ms: float = 0.0,
                skipped: int = 0) -> tuple[list[Sample], int]:
    """What one poll emits: its samples screened and tagged, a node's ``gpu_node`` summary where they
    hold its GPUs (collectors/gpu/node_summary.py), then its ``poll`` sample; and how many
    fields the screen removed.  The scheduler and the demo's backfill both call it, so history
    and live polls go through the same screen."""
    samples = outcome.samples
    implausible = screen(samples)
    if target.outlet_feeds:
        tag_outlet_feeds(samples, target.outlet_feeds)
    polled = poll_sample(target, outcome, time_ns, queue_ms=queue_ms, skipped=skipped, implausible=implausible)
    if samples and (summary := node_summary(samples, target.tags)) is not None:  # after the screen: what is written
        samples.append(summary)
    samples.append(polled)
    return samples, len(implausible)


@dataclass
class SchedulerStats:
    polls: int = 0
    ok: int = 0
    failed: int = 0
    skipped_ticks: int = 0
    implausible: int = 0
    triggered: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class TimerWheel:
    """Wake many sleepers from one timer per slot of ``tick_s`` seconds.

    ``schedule(when, fut)`` wakes ``fut`` (result False) at the slot boundary at or
    before ``when``: a device's phase is rounded down to the slot the same way every
    tick, so its rhythm stays exact.  Each sleeper keeps its own future (one that is
    cancelled or woken early by a trap leaves the others alone), but a slot has one
    loop timer however many devices are due in it.
    """

    def __init__(self, tick_s: float = DEFAULT_TICK_S) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.tick_s = tick_s
        self._slots: dict[int, list[asyncio.Future]] = {}

    def schedule(self, when: float, fut: asyncio.Future) -> bool:
        """Register ``fut`` for its slot; False when that slot is already due (do not wait)."""
        loop = asyncio.get_running_loop()
        slot = int(when // self.tick_s)
        if slot * self.tick_s <= loop.time():
            return False
        waiters = self._slots.get(slot)
        if waiters is None:
            waiters = self._slots[slot] = []
            loop.call_at(slot * self.tick_s, self._fire, slot)
        waiters.append(fut)
        return True

    async def wait_until(self, when: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        if self.schedule(when, fut):
            await fut

    def _fire(self, slot: int) -> None:
        for fut in self._slots.pop(slot, ()):
            _wake(fut)


class Scheduler:
    def __init__(
        self,
        jobs: Iterable[Job],
        emit: Emit,
        *,
        concurrency: dict[str, int] | None = None,
        spread: bool = True,
        tick_s: float = DEFAULT_TICK_S,
        batched: Iterable[str] = BATCHED_PROTOCOLS,
    ) -> None:
        self.jobs = list(jobs)
        self._batched = frozenset(batched)
        shortest = min((j.target.interval_s for j in self.jobs if j.target.protocol in self._batched), default=tick_s * 4)
        self.wheel = TimerWheel(min(tick_s, shortest / 4))
        self.emit = emit
        limits = {**DEFAULT_CONCURRENCY, **(concurrency or {})}
        self._slots = {p: Slots(limits.get(p, 100)) for p in {j.target.protocol for j in self.jobs}}
        self.spread = spread
        self.stats = SchedulerStats()
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._ids = {j.target.device_id for j in self.jobs}
        #: device id -> the future its loop sleeps on (set early by poll_now)
        self._sleeping: dict[str, asyncio.Future] = {}
        #: devices asked for a poll while one was in flight
        self._again: set[str] = set()

    def poll_now(self, device_id: str) -> bool:
        """Poll ``device_id`` as soon as it can be (trap received); False if this scheduler does not poll it."""
        if device_id not in self._ids:
            return False
        fut = self._sleeping.get(device_id)
        if fut is not None and not fut.done():
            fut.set_result(True)
        else:
            self._again.add(device_id)
        return True

    async def _sleep(self, device_id: str, delay: float, wheel: TimerWheel | None = None) -> bool:
        """Sleep ``delay`` s (one future; one timer, or a place on the wheel); True if woken by poll_now."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        timer = None
        if wheel is None:
            timer = loop.call_later(delay, _wake, fut)
        elif not wheel.schedule(loop.time() + delay, fut):
            return False  # its slot is due now
        self._sleeping[device_id] = fut
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            self._sleeping.pop(device_id, None)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._device_loop(job, t0), name=f"poll:{job.target.device_id}"))

    async def run(self, duration_s: float | None = None) -> None:
        """Start (if needed) and run until :meth:`stop` or ``duration_s``."""
        if not self._tasks:
            self.start()
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=duration_s)
        except asyncio.TimeoutError:
            pass
        await self.stop()

    def halt(self) -> None:
        """Stop polling now, in this turn of the loop: no poll starts from here on, every device's
        loop ends (a sleeping one is woken to end by itself, a poll in flight is cancelled).

        What a signal does first, as a plain callback: on a saturated full-site shard one turn of
        the loop takes a second or more, and the stop coroutine gets its turn only three turns
        after the signal's (the event, the wait, the task).  Polls left running meanwhile kept
        the loop busy decoding replies the stop was about to throw away, and each device that
        woke would have opened a connection for nothing.  :meth:`stop` then only waits.
        Waking a sleeper costs less than cancelling it (no exception through its frames):
        17,500 sleeping loops, 0.18 s of CPU against 0.29 s."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        sleeping = self._sleeping
        for task, job in zip(self._tasks, self.jobs):
            fut = sleeping.get(job.target.device_id)
            if fut is not None and not fut.done():
                fut.set_result(False)  # its loop sees ``stopping`` and ends
            elif not task.done():
                task.cancel()

    async def stop(self, timeout: float = 3.0) -> list[str]:
        """Stop polling at once (:meth:`halt`, if the signal has not already) and wait up to
        ``timeout`` s for every device's loop to end.

        A loop still running is cancelled again every :data:`~collectors.deadline.RECANCEL_S`:
        Python 3.11's ``asyncio.wait_for`` (gufo-snmp's reply wait) swallows a cancellation that
        lands as its reply comes, and the poll would go on to its next request; on a loaded
        full-site shard hundreds of SNMP loops did.  One that still does not end (a client
        library that never yields) is left behind rather than holding the shutdown: its device
        id is logged and returned, and the process exits without it.
        """
        self.halt()
        stuck: list[str] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        pending = {t for t in self._tasks if not t.done()}  # asyncio.wait schedules a callback per done task too
        while pending:
            _, pending = await asyncio.wait(pending, timeout=max(0.0, min(RECANCEL_S, end - loop.time())))
            if not pending or loop.time() >= end:
                break
            for t in pending:
                t.cancel()
        if pending:
            stuck = sorted(t.get_name().removeprefix("poll:") for t in pending)
            if stuck:
                log.warning("%d device loop(s) did not stop within %.1f s of cancellation, left behind: %s",
                            len(stuck), timeout, ", ".join(stuck[:10]) + (" …" if len(stuck) > 10 else ""))
                for t in list(pending)[:3]:
                    log.warning("stack of %s: %s", t.get_name(), "".join(
                        f"\n  {f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}" for f in t.get_stack(limit=12)))
        self._tasks.clear()
        return stuck

    def deadline_for(self, target: Target) -> float:
        budget = target.timeout_s * (target.retries + 1) + 0.1 * target.retries
        return max(0.1, min(budget, target.interval_s * 0.95))

    async def _device_loop(self, job: Job, t0: float) -> None:
        loop = asyncio.get_running_loop()
        target = job.target
        interval = target.interval_s
        slots = self._slots[target.protocol]
        deadline = self.deadline_for(target)
        next_at = t0 + (phase_offset(target.device_id, interval) if self.spread else 0.0)
        skipped = 0
        wheel = self.wheel if target.protocol in self._batched else None
        device_id = target.device_id
        stopping = self._stopping
        # the loop also ends on ``stopping``, not only on cancellation: Python 3.11's
        # asyncio.wait_for can swallow a cancellation that arrives as the poll completes,
        # and the loop would then sleep on to its next tick
        while not stopping.is_set():
            delay = next_at - loop.time()
            early = False
            if device_id in self._again:
                self._again.discard(device_id)
                early = delay > 0
            elif delay > 0:
                early = await self._sleep(device_id, delay, wheel)
                if stopping.is_set():  # halted while it slept
                    break
            self._again.discard(device_id)
            queued = loop.time()
            async with slots:
                queue_ms = (loop.time() - queued) * 1000
                outcome = await poll_once(job.collector, target, deadline)
            t = now_ns()
            self._account(outcome, skipped)
            if not outcome.ok:  # the service's log caps this at one line per device and kind a minute
                log.warning("%s: poll failed (%s): %s", device_id, outcome.error_kind, outcome.error[:300])
            samples, implausible = finish_poll(target, outcome, t, queue_ms=queue_ms if queue_ms > 1 else 0.0,
                                               skipped=skipped)
            self.stats.implausible += implausible
            if early:
                samples[-1].fields["triggered"] = True  # the poll sample: a trap asked for this poll
            try:
                self.emit(samples)
            except Exception:
                log.exception("sample consumer failed; samples of %s for this poll dropped", target.device_id)
            if stopping.is_set():
                return
            if early:
                self.stats.triggered += 1
                skipped = 0
                continue  # an extra poll: the fixed-rate schedule stays as it was
            # fixed-rate: next tick after now, skipping missed ones
            next_at += interval
            now = loop.time()
            skipped = 0
            if next_at <= now:
                missed = int((now - next_at) // interval) + 1
                next_at += missed * interval
                skipped = missed
                self.stats.skipped_ticks += missed

    def _account(self, outcome: PollOutcome, skipped: int) -> None:
        s = self.stats
        s.polls += 1
        if outcome.ok:
            s.ok += 1
        else:
            s.failed += 1
            s.by_error[outcome.error_kind] = s.by_error.get(outcome.error_kind, 0) + 1


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(False)
