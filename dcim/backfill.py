"""History for the demo: the twin's model stepped through the past and polled by the real collectors.

A demo that starts with an empty database shows empty daily energy, daily PUE
and renewable-share panels and a PUE report of two minutes.  ``backfill``
moves the twin's clock through the last N days in 15-min model steps, each
integrating the model's power into the energy counters; at each poll step the
endpoints serve the model's values and every polled device is polled once
through its real collector.  The samples, stamped with the step's instant,
go through the same screen and to the same consumers as live polls (the
InfluxDB writer, the derived-metrics job, the rule engine), and after each
round the derived job computes and the rule engine ticks at that instant.
So the history is what the collectors decode and the alerts in it are what the
rule engine raises on faults injected into the model (:func:`history_faults`).

Polling is what costs (≈0.1 s of CPU for a round of the example site's 59
devices here), so the whole site is polled every ``step_s`` (6 h by default),
the energy meters every hour, and everything at each 15-min model step
around a fault.
The live part then continues from the last step: the counters carry on from
where the history left them.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from collectors.scheduler import finish_poll, poll_once
from inventory.model import Site

__all__ = ["HistoryFault", "BackfillResult", "history_faults", "backfill", "parse_step", "first_device"]

log = logging.getLogger("dcim.backfill")
_NS = 1_000_000_000
#: the writer is allowed this many queued points before the backfill waits for InfluxDB
MAX_PENDING_POINTS = 50_000
#: the model's own step in the past: energy counters integrate at this resolution
SUBSTEP_S = 900.0
#: energy meters are polled this often in the past (cheap Modbus reads), so the PUE report finds
#: hourly readings (its coverage is per hour); the rest of the site every ``step_s``
METER_STEP_S = 3600.0


@dataclass(frozen=True)
class HistoryFault:
    """A fault in the model over ``[start_s, end_s)`` (epoch seconds)."""
    fault: str
    device: str
    start_s: float
    end_s: float


@dataclass
class BackfillResult:
    start_s: float
    end_s: float
    step_s: float
    model_steps: int = 0
    rounds: int = 0
    meter_rounds: int = 0
    polls: int = 0
    failed_polls: int = 0
    samples: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0  # this process: the twin's endpoints and the collectors polling them
    stopped: bool = False  # stopped before reaching now

    def summary(self) -> str:
        days = (self.end_s - self.start_s) / 86400.0
        return (f"backfill: {days:.1f} days of the twin's model ({self.model_steps:,} steps), the site polled at "
                f"{self.rounds:,} instants and the meters at {self.meter_rounds:,} more ({self.polls:,} polls, "
                f"{self.samples:,} samples) in {self.seconds:.1f} s ({self.cpu_s:.1f} s CPU)"
                + ("; stopped before reaching now" if self.stopped else ""))


def parse_step(text: str) -> float:
    """``15m``, ``900s``, ``1h`` or plain seconds -> seconds (the ``--backfill-step`` flag)."""
    t = text.strip()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ValueError(f"step {text!r}: expected e.g. 900s, 15m, 1h") from None
    if not math.isfinite(value) or value < 60.0:
        raise ValueError(f"step {text!r}: at least 60 s (a history step is a poll of every device)")
    return value


def first_device(site: Site, kind: str, n: int = 0) -> str | None:
    """The site's ``n``-th polled device of ``kind`` (the last one if it has fewer), or None:
    where the demo's history and live timeline put their faults."""
    found = [d.id for d in site.polled_devices() if d.kind == kind]
    return found[min(n, len(found) - 1)] if found else None


def history_faults(site: Site, start_s: float, end_s: float, step_s: float = SUBSTEP_S) -> list[HistoryFault]:
    """A few physical faults spread over the history, each lasting a few model steps: the backfill
    polls at every step while one is active, so rules with a ``for_s`` see it on several samples.
    Endpoint faults (no answer, slow, garbage) are left to the live part: in history they would
    only make the backfill wait on timeouts."""
    span = end_s - start_s
    plan = [  # (fraction of the span, length in model steps, fault, device kind)
        (0.15, 3, "chiller_trip", first_device(site, "chiller")),
        (0.35, 2, "ups_on_battery", first_device(site, "ups")),
        (0.45, 3, "cdu_pump_fail", first_device(site, "cdu", 1)),  # a loop starved: its GPUs throttle
        (0.55, 3, "cdu_leak", first_device(site, "cdu")),
        (0.70, 2, "xid_storm", first_device(site, "gpu_node")),
        (0.85, 2, "pdu_breaker_trip", first_device(site, "pdu")),
    ]
    faults = []
    for frac, steps, fault, device in plan:
        if device is None:
            continue
        at = start_s + math.floor(frac * span / step_s) * step_s
        faults.append(HistoryFault(fault, device, at, at + steps * step_s))
    return faults


