"""``dcim demo``: the whole system on a simulated site, in one command.

What it does, in order (everything in a private output directory):
1. validates the site file (the inventory is the single source of truth);
2. starts a local InfluxDB and Mosquitto on free loopback ports;
3. starts the digital twin: a real SNMP, Modbus or HTTP endpoint for every
   polled device of the site, driven by one physical model;
4. backfills history (:mod:`dcim.backfill`, 30 days by default): the twin's
   model stepped through the past and polled by the real collectors, the
   derived metrics and the rule engine evaluating each instant, so the daily
   energy/PUE panels and the PUE report cover a real month; it prints what
   that cost;
5. starts the collectors, the rule engine and the derived metrics, and shows a
   live terminal view (PUE, facility/IT power, hall loads, active alerts, poll health);
6. injects every fault kind the twin has on a timeline so alerts fire and resolve;
7. at the end writes the Grafana dashboards with provisioning files, a PUE
   report and a capacity report (``dcim report capacity``) for the whole period (history and
   live), the energy attribution by tenant of the same period with each tenant's statement
   (the twin's GPUs run the site's tenants' jobs), and ``demo.json`` (that
   period, for Grafana's time picker and for checks), and says where everything is.

Ctrl-C (or ``--duration``) stops everything cleanly: the collectors flush,
the servers it started are stopped by pid.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from contract import alert_event as ae
from dcim.live_view import LiveState, render, status_line

__all__ = ["register", "run_demo", "DemoOptions"]

log = logging.getLogger("dcim.demo")
EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "inventory" / "examples" / "tetouan.yaml"
DEMO_SECRETS = {"DCIM_SNMP_COMMUNITY": "tetouan-demo", "DCIM_BMC_USER": "demo", "DCIM_BMC_PASSWORD": "demo-only-password"}


@dataclass
class DemoOptions:
    site: Path = EXAMPLE_SITE
    out: Path = Path("demo-output")
    duration: float | None = 120.0
    interval: float | None = 5.0
    live: bool = True
    faults: bool = True
    backfill_days: float = 30.0
    backfill_step_s: float = 21600.0
    free_ports: bool = False


def fault_timeline(site, duration: float | None) -> list[tuple[float, str, str, str]]:
    """(at_s, action, fault, device): every fault kind the twin has, each injected and cleared.

    Physical faults first (a UPS on battery, an XID storm, a CDU leak, a PDU breaker, a hot GPU,
    a CDU's pumps failing so the GPUs on its loop throttle, a chiller trip, a CDU loop's flow
    falling, a clogging filter), then the endpoint faults (a BMC that stops answering, a slow
    CRAH, a GPU node answering garbage); devices are the site's first of each kind (the second
    CDU for the pump failure and the low flow, whose chiller stays up, so the loop alert they
    raise is not suppressed by the first chiller's trip)."""
    from dcim.backfill import first_device
    from simulator.model import FAULTS

    d = duration or 120.0
    plan = [  # (inject at, clear at) as fractions of the duration
        (0.10, 0.40, "ups_on_battery", first_device(site, "ups")),
        (0.12, 0.45, "xid_storm", first_device(site, "gpu_node")),
        (0.15, 0.50, "cdu_leak", first_device(site, "cdu")),
        (0.18, 0.55, "pdu_breaker_trip", first_device(site, "pdu")),
        (0.20, 0.90, "gpu_overtemp", first_device(site, "gpu_node", 1)),
        (0.22, 0.48, "cdu_pump_fail", first_device(site, "cdu", 1)),
        (0.55, 0.80, "cdu_low_flow", first_device(site, "cdu", 1)),  # not under the tripped chiller: its own root cause
        (0.58, 0.88, "cdu_filter_clog", first_device(site, "cdu")),
        (0.50, 0.85, "chiller_trip", first_device(site, "chiller")),
        (0.45, 0.85, "no_answer", first_device(site, "server")),
        (0.60, 0.75, "slow", first_device(site, "crah")),
        (0.62, 0.78, "garbage", first_device(site, "gpu_node", 2)),
    ]
    assert {f for *_, f, _ in plan} == set(FAULTS), "the demo's timeline must show every fault the twin has"
    out = []
    for start, end, fault, device in plan:
        if device is not None:
            out += [(start * d, "inject", fault, device), (end * d, "clear", fault, device)]
    return sorted(out, key=lambda e: e[0])


