"""The ``dcim`` command.

Sub-commands defined here: ``inventory check``, ``probe``, ``run``.  Other
areas add theirs through a ``register(subparsers)`` function in their own
package (alerts, dashboards, reports, simulator, demo), listed in
:data:`EXTENSIONS`; a missing optional area is simply not offered.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections import Counter
from pathlib import Path

__all__ = ["main", "build_parser"]

EXTENSIONS = (
    "dcim.demo",
    "dcim.commands.alerts",
    "dcim.commands.dashboards",
    "dcim.commands.report",
    "dcim.commands.storage",
    "dcim.commands.derived",
    "dcim.commands.agent",
    "dcim.commands.traps",
    "dcim.commands.simulate",
)


def _fail(message: str, code: int = 2) -> int:
    print(f"dcim: {message}", file=sys.stderr)
    return code


# -- inventory check ----------------------------------------------------------------
def _preflight(site, file, *, secrets: bool) -> None:
    """Raise InventoryError (file:line) for what ``dcim run`` would refuse or fail on every poll:
    secrets it could not read on this host, profiles that do not exist for the device's protocol."""
    from collectors.preflight import profile_problem
    from inventory import InventoryError
    from inventory.errors import InventoryIssue
    from inventory.loader import format_path, line_for, load_model, read_text
    from inventory.model import Site
    from inventory.preflight import secret_problems

    problems = secret_problems(site) if secrets else []
    seen: dict[tuple[str, str], str | None] = {}
    for dev in site.polled_devices():
        key = (dev.protocol, dev.profile)
        if key not in seen:
            seen[key] = profile_problem(*key)
        if seen[key]:
            problems.append((site.device_path(dev.id) + ("profile",), seen[key]))
    if problems:  # only the failing path pays for the line table
        _, lines = load_model(read_text(file), str(file), Site)
        raise InventoryError([InventoryIssue(str(file), line_for(lines, path), format_path(path), msg)
                              for path, msg in problems])


def _warnings(site, file) -> list[str]:
    """``file:line: field: message`` for what check warns about without refusing (cooling loops);
    only a site with warnings pays for the line table."""
    from inventory.errors import InventoryIssue
    from inventory.loader import format_path, line_for, load_model, read_text
    from inventory.loops import loop_warnings
    from inventory.model import Site

    found = loop_warnings(site)
    if not found:
        return []
    _, lines = load_model(read_text(file), str(file), Site)
    return [str(InventoryIssue(str(file), line_for(lines, path), format_path(path), msg)) for path, msg in found]


def cmd_inventory_check(args: argparse.Namespace) -> int:
    from inventory import InventoryError, load_site
    from inventory.topology import PowerGraph

    try:
        site = load_site(args.file)
        _preflight(site, args.file, secrets=not args.no_secrets)
    except InventoryError as exc:
        exc.print_issues()
        print(f"{args.file}: {len(exc.issues)} problem(s); nothing was started", file=sys.stderr)
        return 1
    graph = PowerGraph(site)
    devices = site.all_devices()
    kinds = Counter(d.kind for d in devices)
    protocols = Counter(d.protocol for d in devices if d.protocol != "none")
    orphans = graph.orphans()
    warnings = _warnings(site, args.file)
    summary = {
        "file": str(args.file),
        "site": site.site.id,
        "halls": len(site.halls),
        "rows": sum(len(h.rows) for h in site.halls),
        "racks": len(site.racks()),
        "devices": len(devices),
        "by_kind": dict(sorted(kinds.items())),
        "polled_by_protocol": dict(sorted(protocols.items())),
        "power_chain_depth": graph.depth,
        "orphans": [d.id for d in orphans],
        "rack_capacity_kw": round(sum(k.rated_kw or 0 for _, _, k in site.racks()), 1),
        "warnings": warnings,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.file}: OK — site {summary['site']}: {summary['halls']} hall(s), {summary['rows']} row(s), "
              f"{summary['racks']} rack(s), {summary['devices']} device(s)")
        print("  by kind: " + ", ".join(f"{k} {v}" for k, v in summary["by_kind"].items()))
        print("  polled:  " + (", ".join(f"{k} {v}" for k, v in summary["polled_by_protocol"].items()) or "none"))
        print(f"  power chain depth: {graph.depth} (longest feed chain, utility to load)")
        print(f"  rack capacity: {summary['rack_capacity_kw']} kW")
        if orphans:
            print(f"  warning: {len(orphans)} orphan(s) with no feed: " + ", ".join(d.id for d in orphans[:20])
                  + (" …" if len(orphans) > 20 else ""))
        else:
            print("  orphans: none")
        for line in warnings:
            print(f"  warning: {line}")
    return 0


