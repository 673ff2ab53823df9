"""The scheduler against a real TCP server with healthy, hanging, slow and flaky devices.

The collector here is a tiny line protocol written for this test (send the
device id, read back a number); what is tested is the scheduler's timing,
deadlines, retries and concurrency bound, over real sockets.
"""
from __future__ import annotations

import asyncio
import statistics

import pytest

from collectors.base import Collector, PollError, Target
from contract.sample import Sample, now_ns
from collectors.scheduler import Job, Scheduler, phase_offset


class LineServer:
    """Answers ``<device>\\n`` with ``<n>\\n``; behaviour chosen by device-name prefix."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            name = (await reader.readline()).decode().strip()
            n = self.requests[name] = self.requests.get(name, 0) + 1
            if name.startswith("hang"):
                await asyncio.sleep(3600)
            if name.startswith("slow"):
                await asyncio.sleep(0.15)
            if name.startswith("flaky") and n % 2 == 1:
                writer.close()  # drop every first attempt
                return
            if name.startswith("garbage"):
                writer.write(b"\x00\xffnot a number\n")
            else:
                writer.write(f"{n}\n".encode())
            await writer.drain()
        finally:
            self.in_flight -= 1
            writer.close()


class LineCollector(Collector):
    protocols = ("line",)

    async def poll(self, target: Target) -> list[Sample]:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), target.timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            raise PollError("unreachable", str(exc)) from None
        try:
            writer.write(f"{target.device_id}\n".encode())
            line = await asyncio.wait_for(reader.readline(), target.timeout_s)
        except asyncio.TimeoutError:
            raise PollError("timeout", "no reply") from None
        finally:
            writer.close()
        if not line:
            raise PollError("protocol", "connection closed without a reply")
        try:
            value = float(line)
        except ValueError:
            raise PollError("protocol", f"not a number: {line[:20]!r}") from None
        return [Sample("env", dict(target.tags), {"value": value}, now_ns())]


async def _run(devices: list[str], *, interval=0.4, timeout=0.2, retries=0, duration=2.0, concurrency=None):
    server = LineServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    got: list[Sample] = []
    starts: dict[str, list[float]] = {}
    loop = asyncio.get_running_loop()

    def emit(samples):
        for s in samples:
            if s.measurement == "poll":
                starts.setdefault(s.tags["device"], []).append(loop.time())
        got.extend(samples)

    collector = LineCollector()
    jobs = [Job(Target(d, "line", "127.0.0.1", port, tags={"device": d}, timeout_s=timeout, retries=retries,
                       interval_s=interval), collector) for d in devices]
    sched = Scheduler(jobs, emit, concurrency=concurrency)
    await sched.run(duration)
    srv.close()
    return server, got, starts, sched


def _polls(got, device):
    return [s for s in got if s.measurement == "poll" and s.tags["device"] == device]


def test_hanging_device_never_delays_the_others():
    healthy = [f"ok-{i}" for i in range(8)]
    server, got, starts, sched = asyncio.run(_run(healthy + ["hang-1", "garbage-1"], interval=0.4, timeout=0.2, duration=2.05))
    for d in healthy:
        polls = _polls(got, d)
        assert len(polls) >= 4, (d, len(polls))
        assert all(p.fields["ok"] for p in polls)
        gaps = [b - a for a, b in zip(starts[d], starts[d][1:])]
        # fixed-rate ticks: the healthy devices keep their 0.4 s rhythm
        assert statistics.median(gaps) == pytest.approx(0.4, abs=0.05)
        assert max(gaps) < 0.55
    hung = _polls(got, "hang-1")
    assert hung and all(p.fields["error_kind"] == "timeout" and not p.fields["ok"] for p in hung)
    bad = _polls(got, "garbage-1")
    assert bad and all(p.fields["error_kind"] == "protocol" for p in bad)
    assert all("not a number" in p.fields["error"] for p in bad)
    assert sched.stats.by_error["timeout"] == len(hung)


def test_transient_errors_are_retried_within_the_deadline():
    server, got, starts, sched = asyncio.run(_run(["flaky-1"], interval=0.5, timeout=0.2, retries=2, duration=1.2))
    polls = _polls(got, "flaky-1")
    assert polls and all(p.fields["ok"] for p in polls)
    assert all(p.fields["attempts"] == 2 for p in polls)
    values = [s.fields["value"] for s in got if s.measurement == "env"]
    assert values and all(v % 2 == 0 for v in values)  # every second request succeeds


def test_no_retry_when_retries_is_zero():
    server, got, starts, sched = asyncio.run(_run(["flaky-1"], interval=0.5, timeout=0.2, retries=0, duration=1.2))
    polls = _polls(got, "flaky-1")
    assert polls and all(p.fields["attempts"] == 1 for p in polls)
    assert any(not p.fields["ok"] for p in polls)


def test_concurrency_bound_per_protocol_is_respected():
    devices = [f"slow-{i}" for i in range(20)]
    server, got, starts, sched = asyncio.run(_run(devices, interval=1.0, timeout=0.5, duration=1.1, concurrency={"line": 4}))
    assert server.max_in_flight <= 4
    assert sum(1 for s in got if s.measurement == "poll" and s.fields["ok"]) == 20
    assert any(s.fields.get("queue_ms", 0) > 50 for s in got if s.measurement == "poll")


def test_phases_spread_over_the_interval_and_stay_stable():
    offsets = [phase_offset(f"pdu-{i}", 10.0) for i in range(5000)]
    assert all(0 <= o < 10 for o in offsets)
    buckets = [0] * 10
    for o in offsets:
        buckets[int(o)] += 1
    assert min(buckets) > 400 and max(buckets) < 600  # roughly uniform
    assert phase_offset("pdu-7", 10.0) == offsets[7]


def test_timer_wheel_wakes_a_slot_from_one_timer_and_survives_a_cancelled_waiter():
    from collectors.scheduler import TimerWheel

    async def go():
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(0.05)
        base = (int(loop.time() / 0.05) + 3) * 0.05          # a slot boundary 0.1-0.15 s ahead
        woke: list[tuple[int, float]] = []

        async def waiter(i: int) -> None:
            await wheel.wait_until(base + 0.01 + (i % 3) * 0.01)  # all inside the slot starting at ``base``
            woke.append((i, loop.time()))
        tasks = [asyncio.create_task(waiter(i)) for i in range(200)]
        await asyncio.sleep(0)
        slots = len(wheel._slots)
        tasks[7].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return slots, woke, base
    slots, woke, base = asyncio.run(go())
    assert slots == 1                                   # 200 waiters, one timer
    assert sorted(i for i, _ in woke) == [i for i in range(200) if i != 7]
    assert all(base - 1e-6 <= t < base + 0.05 for _, t in woke)  # at the slot's start, before their own time


def test_dcgm_devices_sleep_on_the_wheel_one_timer_per_slot():
    """Batched protocols wake from the wheel: ~10 slot timers per interval for 300 devices, not 300."""
    from collectors.scheduler import BATCHED_PROTOCOLS, TimerWheel, _wake

    class Quick(LineCollector):
        async def poll(self, target):
            return [Sample("env", dict(target.tags), {"value": 1.0}, now_ns())]

    async def go(protocol: str):
        loop = asyncio.get_running_loop()
        timers = {"wheel": 0, "device": 0}
        call_at = loop.call_at

        def counting(when, callback, *args, **kw):
            if getattr(callback, "__func__", None) is TimerWheel._fire:
                timers["wheel"] += 1
            elif callback is _wake:
                timers["device"] += 1
            return call_at(when, callback, *args, **kw)
        loop.call_at = counting
        polls = []
        jobs = [Job(Target(f"n{i}", protocol, "127.0.0.1", 1, tags={"device": f"n{i}"}, interval_s=1.0), Quick())
                for i in range(300)]
        sched = Scheduler(jobs, polls.extend, tick_s=0.1)
        await sched.run(1.2)
        return timers, sum(1 for s in polls if s.measurement == "poll")
    assert "dcgm" in BATCHED_PROTOCOLS and "snmp" not in BATCHED_PROTOCOLS
    (dcgm, dcgm_polls), (line, line_polls) = asyncio.run(go("dcgm")), asyncio.run(go("line"))
    assert dcgm_polls >= 300 and line_polls >= 300
    assert dcgm["device"] == 0 and 8 <= dcgm["wheel"] <= 25, dcgm  # this interval's slots and the next one's
    assert line["wheel"] == 0 and line["device"] >= 300, line


def test_halt_ends_every_loop_at_once_sleepers_woken_polls_in_flight_cancelled():
    """What SIGTERM does first, in the signal's own turn of the loop: no poll starts after ``halt``,
    a sleeping device's loop is woken to end by itself, a poll in flight (a hung device) is
    cancelled; nothing is left for :meth:`Scheduler.stop` but to wait."""
    calls: list[str] = []
    in_flight: set[str] = set()

    class Counting(LineCollector):
        async def poll(self, target: Target) -> list[Sample]:
            calls.append(target.device_id)
            in_flight.add(target.device_id)
            try:
                return await super().poll(target)
            finally:
                in_flight.discard(target.device_id)

    async def main() -> tuple[int, int, dict[str, bool], set[str], bool]:
        server = LineServer()
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        collector = Counting()
        jobs = [Job(Target(d, "line", "127.0.0.1", port, tags={"device": d}, timeout_s=30.0 if d == "hang-1" else 0.2,
                           retries=0, interval_s=0.4), collector) for d in ("ok-1", "ok-2", "ok-3", "ok-4", "hang-1")]
        sched = Scheduler(jobs, lambda samples: None)
        sched.start()
        await asyncio.sleep(1.0)
        polling_at_halt = set(in_flight)
        sched.halt()
        before = len(calls)
        done, _ = await asyncio.wait(sched._tasks, timeout=2.0)
        cancelled = {t.get_name().removeprefix("poll:"): t.cancelled() for t in done}
        await asyncio.sleep(0.5)  # more than an interval: a loop still alive would poll again
        all_done = len(done) == len(jobs)
        assert await sched.stop() == []
        srv.close()
        return before, len(calls), cancelled, polling_at_halt, all_done

    before, after, cancelled, polling_at_halt, all_done = asyncio.run(main())
    assert before >= 8  # it was polling: ≈2.5 polls per ok device
    assert after == before  # no poll started after halt
    assert all_done  # every loop ended, the hung one too, long before its 30 s deadline
    assert "hang-1" in polling_at_halt
    assert {d for d, c in cancelled.items() if c} == polling_at_halt  # only polls in flight were cancelled


def test_stop_cancels_again_a_poll_that_swallowed_the_first_cancellation():
    """Python 3.11's wait_for (inside gufo-snmp) can swallow a cancellation that lands as its reply
    comes; the stop sends another rather than leaving the loop behind."""
    swallowed: list[str] = []

    class Swallowing(Collector):
        async def poll(self, target: Target) -> list[Sample]:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                swallowed.append(target.device_id)
                asyncio.current_task().uncancel()
                await asyncio.sleep(30)  # on to "the next request", as the swallowing library does
            return []

    async def main() -> list[str]:
        jobs = [Job(Target("snmp-1", "line", "127.0.0.1", 1, tags={"device": "snmp-1"}, timeout_s=60.0, retries=0,
                           interval_s=100.0), Swallowing())]
        sched = Scheduler(jobs, lambda samples: None, spread=False)
        sched.start()
        await asyncio.sleep(0.1)  # the poll is in flight
        return await sched.stop(timeout=2.0)

    assert asyncio.run(main()) == []
    assert swallowed == ["snmp-1"]
