"""``dcim derived run --config RUN.yaml``: the site-level derived-metrics job for a sharded site."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["register", "next_due"]

log = logging.getLogger("dcim.derived")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("derived", help="derived metrics (facility/IT power, PUE, capacity, cooling loops) for a sharded site")
    dsub = p.add_subparsers(dest="derived_command", metavar="ACTION")
    dsub.required = True
    run = dsub.add_parser("run", help="read the latest readings from InfluxDB every interval, write site_power/pue/capacity")
    run.add_argument("--config", required=True, type=Path, help="the collectors' service config (site + influxdb)")
    run.add_argument("--interval", type=float, default=10.0, help="seconds between computations (default 10)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.add_argument("--gpu-hot-c", type=float, default=None,
                     help="GPU temperature counted as hot on a cooling loop (default 85; docs/conventions.md)")
    from dcim.alert_wiring import add_alert_arguments

    add_alert_arguments(run, "the derived samples (the cooling-loop and headroom rules) and publish like a "
                             "shard's engine, so its roots suppress the shards' alerts")
    run.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from dcim.alert_wiring import check_alert_arguments, claim_state_dir, load_alert_rules
    from dcim.config import open_service

    if (problem := check_alert_arguments(args)) is not None:
        print(f"dcim derived: {problem}", file=sys.stderr)
        return 2
    rules = load_alert_rules(args)
    if isinstance(rules, int):
        return rules
    if (problem := claim_state_dir(args)) is not None:
        print(f"dcim derived: {problem}", file=sys.stderr)
        return 2
    opened = open_service(args.config, "dcim derived")
    if isinstance(opened, int):
        return opened
    cfg, site, influx = opened
    if not 0.5 <= args.interval <= 3600:
        print("dcim derived: --interval must be 0.5..3600 s", file=sys.stderr)
        return 2
    if args.gpu_hot_c is not None and not 20 <= args.gpu_hot_c <= 120:
        print("dcim derived: --gpu-hot-c must be 20..120 °C", file=sys.stderr)
        return 2
    runtime = None
    if args.alerts:
        from dcim.alert_wiring import build_alert_runtime

        # every device's derived roots are this engine's; the shards' roots come back from the broker
        runtime = lambda writer: build_alert_runtime(args, site, cfg, writer, part="derived", share_roots=True,  # noqa: E731
                                                     local_devices=None, evaluates_derived=True, rules=rules)
    from dcim.config import own_spool
    from dcim.service import exit_after_stop
    from sinks.spool import SpoolInUse

    async def go() -> None:
        # exit from inside the loop: asyncio.run would join a read-back or write still waiting
        # on a stalled InfluxDB (exit_after_stop)
        exit_after_stop(await _loop(site, own_spool(influx, "derived"), args.interval, args.duration,
                                    args.gpu_hot_c, runtime))

    try:
        asyncio.run(go())
    except SpoolInUse as exc:
        print(f"dcim derived: {exc}", file=sys.stderr)
        return 2
    return 0  # not reached: go() ends the process


async def _loop(site, influx, interval: float, duration: float | None, gpu_hot_c: float | None = None,
                make_runtime=None) -> int:
    """Compute every ``interval``; with ``make_runtime(writer)`` the rule engine gets each batch and
    ticks every second (``for_s``, the other engines' roots, Alertmanager resends)."""
    from dcim.service import PARTS_STOP_S, install_signal_handlers
    from derived.from_influx import LATE_S, refresh_from_influx
    from derived.job import DerivedMetrics
    from sinks.influx_query import InfluxQuery, QueryError
    from sinks.influx_writer import InfluxWriter

    from derived.cooling_loops import LoopThresholds

    job = DerivedMetrics(site, loop_thresholds=LoopThresholds(**({} if gpu_hot_c is None else {"gpu_hot_c": gpu_hot_c})))
    client = InfluxQuery(influx.url, influx.database, influx.token)
    writer = await InfluxWriter(influx).start()
    runtime = make_runtime(writer) if make_runtime is not None else None
    if runtime is not None:
        await runtime.start()
    stop = asyncio.Event()
    halted = threading.Event()  # the refresh thread's view of the stop
    signals = install_signal_handlers(stop, on_signal=[halted.set])
    end = None if duration is None else time.monotonic() + duration
    cycles = 0
    since: int | None = None  # the first refresh reads the whole staleness window
    next_at = time.monotonic()
    while not stop.is_set() and (end is None or time.monotonic() < end):
        now = time.time_ns()
        next_at = next_due(next_at, interval, time.monotonic())
        try:
            t_read = time.monotonic()
            read = await _while_ticking(_in_daemon_thread(refresh_from_influx, job, client, now, since, halted),
                                        stop, runtime)
            if read is None or halted.is_set():  # stopped mid-read: nothing half-read is computed or written
                break
            since = now - int(LATE_S * 1e9)
            samples = job.compute_accounted(now, read_samples=read, read_s=round(time.monotonic() - t_read, 3))
            writer.write(samples)
            if runtime is not None:
                runtime.consume(samples)
            cycles += 1
        except QueryError as exc:  # InfluxDB down: try again next interval, nothing to lose (inputs are in InfluxDB)
            log.warning("derived metrics: %s", exc)
        while not stop.is_set() and time.monotonic() < next_at:
            if runtime is not None:
                await runtime.tick()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(1.0, next_at - time.monotonic())))
            except asyncio.TimeoutError:
                pass
    # SIGTERM to exit within 10 s, counted from when the signal came, as for ``dcim run``: the
    # rule engine (its alert snapshot, MQTT outbox) first, since its alerts go to the writer, then
    # the writer flushes for what is left and spools the rest (a stalled InfluxDB once held this
    # stop 11.8 s: the writer's close retried it for its own 10 s)
    end = signals.deadline()
    if runtime is not None:
        await runtime.stop(timeout=max(0.5, min(PARTS_STOP_S, end - time.monotonic() - 2.0)))
    await writer.close(max(0.5, end - time.monotonic() - 1.0))
    signals.restore()
    log.info("derived metrics stopped after %d computation(s), %d spooled batch(es) pending", cycles,
             len(writer.spool) if writer.spool is not None else 0)
    return 0