# -- probe ----------------------------------------------------------------------------
def cmd_probe(args: argparse.Namespace) -> int:
    from collectors.base import PollError
    from collectors.registry import collector_class
    from collectors.url import target_from_url
    from inventory.secrets import SecretError, SecretRef

    try:
        target = target_from_url(args.url, args.profile)
    except (ValueError, ImportError) as exc:
        return _fail(str(exc))
    target.timeout_s = args.timeout
    target.retries = args.retries
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            return _fail(f"--option wants KEY=VALUE; got {item!r}")
        target.options[key] = value
    secret_envs = list(args.secret_env or [])
    for flag, name in (("auth_key", args.auth_key_env), ("priv_key", args.priv_key_env),
                       ("password", args.password_env), ("community", args.community_env)):
        if name:
            secret_envs.append(f"{flag}={name}")
    for item in secret_envs:
        key, sep, env = item.partition("=")
        if not sep:
            return _fail(f"--secret-env wants NAME=ENVVAR; got {item!r}")
        try:
            target.secrets[key] = SecretRef(env=env).resolve()
        except SecretError as exc:
            return _fail(str(exc))
    for key in ("snmp_version", "user", "auth_protocol", "priv_protocol", "username", "engine"):
        value = getattr(args, key, None)
        if value:
            target.options["version" if key == "snmp_version" else key] = value
    if args.insecure:
        target.options["tls_verify"] = False
    if args.ca_bundle:
        target.options["ca_bundle"] = args.ca_bundle

    collector = collector_class(target.protocol)()

    gap_text: list[str] = []

    async def go():
        try:
            samples = await asyncio.wait_for(collector.poll(target), timeout=args.timeout * (args.retries + 1) + 5)
            if target.protocol == "snmp" and args.profile == "auto" and not args.no_gaps:
                try:    # what the device has that the profile does not read: never fails the probe
                    gap_text.append(await collector.gaps(target, args.gap_limit, args.gap_seconds))
                except Exception as exc:  # noqa: BLE001
                    gap_text.append(f"vendor subtree not compared: {type(exc).__name__}: {exc}")
            return samples
        finally:
            await collector.close()

    def explain() -> None:
        """How ``--profile auto`` chose (SNMP: sysObjectID prefix, the column probed), on stderr."""
        detection = getattr(collector, "detections", {}).get(target.device_id)
        if detection is not None:
            for line in detection.explain().splitlines():
                print(f"dcim: {target.address()}: {line}", file=sys.stderr)

    try:
        samples = asyncio.run(go())
    except PollError as exc:
        explain()
        for s in exc.partial:
            print(json.dumps(s.to_json(), sort_keys=True))
        return _fail(f"{target.address()}: {exc.kind}: {exc.message}", 1)
    except asyncio.TimeoutError:
        return _fail(f"{target.address()}: timeout: no reply", 1)
    explain()
    for text in gap_text:
        for line in text.splitlines():
            print(f"dcim: {target.address()}: {line}", file=sys.stderr)
    from collectors.plausibility import screen

    for problem in screen(samples):  # the same screen the service applies; flagged on stderr
        print(f"dcim: {target.address()}: {problem} (dropped)", file=sys.stderr)
    for s in samples:
        print(json.dumps(s.to_json(), sort_keys=True))
    return 0


# -- run ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from dcim.gc_policy import gc_paused_for_startup

    with gc_paused_for_startup():  # until polling starts (run_until_stopped)
        return _run_service(args)


def _run_service(args: argparse.Namespace) -> int:
    from dcim.config import open_service, parse_shard
    from dcim.service import CollectionService, exit_after_stop, run_until_stopped

    from dcim.alert_wiring import check_alert_arguments

    if (problem := check_alert_arguments(args)) is not None:
        return _fail(problem)
    from dcim.alert_wiring import claim_state_dir, load_alert_rules

    rules = load_alert_rules(args)
    if isinstance(rules, int):
        return rules
    if (problem := claim_state_dir(args)) is not None:
        return _fail(problem)
    # a shard keeps its share of the site; derived metrics in the same process need all of it
    opened = open_service(args.config, "dcim", shard_view=None if args.derived else (args.shard or ""))
    if isinstance(opened, int):
        return opened
    cfg, site, influx = opened
    try:
        shard = parse_shard(args.shard or cfg.shard)
    except ValueError as exc:
        return _fail(str(exc))
    from dcim.config import own_spool

    influx = own_spool(influx, f"shard-{shard[0]}" if shard[1] > 1 else None)
    logging.getLogger().setLevel(cfg.log_level.upper())

    traps = None
    if cfg.traps is not None:
        from inventory.secrets import SecretError

        try:
            traps = cfg.traps.to_settings()
        except SecretError as exc:
            return _fail(f"traps: {exc}")

    async def go() -> None:
        service = CollectionService(site, influx, shard=shard, concurrency=cfg.concurrency, traps=traps)
        periodic = _attach_extras(args, site, service, cfg, rules)
        await run_until_stopped(service, args.duration, starts=periodic.starts, ticks=periodic.ticks,
                                stops=periodic.stops)
        st = service.writer.stats if service.writer else None
        logging.getLogger("dcim").info(
            "stopped: %d polls (%d failed), %d points written, %d spooled batches pending",
            service.scheduler.stats.polls, service.scheduler.stats.failed,
            st.points_written if st else 0, len(service.writer.spool) if service.writer and service.writer.spool else 0)
        exit_after_stop(0)

    from collectors.snmp.traps.listener import TrapListenError
    from sinks.spool import SpoolInUse

    try:
        asyncio.run(go())
    except (TrapListenError, SpoolInUse) as exc:
        return _fail(str(exc))
    return 0


