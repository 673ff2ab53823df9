"""``dcim storage init|rollup|backfill|status``: retention tiers and rollups on the configured InfluxDB.

All read the ``dcim run`` config (``--config``): its ``influxdb:`` section says
where, its ``storage:`` section what (docs/storage.md).  Exit codes: 0 done;
1 bad config (``file:line`` lines); 2 a storage error (message says what to do);
3 InfluxDB unreachable or a query failed.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

__all__ = ["register"]


def _open(args: argparse.Namespace):
    from dcim.config import open_service
    from sinks.influx_query import InfluxQuery

    opened = open_service(args.config, "dcim storage", with_site=False)
    if isinstance(opened, int):
        return opened
    cfg, _, influx = opened
    return cfg, influx, InfluxQuery(influx.url, influx.database, influx.token)


def _duration(text: str) -> int:
    """An argparse type: ``30d`` -> seconds, or a usage error naming the option's rule."""
    from storage.tiers import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _when(text: str, option: str) -> int:
    """``YYYY-MM``, ``YYYY-MM-DD`` or an ISO 8601 time (UTC unless it says otherwise) -> epoch ns."""
    from reports.inputs import parse_date
    from reports.pue import ReportError

    try:
        return int(parse_date(text, option)) * 10**9
    except ReportError as exc:
        raise SystemExit(f"dcim storage: {exc}") from None


def _run(fn):
    def wrapper(args: argparse.Namespace) -> int:
        from sinks.influx_query import QueryError
        from sinks.influx_transport import WriteFailed
        from storage.admin import StorageError

        opened = _open(args)
        if isinstance(opened, int):
            return opened
        try:
            return fn(args, *opened)
        except StorageError as exc:
            print(f"dcim storage: {exc}", file=sys.stderr)
            return 2
        except (QueryError, WriteFailed) as exc:
            print(f"dcim storage: {exc}", file=sys.stderr)
            return 3
    return wrapper


@_run
def _cmd_init(args, cfg, influx, client) -> int:
    from storage.admin import init

    res = init(client, cfg.storage, dry_run=args.dry_run, token=influx.token)
    verb = "would run" if args.dry_run else "ran"
    for stmt in res.statements:
        print(f"{stmt};")
    how = "continuous queries" if res.use_cq else "the rollup job (`dcim storage rollup`)"
    print(f"# {verb} {len(res.statements)} statement(s); rollups by {how} for {res.measurements} measurement(s)",
          file=sys.stderr)
    if not args.dry_run:
        print(f"# tier table written ({res.meta_points} tiers) for the dashboards' $tier variable", file=sys.stderr)
        if res.measurements == 0:
            print("# no raw measurements yet: run init again once the collectors have written", file=sys.stderr)
    return 0


@_run
def _cmd_backfill(args, cfg, influx, client) -> int:
    from storage.admin import backfill

    start, end = _when(args.start, "--from"), _when(args.end, "--to")
    if end <= start:
        print("dcim storage: --to must be after --from (the end is exclusive)", file=sys.stderr)
        return 2
    tiers = [cfg.storage.tier(args.tier)] if args.tier else None
    written = backfill(client, cfg.storage, start, end, tiers=tiers, chunk_ns=args.chunk * 10**9,
                       progress=(lambda m: print(f"# {m}", file=sys.stderr)) if args.verbose_progress else None)
    for name, n in written.items():
        print(f"{name}: {n} points")
    return 0


@_run
def _cmd_rollup(args, cfg, influx, client) -> int:
    from storage.job import RollupJob

    state_dir = Path(args.state_dir or Path(args.config).parent / "storage-state")

    async def main() -> None:
        job = RollupJob(client, cfg.storage, influx, state_dir, lag_s=args.lag,
                        since_ns=_when(args.since, "--since") if args.since else None,
                        crash_after_points=args.crash_after_points)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if args.duration:
            loop.call_later(args.duration, stop.set)
        try:
            if args.once:
                done = await job.cycle()
                for name, n in done.items():
                    print(f"{name}: {n} points")
            else:
                await job.run(stop, args.every)
        finally:
            await job.close()

    asyncio.run(main())
    return 0


@_run
def _cmd_status(args, cfg, influx, client) -> int:
    from storage.admin import read_state, uses_cq
    from storage.plan import plan_init
    from storage.tiers import disk_per_day

    state = read_state(client, cfg.storage)
    st = cfg.storage
    print(f"raw  {st.raw.rp:<12} {st.raw.retention:>6}  dashboards up to {st.raw.max_span}")
    for t in st.tiers:
        have = "present" if t.rp in state.policies else "MISSING"
        print(f"{t.name:<4} {t.rp:<12} {t.retention:>6}  step {t.step}, dashboards up to {t.max_span}  [{have}]")
    cq = uses_cq(st, client.url, state) if state.database_exists else False
    todo = plan_init(client.database, st, state, use_cq=cq)
    print(f"{len(todo)} change(s) pending; run `dcim storage init`" if todo else "tiers up to date")
    est = disk_per_day(args.fields_per_s, args.bytes_per_point, st)
    print(f"at {args.fields_per_s:,.0f} fields/s and {args.bytes_per_point} B/point: " + ", ".join(
        f"{k} {v / 1e9:,.1f} GB" for k, v in est.items()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("storage", help="retention tiers and rollups: init, rollup job, backfill, status")
    ssub = sp.add_subparsers(dest="storage_cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", required=True, type=Path, help="the dcim run config (influxdb: and storage:)")

    p = ssub.add_parser("init", help="create/adjust retention policies and continuous queries (idempotent)")
    common(p)
    p.add_argument("--dry-run", action="store_true", help="print the statements, change nothing")
    p.set_defaults(func=_cmd_init)

    p = ssub.add_parser("rollup", help="the rollup job for stores without continuous queries (until SIGTERM)")
    common(p)
    p.add_argument("--state-dir", type=Path, help="checkpoint and spool (default: storage-state beside the config)")
    p.add_argument("--once", action="store_true", help="one cycle, then exit")
    p.add_argument("--every", type=float, help="seconds between cycles (default: the finest tier's step)")
    p.add_argument("--lag", type=float, default=10.0, help="seconds a bucket waits for late raw points (default 10)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--since", help="where a tier without a checkpoint starts (default: the last few buckets; "
                                   "older data: dcim storage backfill)")
    p.add_argument("--crash-after-points", type=int, help=argparse.SUPPRESS)  # crash-recovery tests
    p.set_defaults(func=_cmd_rollup)

    p = ssub.add_parser("backfill", help="fill the tiers from raw data already written")
    common(p)
    p.add_argument("--from", dest="start", required=True, help="start, inclusive (YYYY-MM[-DD] or ISO time, UTC)")
    p.add_argument("--to", dest="end", required=True, help="end, exclusive")
    p.add_argument("--tier", help="only this tier (default: all)")
    p.add_argument("--chunk", default=86400, type=_duration, help="time per server-side statement (default 1d; a sparse or small "
                                                 "database fills faster with e.g. 30d)")
    p.add_argument("--progress", dest="verbose_progress", action="store_true", help="progress on stderr")
    p.set_defaults(func=_cmd_backfill)

    p = ssub.add_parser("status", help="tiers configured vs present, pending changes, disk estimate")
    common(p)
    p.add_argument("--fields-per-s", type=float, default=300_000.0, help="for the disk estimate (default 300000)")
    p.add_argument("--bytes-per-point", type=float, default=6.0,
                   help="raw bytes per point for the disk estimate (default 6.0, measured by bench/storage_tiers.py)")
    p.set_defaults(func=_cmd_status)