async def run_demo(opts: DemoOptions, console: Console) -> int:
    from inventory import InventoryError, load_site
    from localservers.influx import InfluxServer

    out = opts.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for k, v in DEMO_SECRETS.items():
        os.environ.setdefault(k, v)
    try:
        site = load_site(opts.site)
    except InventoryError as exc:
        for issue in exc.issues:
            console.print(f"[red]{issue}")
        return 1
    if opts.interval:
        site.defaults.interval_s = opts.interval
        for dev in site.all_devices():
            if dev.interval_s and dev.interval_s > opts.interval:
                dev.interval_s = opts.interval
    console.print(f"[bold]Iozera DCIM demo[/] — site [cyan]{site.site.id}[/] from {opts.site}")
    console.print(f"  {len(site.polled_devices())} polled devices; output in {out}")

    if opts.free_ports:
        from localservers.site import relocate_ports

        relocate_ports(site)
    now = time.time()
    backfill_from = None
    if opts.backfill_days > 0:
        backfill_from = (now - opts.backfill_days * 86400.0) // opts.backfill_step_s * opts.backfill_step_s

    stack = contextlib.AsyncExitStack()
    async with stack:
        influx = InfluxServer(out / "influxdb").start()
        stack.callback(influx.stop)
        influx.create_database("dcim")
        console.print(f"  InfluxDB  {influx.url}  (database dcim)")
        mqtt = _start_mosquitto(out)
        stack.callback(mqtt.stop)
        console.print(f"  Mosquitto 127.0.0.1:{mqtt.port}")

        # with a backfill the model starts at its first instant, so the counters integrate the whole history
        twin = await _start_twin(site, backfill_from)
        stack.push_async_callback(twin.stop)
        console.print("  digital twin: serving every polled device on loopback")

        from dcim.service import CollectionService
        from sinks.influx_writer import InfluxConfig

        cfg = InfluxConfig(url=influx.url, database="dcim", api="auto", spool_dir=str(out / "spool"))
        service = CollectionService(site, cfg)
        extras = await _start_extras(site, service, mqtt, out, opts.interval or 10.0)
        stack.push_async_callback(service.stop)
        period_from = now
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if backfill_from is not None:
            from dcim.backfill import backfill, history_faults

            await service.start_writer()
            console.print(f"  backfilling {opts.backfill_days:g} days of history: the twin's model in 15-min steps, "
                          f"every device polled each {opts.backfill_step_s / 3600:g} h and around each fault…")
            result = await backfill(twin, service, backfill_from, opts.backfill_step_s,
                                    faults=history_faults(site, backfill_from, now), after_step=extras.history_steps,
                                    stop=stop)
            console.print(f"  {result.summary()}; {extras.alert_events} alert events from the rule engine")
            period_from = backfill_from
        console.print("  " + _init_tiers(influx.url))
        state = LiveState.for_site(site)
        service.add_consumer(state)
        extras.attach(state, None if opts.live else console)
        started_utc = time.time()
        await service.start()
        started = time.monotonic()
        timeline = fault_timeline(site, opts.duration) if opts.faults and not stop.is_set() else []
        live_ctx = Live(render(state), console=console, refresh_per_second=2, transient=False) if opts.live else contextlib.nullcontext()
        next_status = 10.0
        with live_ctx as live:
            while not stop.is_set():
                elapsed = time.monotonic() - started
                while timeline and timeline[0][0] <= elapsed:
                    _, action, fault, device = timeline.pop(0)
                    _apply_fault(twin, action, fault, device, state)
                    if not opts.live:
                        console.print(f"  [magenta]fault {action}[/] {fault} on {device} (t={elapsed:.0f}s)")
                for tick in extras.ticks:
                    await _call(tick)
                if not opts.live and elapsed >= next_status:
                    next_status += 10.0
                    console.print("  " + status_line(state))
                if live is not None:
                    live.update(render(state))
                if opts.duration is not None and elapsed >= opts.duration:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        for _, action, fault, device in timeline:  # stopped early: leave no fault behind in the record
            if action == "clear":
                _apply_fault(twin, action, fault, device, state)
        console.print("stopping: flushing samples to InfluxDB…")
        await service.stop()
        for close in extras.closers:
            try:
                await _call(close)
            except Exception:
                log.exception("stopping %r", close)
        written = service.writer.stats.points_written if service.writer else 0
        for note in extras.notes:
            console.print("  " + note)
        period_to = time.time() + 1
        console.print("  " + _fill_tiers(influx.url, period_from, period_to))
        artefacts = _write_artefacts(site, out, influx.url, period_from, period_to)
        _write_manifest(out, period_from, period_to, started_utc, opts)
    console.print(f"[bold green]done[/]: {written:,} points written to InfluxDB ({influx.url}, stopped now; data in {out / 'influxdb'})")
    for line in artefacts:
        console.print("  " + line)
    return 0