def next_due(due: float, interval: float, started: float) -> float:
    """When the computation after one due at ``due`` and started at ``started`` is due.

    A fixed cadence: an interval after this one was due, not an interval after it ended (a
    read-back of 10 s made every period 70 s at a 60 s interval, so one interval in seven had
    no computation).  After one that started more than an interval late, the cadence starts
    again from ``started``: missed computations are not run back to back."""
    nxt = due + interval
    return nxt if nxt > started else started + interval


def _in_daemon_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future:
    """``fn(*args)`` in a daemon thread, its result as a future of the running loop.

    Why not ``asyncio.to_thread``: a read-back on a loaded InfluxDB took over a minute, one
    per-hall query more than 10 s; SIGTERM must not wait for it, and ``asyncio.run`` joins
    the default executor's threads before it returns.  A daemon thread is left to the exit."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not fut.done():
            fut.set_result(value) if ok else fut.set_exception(value)

    def work() -> None:
        try:
            result: Any = fn(*args)
            ok = True
        except BaseException as exc:  # handed to the awaiting coroutine
            result, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, result)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    threading.Thread(target=work, name="derived-read-back", daemon=True).start()
    return fut


async def _while_ticking(fut: asyncio.Future, stop: asyncio.Event, runtime: Any) -> Any:
    """Wait for ``fut`` with the rule engine ticking every second (``for_s``, resends: a long read
    must not hold them back); None as soon as ``stop`` is set."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not fut.done():
            if stop.is_set():
                return None
            if runtime is not None:
                await runtime.tick()
            await asyncio.wait({fut, stopped}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if fut.done():
                fut.exception()  # looked at, whatever it was: the stop wins
            return None
        return fut.result()
    finally:
        stopped.cancel()