async def _call(fn, *args) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def backfill(twin, service, start_s: float, step_s: float, *, substep_s: float = SUBSTEP_S,
                   meter_step_s: float = METER_STEP_S, faults: Iterable[HistoryFault] = (),
                   after_step: Iterable[Callable[[int], object]] = (), wall_clock: Callable[[], float] = time.time,
                   stop: asyncio.Event | None = None) -> BackfillResult:
    """Step ``twin`` from ``start_s`` to now and poll ``service``'s devices every ``step_s``.

    The model steps every ``substep_s`` (its energy counters integrate at that resolution
    whatever the poll step); the devices are polled every ``step_s``, and at every sub-step
    while a history fault is active and one after it, so short faults are seen and seen to
    clear.  Samples go to the service's consumers (its writer first); each ``after_step(t_ns)``
    (the derived job, the rule engine's tick; plain or coroutine functions) runs after each
    round of polls.  The last round is at the wall clock's now, so the live part continues
    without a gap in the counters.  The twin's clock is handed back to ``wall_clock`` at the end,
    or when ``stop`` is set (Ctrl-C): what was written so far stays, ``result.stopped`` says so.
    """
    began, began_cpu = time.monotonic(), time.process_time()
    faults = list(faults)
    after_step = list(after_step)
    substep_s = min(substep_s, step_s)
    every = max(1, round(step_s / substep_s))
    meters_every = max(1, round(min(meter_step_s, step_s) / substep_s))
    kinds = {d.id: d.kind for d in service.site.all_devices()}
    meter_jobs = [j for j in service.scheduler.jobs if kinds.get(j.target.device_id) == "meter"]
    result = BackfillResult(start_s=start_s, end_s=start_s, step_s=every * substep_s)
    now: list[float] = [start_s]
    twin.clock = lambda: now[0]  # the twin's refresh loop steps to this same instant meanwhile
    writer = service.writer
    k = 0
    was_faulty = False
    try:
        while True:
            if stop is not None and stop.is_set():
                result.stopped = True
                break
            t = start_s + k * substep_s
            last = t >= wall_clock()
            if last:
                t = wall_clock()
            now[0] = t
            faulty = _apply(twin, faults, t)
            twin.step(t)
            result.model_steps += 1
            if last or k % every == 0 or faulty or was_faulty:
                await _poll_round(service, service.scheduler.jobs, int(t * _NS), result)
                for fn in after_step:
                    await _call(fn, int(t * _NS))
                result.rounds += 1
            elif k % meters_every == 0 and meter_jobs:
                await _poll_round(service, meter_jobs, int(t * _NS), result)
                result.meter_rounds += 1
            if writer is not None and writer.pending_points > MAX_PENDING_POINTS:
                await writer.flush()
            was_faulty = faulty
            result.end_s = t
            if last:
                break
            k += 1
    finally:
        for f in faults:
            twin.clear(f.fault, f.device)
        twin.clock = wall_clock
    result.seconds = time.monotonic() - began
    result.cpu_s = time.process_time() - began_cpu
    log.info("%s", result.summary())
    return result


def _apply(twin, faults: list[HistoryFault], t: float) -> bool:
    """Inject the faults whose window holds ``t``, clear the others; whether any is active."""
    active = False
    for f in faults:
        if f.start_s <= t < f.end_s:
            active = True
            if not twin.model.has(f.fault, f.device):
                twin.inject(f.fault, f.device)
        elif twin.model.has(f.fault, f.device):
            twin.clear(f.fault, f.device)
    return active


async def _poll_round(service, jobs: list, t_ns: int, result: BackfillResult) -> None:
    """Each job's device polled once, concurrently, its samples stamped with the model's instant."""
    outcomes = await asyncio.gather(*(poll_once(j.collector, j.target, service.scheduler.deadline_for(j.target))
                                      for j in jobs))
    for job, outcome in zip(jobs, outcomes):
        for s in outcome.samples:
            s.time_ns = t_ns  # the instant the model was at, not when the reply came
        samples, _ = finish_poll(job.target, outcome, t_ns)
        result.polls += 1
        result.failed_polls += not outcome.ok
        result.samples += len(samples)
        service.emit(samples)