def _write_manifest(out: Path, period_from: float, period_to: float, live_from: float, opts: DemoOptions) -> None:
    """``demo.json``: the period the data covers, for Grafana's time picker and for checks."""
    import json

    (out / "demo.json").write_text(json.dumps({
        "from_ms": int(period_from * 1000), "to_ms": int(period_to * 1000), "live_from_ms": int(live_from * 1000),
        "backfill_days": opts.backfill_days, "backfill_step_s": opts.backfill_step_s,
    }, indent=2) + "\n", encoding="utf-8")


@dataclass
class _Extras:
    """Parts beside collection, each optional: ``ticks`` run every half second, ``closers`` at the end.

    Both may be plain callables or coroutine functions.  ``history_steps(t_ns)`` run after each
    backfill step (derived metrics and the rule engine at that instant); ``attach`` adds the
    live view and the event printer once the history is written, so they show the live part.
    """
    ticks: list
    closers: list
    notes: list
    history_steps: list
    runtime: object = None
    attach: object = None
    alert_events: int = 0


async def _call(fn) -> None:
    result = fn()
    if inspect.isawaitable(result):
        await result


def _start_mosquitto(out: Path):
    from localservers.mosquitto import MosquittoServer

    return MosquittoServer(out / "mosquitto").start()


async def _start_twin(site, at: float | None = None):
    from simulator.twin import Twin

    twin = Twin(site, seed=20261124)
    if at is not None:
        twin.clock = lambda: at  # the backfill moves it on, then hands it back to the wall clock
    await twin.start()
    return twin


def _apply_fault(twin, action: str, fault: str, device: str, state: LiveState) -> None:
    try:
        if action == "inject":
            twin.inject(fault, device)
        else:
            twin.clear(fault, device)
        state.events.append({"state": f"fault {action}", "rule": fault, "device": device})
    except Exception as exc:  # a fault the twin does not know must not end the demo
        log.warning("fault %s %s on %s failed: %s", action, fault, device, exc)


def _event_printer(console: Console):
    """Without the live view (logs, CI): one line per alert event, coloured by severity."""
    from dcim.commands.alerts import SEVERITY_STYLE

    def show(event: dict) -> None:
        state = event.get(ae.STATE, "")
        if state not in ae.EVENT_STATES:
            return
        colour = "green" if state == ae.RESOLVED else SEVERITY_STYLE.get(event.get(ae.SEVERITY, ""), "white")
        sup = f" (suppressed by {event[ae.SUPPRESSED_BY]})" if event.get(ae.SUPPRESSED_BY) else ""
        console.print(f"  [{colour}]{state:8}[/] {event.get(ae.SEVERITY, ''):8} {event.get(ae.RULE, '')} "
                      f"{event.get(ae.DEVICE, '')}{sup}  {ae.summary_of(event)}")
    return show


