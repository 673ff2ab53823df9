"""``dcim derived run --config RUN.yaml``: the site-level derived-metrics job for a sharded site."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

__all__ = ["register"]

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
    run.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from dcim.config import open_service

    opened = open_service(args.config, "dcim derived")
    if isinstance(opened, int):
        return opened
    _, site, influx = opened
    if not 0.5 <= args.interval <= 3600:
        print("dcim derived: --interval must be 0.5..3600 s", file=sys.stderr)
        return 2
    if args.gpu_hot_c is not None and not 20 <= args.gpu_hot_c <= 120:
        print("dcim derived: --gpu-hot-c must be 20..120 °C", file=sys.stderr)
        return 2
    return asyncio.run(_loop(site, influx, args.interval, args.duration, args.gpu_hot_c))


async def _loop(site, influx, interval: float, duration: float | None, gpu_hot_c: float | None = None) -> int:
    from dcim.service import install_signal_handlers
    from derived.from_influx import refresh_from_influx
    from derived.job import DerivedMetrics
    from sinks.influx_query import InfluxQuery, QueryError
    from sinks.influx_writer import InfluxWriter

    from derived.cooling_loops import LoopThresholds

    job = DerivedMetrics(site, loop_thresholds=LoopThresholds(**({} if gpu_hot_c is None else {"gpu_hot_c": gpu_hot_c})))
    client = InfluxQuery(influx.url, influx.database, influx.token)
    writer = await InfluxWriter(influx).start()
    stop = asyncio.Event()
    install_signal_handlers(stop)
    end = None if duration is None else time.monotonic() + duration
    cycles = 0
    while not stop.is_set() and (end is None or time.monotonic() < end):
        now = time.time_ns()
        try:
            await asyncio.to_thread(refresh_from_influx, job, client, now)
            writer.write(job.compute(now))
            cycles += 1
        except QueryError as exc:  # InfluxDB down: try again next interval, nothing to lose (inputs are in InfluxDB)
            log.warning("derived metrics: %s", exc)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    await writer.close()
    log.info("derived metrics stopped after %d computation(s)", cycles)
    return 0
