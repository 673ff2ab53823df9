"""``dcim dashboards build | push | preview``.

Tokens are read from the environment variable *named* on the command line
(``--token-env``), never passed as a value: a value on a command line ends up
in shell history and process listings.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register"]

_EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"


def _load(path: Path):
    from inventory import InventoryError, load_site

    try:
        return load_site(path)
    except InventoryError as exc:
        exc.print_issues()
        return None


def _token(var: str | None, what: str) -> tuple[str | None, str | None]:
    """(token, error): the token from the named variable, or why not."""
    if var is None:
        return None, None
    value = os.environ.get(var)
    if not value:
        return None, f"{what}: environment variable {var} is not set or empty"
    return value, None


def _datasource(args):
    from dashboards.builder import Datasource

    return Datasource(uid=args.datasource_uid)


def cmd_build(args: argparse.Namespace) -> int:
    from dashboards.provisioning import write_build

    site = _load(args.site)
    if site is None:
        return 1
    try:
        paths = write_build(site, args.out, args.influx_url, args.db, args.token_env, _datasource(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from dashboards.provisioning import FOLDER_TITLE, FOLDER_UID, dashboards_json, datasource_model
    from dashboards.push import push_all

    token, err = _token(args.token_env, "--token-env")
    influx_token, err2 = _token(args.influx_token_env, "--influx-token-env")
    if err or err2:
        print(f"error: {err or err2}", file=sys.stderr)
        return 2
    site = _load(args.site)
    if site is None:
        return 1
    ds = _datasource(args)
    api = GrafanaApi.from_url(args.url, credential=token, timeout=args.timeout)
    try:
        results = push_all(api, datasource_model(ds, args.influx_url, args.db, influx_token), FOLDER_UID,
                           FOLDER_TITLE, list(dashboards_json(site, ds).values()))
    except GrafanaException as exc:
        print(f"error: Grafana at {args.url} answered {exc.status_code}: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused, DNS, TLS: one line, no traceback, no token
        print(f"error: Grafana at {args.url} unreachable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(r)
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from inventory.secrets import SecretValue
    from sinks.influx_query import InfluxQuery

    from dashboards.preview import write_preview
    from dashboards.provisioning import dashboards_json
    from dashboards.queries import parse_time

    token, err = _token(args.influx_token_env, "--influx-token-env")
    if err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    site = _load(args.site)
    if site is None:
        return 1
    try:
        from_ms, to_ms = parse_time(args.from_), parse_time(args.to)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = InfluxQuery(args.influx, args.db, SecretValue(token) if token else None)
    results = write_preview(list(dashboards_json(site, _datasource(args)).values()), client, args.out,
                            from_ms, to_ms)
    empty = [r for r in results if r.error or r.rows == 0]
    print(f"{len(results)} panels rendered to {args.out / 'index.html'}; {len(results) - len(empty)} with data")
    for r in empty:
        print(f"  {r.dashboard_uid} / {r.title}: {r.error or 'no data'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboards", help="Grafana dashboards as code: build, push, preview")
    dsub = p.add_subparsers(dest="dashboards_cmd", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--site", type=Path, default=_EXAMPLE_SITE, help="site file (default: the Tétouan example)")
        q.add_argument("--datasource-uid", default="iozera-influxdb", help="Grafana datasource uid")

    b = dsub.add_parser("build", help="write dashboard JSON and Grafana provisioning files")
    common(b)
    b.add_argument("--out", type=Path, required=True, help="output directory")
    b.add_argument("--influx-url", default="http://127.0.0.1:8086", help="InfluxDB URL as Grafana reaches it")
    b.add_argument("--db", default="dcim", help="InfluxDB database")
    b.add_argument("--token-env", default=None,
                   help="name of the variable holding the InfluxDB token in Grafana's environment")
    b.set_defaults(func=cmd_build)

    u = dsub.add_parser("push", help="create/update datasource, folder and dashboards through Grafana's API")
    common(u)
    u.add_argument("--url", required=True, help="Grafana URL, e.g. http://127.0.0.1:3000")
    u.add_argument("--token-env", required=True, help="environment variable holding the Grafana API token")
    u.add_argument("--influx-url", default="http://127.0.0.1:8086", help="InfluxDB URL as Grafana reaches it")
    u.add_argument("--db", default="dcim", help="InfluxDB database")
    u.add_argument("--influx-token-env", default=None, help="environment variable holding the InfluxDB token")
    u.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    u.set_defaults(func=cmd_push)

    v = dsub.add_parser("preview", help="run every panel query against InfluxDB; one PNG per panel + index.html")
    common(v)
    v.add_argument("--influx", required=True, help="InfluxDB URL")
    v.add_argument("--db", default="dcim", help="InfluxDB database")
    v.add_argument("--out", type=Path, required=True, help="output directory")
    v.add_argument("--from", dest="from_", default="now-1h", help="range start: now-1h, ISO 8601 or epoch ms")
    v.add_argument("--to", default="now", help="range end (default now)")
    v.add_argument("--influx-token-env", default=None, help="environment variable holding the InfluxDB token")
    v.set_defaults(func=cmd_preview)