async def _start_extras(site, service, mqtt, out: Path, interval: float) -> _Extras:
    """Derived metrics and the rule engine beside collection."""
    from alerts.mqtt_publisher import MqttSettings
    from alerts.runtime import AlertRuntime
    from derived.job import DerivedMetrics

    extras = _Extras(ticks=[], closers=[], notes=[], history_steps=[])
    writer = service.writer
    derived = DerivedMetrics(site)
    service.add_consumer(derived.consume)

    def derive(t_ns: int) -> None:
        samples = derived.compute(t_ns)
        writer.write(samples)
        runtime.consume(samples)   # the headroom rules read the derived capacity samples
    extras.history_steps.append(derive)
    extras.notes.append("derived metrics: site_power, pue, capacity → InfluxDB every poll interval")
    rules = Path(__file__).resolve().parent.parent / "alerts" / "rules" / "site.yaml"
    settings = MqttSettings(host="127.0.0.1", port=mqtt.port, site=site.site.id)
    runtime = AlertRuntime(site, rules, state_dir=out / "alerts", mqtt=settings, influx_writer=writer)

    def count(event: dict) -> None:
        extras.alert_events += 1
    runtime.add_listener(count)
    service.add_consumer(runtime.consume)
    await runtime.start()
    extras.history_steps.append(runtime.tick)
    extras.runtime = runtime
    extras.ticks.append(runtime.tick)
    extras.closers.append(runtime.stop)
    extras.notes.append(f"rule engine: {rules.name}; alerts on MQTT topic dcim/{site.site.id}/alerts/# "
                        f"(state in {out / 'alerts'})")

    def attach(state: LiveState, console: Console | None) -> None:
        # the live view shows the same PUE and loads as the dashboards: the derived job's
        extras.ticks.insert(0, lambda: derived.tick(interval, writer.write, runtime.consume, state))
        runtime.add_listener(state.alert_event)
        if console is not None:
            runtime.add_listener(_event_printer(console))
    extras.attach = attach
    return extras


#: The demo's tiers: the defaults, with raw kept long enough that the backfilled month never expires.
def _demo_storage():
    from storage.tiers import RawTier, StorageConfig

    return StorageConfig(raw=RawTier(retention="400d"))


def _init_tiers(influx_url: str) -> str:
    """``dcim storage init`` on the demo's database: tiers, continuous queries for the live part."""
    from sinks.influx_query import InfluxQuery
    from storage.admin import init

    res = init(InfluxQuery(influx_url, "dcim"), _demo_storage())
    how = "continuous queries" if res.use_cq else "no continuous queries"
    return ("storage tiers: raw, " + ", ".join(t.rp for t in _demo_storage().tiers) +
            f" ({len(res.statements)} statements, {how} for {res.measurements} measurements)")


def _fill_tiers(influx_url: str, period_from: float, period_to: float) -> str:
    """``dcim storage backfill`` over the demo period, so 30-day dashboards read the hourly tier."""
    from sinks.influx_query import InfluxQuery
    from storage.admin import backfill

    t0 = time.monotonic()
    span_ns = int(period_to + 60 - period_from) * 10**9
    # one statement per measurement and tier for the whole (sparse) month: far fewer round trips
    written = backfill(InfluxQuery(influx_url, "dcim", timeout_s=300), _demo_storage(),
                       int(period_from) * 10**9, int(period_to + 60) * 10**9, chunk_ns=max(span_ns, 86400 * 10**9))
    return (f"rollups filled for the demo period in {time.monotonic() - t0:.1f} s: " +
            ", ".join(f"{k} {v:,} points" for k, v in written.items()))


def _write_artefacts(site, out: Path, influx_url: str, period_from: float, period_to: float) -> list[str]:
    """Grafana dashboards + provisioning, and the energy-based PUE report for the demo period
    (the backfilled history and the live part)."""
    from dashboards.provisioning import write_build
    from reports.build import ReportRequest, build_pue_report, render
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery, QueryError

    lines: list[str] = []
    try:
        write_build(site, out / "grafana", influx_url, "dcim", None)
        lines.append(f"Grafana dashboards + provisioning: {out / 'grafana'} "
                     "(copy into /etc/grafana/provisioning, or: dcim dashboards push)")
    except Exception as exc:  # artefacts must not hide the demo's result
        log.exception("dashboards build failed")
        lines.append(f"[red]dashboards build failed: {exc}")
    lines += _capacity_report(site, out, influx_url, period_from, period_to)
    try:  # one set of queries for the demo period, three renderings
        report = build_pue_report(site, InfluxQuery(influx_url, "dcim"),
                                  ReportRequest(float(int(period_from)), float(int(period_to)), progress=False))
    except (ReportError, QueryError) as exc:
        return lines + [f"[red]PUE report failed: {exc}"]
    for fmt in ("pdf", "html", "json"):
        target = out / f"pue-report.{fmt}"
        data = render(report, fmt)
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8", newline="")
        else:
            target.write_bytes(data)
        lines.append(f"PUE report ({fmt}): {target}")
    return lines + _write_energy_reports(site, out, influx_url, period_from, period_to)


