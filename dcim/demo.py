"""``dcim demo``: the whole system on a simulated site, in one command.

What it does, in order (everything in a private output directory):
1. validates the site file (the inventory is the single source of truth);
2. starts a local InfluxDB and Mosquitto on free loopback ports;
3. starts the digital twin: a real SNMP, Modbus or HTTP endpoint for every
   polled device of the site, driven by one physical model;
4. starts the collectors, the rule engine and the derived metrics, and shows a
   live terminal view (PUE, facility/IT power, hall loads, active alerts, poll health);
5. injects faults on a timeline so alerts fire and resolve;
6. at the end writes the Grafana dashboards with provisioning files and a PUE
   report for the demo period, and says where everything is.

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


def fault_timeline(duration: float | None) -> list[tuple[float, str, str, str]]:
    """(at_s, action, fault, device): a UPS goes on battery and comes back, then a chiller trips."""
    d = duration or 120.0
    return [
        (0.20 * d, "inject", "ups_on_battery", "ups-1a"),
        (0.45 * d, "clear", "ups_on_battery", "ups-1a"),
        (0.50 * d, "inject", "chiller_trip", "chiller-1"),
        (0.85 * d, "clear", "chiller_trip", "chiller-1"),
    ]


async def run_demo(opts: DemoOptions, console: Console) -> int:
    from inventory import InventoryError, load_site
    from testkit.influx import InfluxServer

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

    stack = contextlib.AsyncExitStack()
    async with stack:
        influx = InfluxServer(out / "influxdb").start()
        stack.callback(influx.stop)
        influx.create_database("dcim")
        console.print(f"  InfluxDB  {influx.url}  (database dcim)")
        mqtt = _start_mosquitto(out)
        stack.callback(mqtt.stop)
        console.print(f"  Mosquitto 127.0.0.1:{mqtt.port}")

        twin = await _start_twin(site)
        stack.push_async_callback(twin.stop)
        console.print("  digital twin: serving every polled device on loopback")

        from dcim.service import CollectionService
        from sinks.influx_writer import InfluxConfig

        cfg = InfluxConfig(url=influx.url, database="dcim", api="auto", spool_dir=str(out / "spool"))
        service = CollectionService(site, cfg)
        state = LiveState.for_site(site)
        service.add_consumer(state)
        extras = await _start_extras(site, service, state, mqtt, out, opts.interval or 10.0,
                                     None if opts.live else console)
        started_utc = time.time()
        await service.start()
        stack.push_async_callback(service.stop)
        started = time.monotonic()
        timeline = fault_timeline(opts.duration) if opts.faults else []
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
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
        artefacts = _write_artefacts(site, out, influx.url, started_utc)
    console.print(f"[bold green]done[/]: {written:,} points written to InfluxDB ({influx.url}, stopped now; data in {out / 'influxdb'})")
    for line in artefacts:
        console.print("  " + line)
    return 0


@dataclass
class _Extras:
    """Parts beside collection, each optional: ``ticks`` run every half second, ``closers`` at the end.

    Both may be plain callables or coroutine functions.
    """
    ticks: list
    closers: list
    notes: list


async def _call(fn) -> None:
    result = fn()
    if inspect.isawaitable(result):
        await result


def _start_mosquitto(out: Path):
    from testkit.mosquitto import MosquittoServer

    return MosquittoServer(out / "mosquitto").start()


async def _start_twin(site):
    from simulator.twin import Twin

    twin = Twin(site, seed=20261124)
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
    from alerts.cli import SEVERITY_STYLE

    def show(event: dict) -> None:
        state = event.get(ae.STATE, "")
        if state not in ae.EVENT_STATES:
            return
        colour = "green" if state == ae.RESOLVED else SEVERITY_STYLE.get(event.get(ae.SEVERITY, ""), "white")
        sup = f" (suppressed by {event[ae.SUPPRESSED_BY]})" if event.get(ae.SUPPRESSED_BY) else ""
        console.print(f"  [{colour}]{state:8}[/] {event.get(ae.SEVERITY, ''):8} {event.get(ae.RULE, '')} "
                      f"{event.get(ae.DEVICE, '')}{sup}  {ae.summary_of(event)}")
    return show


async def _start_extras(site, service, state: LiveState, mqtt, out: Path, interval: float,
                        console: Console | None = None) -> _Extras:
    """Derived metrics and the rule engine beside collection."""
    from alerts.mqtt_publisher import MqttSettings
    from alerts.runtime import AlertRuntime
    from derived.job import DerivedMetrics

    extras = _Extras(ticks=[], closers=[], notes=[])
    writer = service.writer
    derived = DerivedMetrics(site)
    service.add_consumer(derived.consume)
    # the live view shows the same PUE and loads as the dashboards: the derived job's
    extras.ticks.append(lambda: derived.tick(interval, writer.write, state))
    extras.notes.append("derived metrics: site_power, pue, capacity → InfluxDB every poll interval")
    rules = Path(__file__).resolve().parent.parent / "alerts" / "rules" / "site.yaml"
    settings = MqttSettings(host="127.0.0.1", port=mqtt.port, site=site.site.id)
    runtime = AlertRuntime(site, rules, state_dir=out / "alerts", mqtt=settings, influx_writer=writer)
    runtime.add_listener(state.alert_event)
    if console is not None:
        runtime.add_listener(_event_printer(console))
    service.add_consumer(runtime.consume)
    await runtime.start()
    extras.ticks.append(runtime.tick)
    extras.closers.append(runtime.stop)
    extras.notes.append(f"rule engine: {rules.name}; alerts on MQTT topic dcim/{site.site.id}/alerts/# "
                        f"(state in {out / 'alerts'})")
    return extras


def _write_artefacts(site, out: Path, influx_url: str, started_utc: float) -> list[str]:
    """Grafana dashboards + provisioning, and the energy-based PUE report for the demo period."""
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
    try:  # one set of queries for the demo period, three renderings
        report = build_pue_report(site, InfluxQuery(influx_url, "dcim"),
                                  ReportRequest(float(int(started_utc)), float(int(time.time() + 1)), progress=False))
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
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole system on a simulated site (the README's first command)")
    p.add_argument("--site", type=Path, default=EXAMPLE_SITE, help="site file (default: the Tétouan example)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="private directory for servers, data and outputs")
    p.add_argument("--duration", type=float, default=120.0, help="seconds to run (default 120; 0 = until Ctrl-C)")
    p.add_argument("--interval", type=float, default=5.0, help="poll interval for the demo (default 5 s)")
    p.add_argument("--no-live", action="store_true", help="no live view (for logs and CI)")
    p.add_argument("--no-faults", action="store_true", help="do not inject faults")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    opts = DemoOptions(site=args.site, out=args.out, duration=args.duration or None, interval=args.interval,
                       live=not args.no_live and sys.stdout.isatty(), faults=not args.no_faults)
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
