"""The rule engine's wiring for a long-running command: ``dcim run --alerts`` and ``dcim derived run --alerts``.

One place turns the command-line options and the service config into an
:class:`alerts.runtime.AlertRuntime` (MQTT session, Alertmanager peers, Grafana
links), so a collector shard's engine and the site-level derived job's engine
publish alike and read each other's firing roots back from the broker.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from alerts.rules import RuleSet

__all__ = ["add_alert_arguments", "check_alert_arguments", "load_alert_rules", "build_alert_runtime",
           "DeferredRuntime"]

log = logging.getLogger("dcim.alerts")


def add_alert_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--alerts RULES --state-dir DIR --mqtt HOST:PORT --alertmanager URL --engine-id NAME``."""
    p.add_argument("--alerts", type=Path, help=f"rule file: evaluate {what} (see alerts/README.md)")
    p.add_argument("--state-dir", type=Path, help="with --alerts: alert state, silences and MQTT outbox")
    p.add_argument("--mqtt", help="with --alerts: broker HOST:PORT (TLS and credentials from DCIM_MQTT_* env)")
    p.add_argument("--alertmanager", action="append", metavar="URL",
                   help="with --alerts: Alertmanager base URL, repeatable (every peer of the cluster); "
                        "replaces alertmanager.urls of the config")
    p.add_argument("--engine-id", help="with --alerts: this replica's name (MQTT client id, Alertmanager silences; "
                                       "default: host name)")


def check_alert_arguments(args: argparse.Namespace) -> str | None:
    """The reason the alert options cannot work together, or None."""
    bad = [u for u in args.alertmanager or [] if not u.startswith(("http://", "https://"))]
    if bad:
        return f"--alertmanager {bad[0]!r}: expected http(s)://HOST:PORT"
    if args.alerts and args.state_dir is None:
        return "--alerts needs --state-dir (alert state and the MQTT outbox live there)"
    return None


#: the lock fds of the state directories this process's engine claimed (kept open: closing one
#: would release the process's lock on that file)
_CLAIMED: list[int] = []


def claim_state_dir(args: argparse.Namespace) -> str | None:
    """Take the rule engine's lock on ``--state-dir`` now, before the site loads and polling starts
    (a shard's engine is built later, :class:`DeferredRuntime`): the reason it cannot, or None
    (:func:`alerts.state_dir.lock_state_dir`)."""
    if not args.alerts:
        return None
    from alerts.state_dir import StateDirInUse, lock_state_dir

    try:
        _CLAIMED.append(lock_state_dir(Path(args.state_dir)))
    except StateDirInUse as exc:
        return str(exc)
    return None


def load_alert_rules(args: argparse.Namespace) -> RuleSet | int | None:
    """The rule set of ``--alerts`` (None without it), or 1 once its problems (an unreadable file
    included) are printed as ``file:line: field: message`` lines: before the site is loaded, so a
    bad rule file is refused at once and never as a traceback from inside the running service."""
    if not args.alerts:
        return None
    from alerts.rules import load_rules
    from inventory import InventoryError

    try:
        return load_rules(args.alerts)
    except InventoryError as exc:
        exc.print_issues()
        return 1


def build_alert_runtime(args: argparse.Namespace, site, cfg, writer, *, part: str, share_roots: bool,
                        local_devices: Iterable[str] | None, evaluates_derived: bool, rules: RuleSet):
    """The engine for ``rules`` (:func:`load_alert_rules` of ``args.alerts``).  ``part``: this engine's place in the site (the shard index, or
    ``derived``), part of its MQTT client id, so no two engines share one broker session."""
    from alerts.alertmanager_sender import AlertmanagerSettings
    from alerts.mqtt_publisher import MqttSettings
    from alerts.runtime import AlertRuntime
    from dashboards.catalog import device_link

    engine_id = args.engine_id or socket.gethostname()
    mqtt = MqttSettings.from_env(args.mqtt, site.site.id, share_roots=share_roots,
                                 client_id=f"dcim-alerts-{site.site.id}-{part}-{engine_id}") if args.mqtt else None
    am_cfg = cfg.alertmanager
    urls = list(args.alertmanager or am_cfg.urls)
    am = AlertmanagerSettings.from_env(urls, resend_s=am_cfg.resend_s, timeout_s=am_cfg.timeout_s) if urls else None
    grafana = am_cfg.grafana_url
    return AlertRuntime(site, rules, state_dir=args.state_dir, mqtt=mqtt, influx_writer=writer,
                        alertmanager=am, local_devices=local_devices,
                        link_for=(lambda e: device_link(site, grafana, e.get("device", ""))) if grafana else None,
                        engine_id=engine_id, evaluates_derived=evaluates_derived)


class DeferredRuntime:
    """The rule engine of a collector shard, built once polling has started.

    Why: building it (the shard's power graph, the suppression and loop indexes, the rule
    selectors over every device, the restored state) is ≈0.5 s of CPU on a full-site shard,
    and built before polling it pushed the shard's first write back by that much times the
    load (every shard and the derived job start at once).  Built after the shard's first batch
    is written (or ``wait_s`` at most), it costs the same and the data flows first.

    Nothing is lost meanwhile: samples are kept in order and handed to the engine as soon as it
    exists; a stop before then builds it and evaluates them (so their events reach the outbox);
    an error while building ends the service at the next tick, as an engine tick that raised does.
    """

    def __init__(self, build: Callable[[], Any], ready: Callable[[], bool], wait_s: float = 2.0) -> None:
        self._build, self._ready, self._wait_s = build, ready, wait_s
        #: the engine, once built and started
        self.runtime: Any = None
        self._pending: list[list] = []
        self._task: asyncio.Task | None = None

    def consume(self, samples: list) -> None:
        if self.runtime is not None:
            self.runtime.consume(samples)
        else:
            self._pending.append(list(samples))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._build_later(), name="alerts-build")

    async def _build_later(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self._wait_s
        while not self._ready() and loop.time() < end:
            await asyncio.sleep(0.05)
        await self._start_runtime()

    async def _start_runtime(self) -> None:
        if self.runtime is not None:
            return
        from dcim.gc_policy import gc_paused_for_startup

        with gc_paused_for_startup():  # as for the rest of start-up: all it builds lives until exit
            runtime = self._build()
        await runtime.start()
        pending, self._pending = self._pending, []
        for samples in pending:
            runtime.consume(samples)
        self.runtime = runtime
        log.info("rule engine running (%d sample batch(es) from before it was built evaluated)", len(pending))

    def _build_error(self) -> BaseException | None:
        t = self._task
        return t.exception() if t is not None and t.done() and not t.cancelled() else None

    async def tick(self) -> None:
        if (error := self._build_error()) is not None:
            raise error
        if self.runtime is not None:
            await self.runtime.tick()

    async def stop(self, timeout: float = 5.0) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._build_error() is not None:
            return  # never built: the error has been raised by a tick and logged by the service
        await self._start_runtime()
        await self.runtime.stop(timeout=timeout)