def _write_energy_reports(site, out: Path, influx_url: str, period_from: float, period_to: float) -> list[str]:
    """Energy attribution for the demo period: by tenant (pdf, html, csv, json), and each tenant's statement (pdf)."""
    from reports.attribution_build import EnergyRequest, build_energy_report, tenant_statement
    from reports.attribution_render import render_energy, render_statement
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery, QueryError

    lines: list[str] = []
    client = InfluxQuery(influx_url, "dcim", timeout_s=120)
    # whole hours: the attribution splits hour by hour
    a, b = float(int(period_from) // 3600 * 3600), float(-(-int(period_to) // 3600) * 3600)
    try:
        by_tenant = build_energy_report(site, client, EnergyRequest(a, b, by="tenant"))
        by_ns = build_energy_report(site, client, EnergyRequest(a, b, by="namespace")) if site.tenants else None
    except (ReportError, QueryError) as exc:
        return [f"[red]energy attribution failed: {exc}"]

    def put(target: Path, data) -> None:
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8", newline="")
        else:
            target.write_bytes(data)

    for fmt in ("pdf", "html", "csv", "json"):
        target = out / f"energy-by-tenant.{fmt}"
        put(target, render_energy(by_tenant, fmt))
        lines.append(f"energy attribution by tenant ({fmt}): {target}")
    for t in site.tenants if by_ns is not None else []:
        target = out / f"statement-{t.id}.pdf"
        put(target, render_statement(tenant_statement(site, by_ns, t.id), "pdf"))
        lines.append(f"tenant statement ({t.id}): {target}")
    return lines


def _capacity_report(site, out: Path, influx_url: str, period_from: float, period_to: float) -> list[str]:
    """``dcim report capacity`` over the demo period (html, json, csv), from the derived capacity samples."""
    from reports.capacity_query import build_capacity_report
    from reports.capacity_render import render_capacity
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery, QueryError

    try:
        report = build_capacity_report(site, InfluxQuery(influx_url, "dcim", timeout_s=300),
                                       float(int(period_from)), float(int(period_to)))
    except (ReportError, QueryError) as exc:
        return [f"[red]capacity report failed: {exc}"]
    lines = []
    for fmt in ("html", "json", "csv"):
        target = out / f"capacity-report.{fmt}"
        target.write_text(render_capacity(report, fmt), encoding="utf-8", newline="")
        lines.append(f"capacity report ({fmt}): {target}")
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole system on a simulated site (the README's first command)")
    p.add_argument("--site", type=Path, default=EXAMPLE_SITE, help="site file (default: the Tétouan example)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="private directory for servers, data and outputs")
    p.add_argument("--duration", type=float, default=120.0, help="seconds to run (default 120; 0 = until Ctrl-C)")
    p.add_argument("--interval", type=float, default=5.0, help="poll interval for the demo (default 5 s)")
    p.add_argument("--no-live", action="store_true", help="no live view (for logs and CI)")
    p.add_argument("--no-faults", action="store_true", help="do not inject faults")
    p.add_argument("--backfill-days", type=float, default=30.0,
                   help="days of history written before the live part (default 30; 0 = none)")
    p.add_argument("--backfill-step", default="6h",
                   help="how often the history polls every device, e.g. 1h, 6h (default 6h; the model steps every 15 min)")
    p.add_argument("--free-ports", action="store_true",
                   help="serve the twin on free loopback ports instead of the inventory's (beside another demo)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from dcim.backfill import parse_step

    try:
        step = parse_step(args.backfill_step)
    except ValueError as exc:
        print(f"dcim demo: --backfill-step: {exc}", file=sys.stderr)
        return 2
    opts = DemoOptions(site=args.site, out=args.out, duration=args.duration or None, interval=args.interval,
                       live=not args.no_live and sys.stdout.isatty(), faults=not args.no_faults,
                       backfill_days=max(0.0, args.backfill_days), backfill_step_s=step, free_ports=args.free_ports)
    console = Console()
    # the live view owns the terminal: logs go to a file in the output directory
    opts.out.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.FileHandler(opts.out / "dcim.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    console.print(f"  logs: {opts.out / 'dcim.log'}")
    return asyncio.run(run_demo(opts, console))