class _Periodic:
    def __init__(self) -> None:
        self.starts: list = []
        self.ticks: list = []
        self.stops: list = []


def _attach_extras(args: argparse.Namespace, site, service, cfg, rules) -> _Periodic:
    """The rule engine (``--alerts``: ``rules``, loaded) and in-process derived metrics (``--derived``)
    beside collection.  The engine is built once polling has started (:class:`DeferredRuntime`)."""
    p = _Periodic()
    runtime = None
    if args.alerts:
        from dcim.alert_wiring import DeferredRuntime, build_alert_runtime
        from dcim.service import select_shard

        def build():
            # with several shards every engine reads the others' firing roots back from the broker
            return build_alert_runtime(args, site, cfg, service.writer, part=str(service.shard[0]),
                                       share_roots=service.shard[1] > 1,
                                       local_devices=[d.id for d in select_shard(site, service.shard)],
                                       evaluates_derived=bool(args.derived), rules=rules)

        def data_flows() -> bool:  # the first batch is out, or InfluxDB refused it (waiting longer won't help)
            w = service.writer
            return w is None or w.stats.batches_written > 0 or w.stats.retries > 0

        runtime = DeferredRuntime(build, ready=data_flows)
        service.add_consumer(runtime.consume)
        p.starts.append(runtime.start)
        p.ticks.append(runtime.tick)
        p.stops.append(runtime.stop)
    if args.derived:
        from derived.job import DerivedMetrics

        job = DerivedMetrics(site)
        service.add_consumer(job.consume)
        interval = site.defaults.interval_s

        sinks = [service.writer.write] if service.writer is not None else []
        if args.alerts:
            # the headroom rules (alerts/rules/site.yaml) read the derived capacity samples
            sinks.append(runtime.consume)

        async def derive() -> None:
            job.tick(interval, *sinks)
        p.ticks.append(derive)
    return p


def cmd_inventory_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from inventory.generate import FULL_SITE, dump_site, generate_site

    changes = {k: v for k, v in (("halls", args.halls), ("rows_per_hall", args.rows), ("racks_per_row", args.racks),
                                 ("nodes_per_rack", args.nodes), ("ups_per_hall", args.ups),
                                 ("interval_s", args.interval)) if v is not None}
    if args.loopback:
        changes["address_plan"] = "loopback"
    bad = [k for k, v in changes.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 1]
    if bad:
        return _fail(f"inventory generate: {', '.join(bad)} must be >= 1")
    try:
        text = dump_site(generate_site(dataclasses.replace(FULL_SITE, **changes)))
    except ValueError as exc:
        return _fail(f"inventory generate: {exc}")
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text) / 1e6:.1f} MB); check it with: dcim inventory check {args.out}")
    return 0


def cmd_inventory_shards(args: argparse.Namespace) -> int:
    from collectors.sharding import shard_sizes
    from inventory import InventoryError, load_site

    if args.count < 1:
        return _fail("inventory shards: --count must be >= 1")
    try:
        site = load_site(args.file)
    except InventoryError as exc:
        exc.print_issues()
        return 1
    sizes = shard_sizes(site.polled_devices(), args.count)
    for i, n in enumerate(sizes):
        print(f"shard {i}/{args.count}: {n} device(s)")
    return 0


