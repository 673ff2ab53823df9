"""The rule engine's wiring for a long-running command: ``dcim run --alerts`` and ``dcim derived run --alerts``.

One place turns the command-line options and the service config into an
:class:`alerts.runtime.AlertRuntime` (MQTT session, Alertmanager peers, Grafana
links), so a collector shard's engine and the site-level derived job's engine
publish alike and read each other's firing roots back from the broker.
"""
from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Iterable

__all__ = ["add_alert_arguments", "check_alert_arguments", "build_alert_runtime"]


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


def build_alert_runtime(args: argparse.Namespace, site, cfg, writer, *, part: str, share_roots: bool,
                        local_devices: Iterable[str] | None, evaluates_derived: bool):
    """The engine for ``args.alerts``.  ``part``: this engine's place in the site (the shard index, or
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
    return AlertRuntime(site, args.alerts, state_dir=args.state_dir, mqtt=mqtt, influx_writer=writer,
                        alertmanager=am, local_devices=local_devices,
                        link_for=(lambda e: device_link(site, grafana, e.get("device", ""))) if grafana else None,
                        engine_id=engine_id, evaluates_derived=evaluates_derived)
