"""``dcim report pue``, ``dcim report eed`` and ``dcim report capacity`` (``dcim report energy``:
:mod:`dcim.commands.report_energy`).

Exit codes: 0 report written; 2 bad arguments or inputs (dates, category,
site file, side files, a site without the meters PUE needs); 3 InfluxDB
unreachable or a query failed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dcim.commands.report_output import add_source_args, guarded, influx_from_args, write as _write, write_report

__all__ = ["register"]


def _category(text: str) -> int:
    if text not in ("1", "2", "3"):
        raise argparse.ArgumentTypeError(
            f"unknown category {text!r}: use 1 (UPS output), 2 (PDU output) or 3 (IT equipment input)")
    return int(text)


def _common(p: argparse.ArgumentParser) -> None:
    add_source_args(p, "meters and their roles")
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
    from inventory import load_site
    from reports.build import ReportRequest, build_pue_report
    from reports.inputs import parse_period, read_certificates, read_emission_factors
    from reports.pue import ReportError

    def build():
        start, end = parse_period(args.start, args.end)
        site = load_site(args.site)
        factors = read_emission_factors(args.emission_factors) if args.emission_factors else None
        certs = read_certificates(args.certificates) if args.certificates else []
        if args.emission_factor is not None and not 0 <= args.emission_factor <= 3:
            raise ReportError(f"--emission-factor {args.emission_factor} is outside 0..3 kgCO2e/kWh")
        influx = influx_from_args(args)
        req = ReportRequest(start, end, args.category,
                            frozenset(x.strip() for x in args.integrate_power.split(",") if x.strip()),
                            factors, args.emission_factor, certs, tier=args.tier)
        if args.format == "pdf" and not args.out:
            raise ReportError("--format pdf needs --out FILE")
        return build_pue_report(site, influx, req)

    return guarded(build)


def _cmd_pue(args: argparse.Namespace) -> int:
    report, code = _build(args)
    if report is None:
        return code
    from reports.build import render
    return write_report(args, report.warnings, render(report, args.format, args.generated_at))


def _cmd_eed(args: argparse.Namespace) -> int:
    report, code = _build(args)
    if report is None:
        return code
    from reports.eed import eed_csv, eed_json, eed_kpis
    kpis = eed_kpis(report)
    return _write(args, eed_json(kpis) if args.format == "json" else eed_csv(kpis))


def _capacity_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p, "ratings, feeds, redundancy", span="window")
    p.add_argument("--format", choices=("csv", "json", "html"), default="json")
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    p.add_argument("--tier", default="auto", metavar="auto|raw|NAME",
                   help="read raw derived samples or a rollup tier (default auto: raw up to 7 days, "
                        "else the finest tier; reports/README.md)")
    p.add_argument("--generated-at", help="timestamp to print in the report (none by default: output is reproducible)")


def _cmd_capacity(args: argparse.Namespace) -> int:
    from inventory import load_site
    from reports.capacity_query import build_capacity_report
    from reports.capacity_render import render_capacity
    from reports.inputs import parse_period

    def build():
        start, end = parse_period(args.start, args.end)
        site = load_site(args.site)
        return build_capacity_report(site, influx_from_args(args), start, end, args.tier)

    report, code = guarded(build)
    if report is None:
        return code
    return write_report(args, report.warnings, render_capacity(report, args.format, args.generated_at))