#: the sub-commands defined in this module: a command line naming one of them needs no extension
CORE_COMMANDS = ("inventory", "probe", "run")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command tree; with ``argv`` naming a core command, without the extensions.

    Why: importing every area's module to register its sub-commands cost each ``dcim run``
    shard ≈0.25 s of CPU at start (alerts, reports, dashboards, the twin), in a start-up that
    the full site, with every shard starting at once, has to keep short."""
    parser = argparse.ArgumentParser(prog="dcim", description="Iozera DCIM: data-center monitoring.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    inv = sub.add_parser("inventory", help="inventory tools")
    inv_sub = inv.add_subparsers(dest="inventory_command", metavar="ACTION")
    inv_sub.required = True
    check = inv_sub.add_parser("check", help="validate a site file and summarise it")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="machine-readable summary")
    check.add_argument("--no-secrets", action="store_true",
                       help="do not read the credentials (a CI host without them); by default an unset "
                            "variable or an over-readable secret file is a problem, as it is for dcim run")
    check.set_defaults(func=cmd_inventory_check)
    gen = inv_sub.add_parser("generate", help="write a site file in the campus's shape (full 386 MW site by default)")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--halls", type=int, help="halls (full site: 24)")
    gen.add_argument("--rows", type=int, help="rows per hall (full site: 5)")
    gen.add_argument("--racks", type=int, help="racks per row (full site: 20)")
    gen.add_argument("--nodes", type=int, help="GPU nodes per rack (full site: 18)")
    gen.add_argument("--ups", type=int, help="UPS modules per hall (full site: 40)")
    gen.add_argument("--interval", type=float, help="defaults.interval_s, seconds between polls (full site: 10)")
    gen.add_argument("--loopback", action="store_true", help="every endpoint on its own 127.0.0.0/8 address (for the twin; see docs/inventory.md)")
    gen.set_defaults(func=cmd_inventory_generate)
    shards = inv_sub.add_parser("shards", help="how a site file splits over N collector shards")
    shards.add_argument("file", type=Path)
    shards.add_argument("--count", type=int, required=True, help="number of shards N")
    shards.set_defaults(func=cmd_inventory_shards)

    probe = sub.add_parser("probe", help="poll one device once and print its samples as JSON lines")
    probe.add_argument("url", help="snmp://[COMMUNITY@]HOST[:PORT], modbus://HOST[:PORT]/UNIT, "
                       "modbus+rtu:///dev/ttyX?baud=..&unit=.., modbus+rtutcp://HOST:PORT/UNIT, "
                       "dcgm://HOST:PORT, redfish[+https]://HOST:PORT")
    probe.add_argument("--profile", default="auto", help="profile name, or auto (SNMP: by sysObjectID)")
    probe.add_argument("--timeout", type=float, default=3.0, help="seconds per request (default 3)")
    probe.add_argument("--retries", type=int, default=1)
    probe.add_argument("--engine", help="SNMP engine: pysnmp or the fast engine (see collectors/snmp/README.md)")
    probe.add_argument("--snmp-version", choices=["1", "2c", "3"])
    probe.add_argument("--user", help="SNMPv3 user name")
    probe.add_argument("--auth-protocol", help="SNMPv3 auth protocol (SHA, SHA256, ...)")
    probe.add_argument("--auth-key-env", help="environment variable holding the SNMPv3 auth key")
    probe.add_argument("--priv-protocol", help="SNMPv3 privacy protocol (AES, AES256, ...)")
    probe.add_argument("--priv-key-env", help="environment variable holding the SNMPv3 privacy key")
    probe.add_argument("--community-env", help="environment variable holding the SNMP community")
    probe.add_argument("--username", help="Redfish user name")
    probe.add_argument("--password-env", help="environment variable holding the Redfish password")
    probe.add_argument("--insecure", action="store_true", help="Redfish over HTTPS: do not verify the certificate")
    probe.add_argument("--ca-bundle", help="Redfish over HTTPS: CA bundle file")
    probe.add_argument("--no-gaps", action="store_true",
                       help="SNMP --profile auto: skip the walk of the vendor subtree for tables the profile does not read")
    probe.add_argument("--gap-limit", type=int, help="objects walked at most for that list (default 20000)")
    probe.add_argument("--gap-seconds", type=float, help="seconds at most for that walk (default 30)")
    probe.add_argument("--option", action="append", metavar="KEY=VALUE", help="protocol option (repeatable)")
    probe.add_argument("--secret-env", action="append", metavar="NAME=ENVVAR", help="credential from env (repeatable)")
    probe.set_defaults(func=cmd_probe)

    run = sub.add_parser("run", help="poll the inventory continuously into InfluxDB until SIGTERM")
    run.add_argument("--config", required=True, type=Path, help="service config YAML (see docs/config.md)")
    run.add_argument("--shard", help="i/N: poll only this shard of the inventory (overrides the config)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    from dcim.alert_wiring import add_alert_arguments

    add_alert_arguments(run, "this shard's samples")
    run.add_argument("--derived", action="store_true",
                     help="also compute derived metrics in this process (single-shard sites; else: dcim derived run)")
    run.set_defaults(func=cmd_run)

    command = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name in () if command in CORE_COMMANDS else EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that area is not installed
            raise
        module.register(sub)
    return parser


#: long-running commands, whose stderr is filtered for native panics (dcim.logs)
_SERVICES = ("run", "agent", "derived", "demo", "simulate")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    from dcim.logs import route_native_stderr, setup

    if argv is None and getattr(args, "command", None) in _SERVICES:
        route_native_stderr()  # a process of its own: native panics become one capped line
    setup(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
