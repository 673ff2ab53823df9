"""``dcim report pue``, ``dcim report eed`` and ``dcim report capacity`` (``dcim report energy``:
:mod:`dcim.commands.report_energy`).

Exit codes: 0 report written; 2 bad arguments or inputs (dates, category,
site file, side files, a site without the meters PUE needs); 3 InfluxDB
unreachable or a query failed.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dcim.commands.report_output import fail as _fail, write as _write

__all__ = ["register"]


def _category(text: str) -> int:
    if text not in ("1", "2", "3"):
        raise argparse.ArgumentTypeError(
            f"unknown category {text!r}: use 1 (UPS output), 2 (PDU output) or 3 (IT equipment input)")
    return int(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=Path, required=True, help="site inventory file (meters and their roles)")
    p.add_argument("--influx", required=True, help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
    p.add_argument("--db", required=True, help="database (or DBRP-mapped bucket)")
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding an InfluxDB token")
    p.add_argument("--from", dest="start", required=True, help="period start, inclusive (YYYY-MM[-DD], UTC)")
    p.add_argument("--to", dest="end", required=True, help="period end, exclusive (YYYY-MM[-DD], UTC)")
    p.add_argument("--category", type=_category, default=1,
                   help="IT energy measurement category: 1 UPS output, 2 PDU output, 3 IT input (default 1)")
    p.add_argument("--out", type=Path, help="output file (default: standard output; required for pdf)")
    p.add_argument("--integrate-power", default="", metavar="METER,...",
                   help="meters without an energy counter: integrate power_w instead (an estimate, reported)")
    ef = p.add_mutually_exclusive_group()
    ef.add_argument("--emission-factor", type=float, metavar="KG_PER_KWH",
                    help="grid emission factor for every month (default: the site's)")
    ef.add_argument("--emission-factors", type=Path, metavar="FILE", help="CSV month,kgco2e_per_kwh")
    p.add_argument("--certificates", type=Path, metavar="FILE", help="CSV id,month,kwh[,source] (guarantees of origin)")
    p.add_argument("--tier", default="auto", metavar="auto|raw|NAME",
                   help="read raw readings or a rollup tier (default auto: the hourly tier where the period "
                        "allows; see docs/storage.md)")
    p.add_argument("--generated-at", help="timestamp to print in the report (none by default: output is reproducible)")


def register(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("report", help="auditor reports from InfluxDB: energy-based PUE, REF, CUE, WUE; EU EED export")
    rsub = rp.add_subparsers(dest="report_kind", required=True)
    p = rsub.add_parser("pue", help="PUE report per month and for the period (pdf, html, csv, json)")
    _common(p)
    p.add_argument("--format", choices=("pdf", "html", "csv", "json"), default="json")
    p.set_defaults(func=_cmd_pue)
    e = rsub.add_parser("eed", help="EU Energy Efficiency Directive KPIs (Delegated Regulation 2024/1364)")
    _common(e)
    e.add_argument("--format", choices=("csv", "json"), default="json")
    e.set_defaults(func=_cmd_eed)
    c = rsub.add_parser("capacity", help="rated, allocated, peak, headroom and stranded power per PDU, UPS, "
                                         "transformer, rack, row and hall (csv, json, html)")
    _capacity_args(c)
    c.set_defaults(func=_cmd_capacity)
    from dcim.commands.report_energy import register_energy
    register_energy(rsub)


def _build(args: argparse.Namespace):
    from inventory import InventoryError, load_site
    from inventory.secrets import SecretValue
    from reports.build import ReportRequest, build_pue_report
    from reports.inputs import parse_period, read_certificates, read_emission_factors
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery, QueryError

    try:
        start, end = parse_period(args.start, args.end)
        site = load_site(args.site)
        factors = read_emission_factors(args.emission_factors) if args.emission_factors else None
        certs = read_certificates(args.certificates) if args.certificates else []
        if args.emission_factor is not None and not 0 <= args.emission_factor <= 3:
            raise ReportError(f"--emission-factor {args.emission_factor} is outside 0..3 kgCO2e/kWh")
        token = None
        if args.token_env:
            if args.token_env not in os.environ:
                raise ReportError(f"--token-env {args.token_env}: that environment variable is not set")
            token = SecretValue(os.environ[args.token_env])
        req = ReportRequest(start, end, args.category,
                            frozenset(x.strip() for x in args.integrate_power.split(",") if x.strip()),
                            factors, args.emission_factor, certs, tier=args.tier)
        if args.format == "pdf" and not args.out:
            raise ReportError("--format pdf needs --out FILE")
        return build_pue_report(site, InfluxQuery(args.influx, args.db, token), req), None
    except InventoryError as exc:
        exc.print_issues()
        return None, 2
    except ReportError as exc:
        return None, _fail(str(exc))
    except QueryError as exc:
        return None, _fail(str(exc), 3)


def _cmd_pue(args: argparse.Namespace) -> int:
    report, code = _build(args)
    if report is None:
        return code
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    from reports.build import render
    return _write(args, render(report, args.format, args.generated_at))


def _cmd_eed(args: argparse.Namespace) -> int:
    report, code = _build(args)
    if report is None:
        return code
    from reports.eed import eed_csv, eed_json, eed_kpis
    kpis = eed_kpis(report)
    return _write(args, eed_json(kpis) if args.format == "json" else eed_csv(kpis))


def _capacity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=Path, required=True, help="site inventory file (ratings, feeds, redundancy)")
    p.add_argument("--influx", required=True, help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
    p.add_argument("--db", required=True, help="database (or DBRP-mapped bucket)")
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding an InfluxDB token")
    p.add_argument("--from", dest="start", required=True, help="window start, inclusive (YYYY-MM[-DD], UTC)")
    p.add_argument("--to", dest="end", required=True, help="window end, exclusive (YYYY-MM[-DD], UTC)")
    p.add_argument("--format", choices=("csv", "json", "html"), default="json")
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    p.add_argument("--tier", default="auto", metavar="auto|raw|NAME",
                   help="read raw derived samples or a rollup tier (default auto: raw up to 7 days, "
                        "else the finest tier; reports/README.md)")
    p.add_argument("--generated-at", help="timestamp to print in the report (none by default: output is reproducible)")


def _cmd_capacity(args: argparse.Namespace) -> int:
    from inventory import InventoryError, load_site
    from inventory.secrets import SecretValue
    from reports.capacity_query import build_capacity_report
    from reports.capacity_render import render_capacity
    from reports.inputs import parse_period
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery, QueryError

    try:
        start, end = parse_period(args.start, args.end)
        site = load_site(args.site)
        token = None
        if args.token_env:
            if args.token_env not in os.environ:
                raise ReportError(f"--token-env {args.token_env}: that environment variable is not set")
            token = SecretValue(os.environ[args.token_env])
        report = build_capacity_report(site, InfluxQuery(args.influx, args.db, token), start, end, args.tier)
    except InventoryError as exc:
        exc.print_issues()
        return 2
    except ReportError as exc:
        return _fail(str(exc))
    except QueryError as exc:
        return _fail(str(exc), 3)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return _write(args, render_capacity(report, args.format, args.generated_at))
