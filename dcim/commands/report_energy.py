"""``dcim report energy``: who used the energy (tenant, namespace, job, rack, hall), and tenant statements.

Exit codes as ``dcim report pue``: 0 written; 2 bad arguments or inputs; 3 InfluxDB
unreachable or a query failed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register_energy"]


def register_energy(rsub: argparse._SubParsersAction) -> None:
    from dcim.commands.report_output import add_source_args
    from reports.attribution import BY_KINDS

    p = rsub.add_parser("energy", help="energy attribution: IT energy, facility share, carbon and peak per tenant, "
                                       "namespace, job, rack or hall (csv, json, html, pdf); --tenant: one statement")
    add_source_args(p, "power chain, tenants")
    p.add_argument("--by", choices=BY_KINDS, default="tenant", help="one row per ... (default tenant)")
    p.add_argument("--tenant", metavar="ID", help="one tenant's statement (energy, facility share, carbon, peak)")
    p.add_argument("--format", choices=("pdf", "html", "csv", "json"), default="json")
    p.add_argument("--out", type=Path, help="output file (default: standard output; required for pdf)")
    p.add_argument("--category", choices=("1", "2", "3"), default="1",
                   help="IT category of the PUE that sets the facility share (default 1, UPS output)")
    p.add_argument("--pue-scope", choices=("hall", "site"), default="hall",
                   help="facility share by each hall's own PUE where its meters make one (default), or the site's")
    ef = p.add_mutually_exclusive_group()
    ef.add_argument("--emission-factor", type=float, metavar="KG_PER_KWH", help="grid emission factor for every month")
    ef.add_argument("--emission-factors", type=Path, metavar="FILE", help="CSV month,kgco2e_per_kwh")
    p.add_argument("--tier", default="auto", metavar="auto|raw|NAME", help="raw readings or a rollup tier "
                   "(default auto: the hourly tier where the period allows, as the PUE report)")
    p.add_argument("--generated-at", help="timestamp to print in the report (none by default: output is reproducible)")
    p.set_defaults(func=_cmd_energy)


def _cmd_energy(args: argparse.Namespace) -> int:
    from dcim.commands.report_output import guarded, influx_from_args, write_report
    from inventory import load_site
    from reports.attribution_build import EnergyRequest, build_energy_report, tenant_statement
    from reports.attribution_render import render_energy, render_statement
    from reports.inputs import parse_period, read_emission_factors
    from reports.pue import ReportError

    def build():
        start, end = parse_period(args.start, args.end)
        site = load_site(args.site)
        if args.tenant and args.tenant not in {t.id for t in site.tenants}:
            raise ReportError(f"--tenant {args.tenant}: no such tenant in {args.site} "
                              f"(tenants: {', '.join(sorted(t.id for t in site.tenants)) or 'none'})")
        if args.format == "pdf" and not args.out:
            raise ReportError("--format pdf needs --out FILE")
        if args.emission_factor is not None and not 0 <= args.emission_factor <= 3:
            raise ReportError(f"--emission-factor {args.emission_factor} is outside 0..3 kgCO2e/kWh")
        factors = read_emission_factors(args.emission_factors) if args.emission_factors else None
        influx = influx_from_args(args)
        req = EnergyRequest(start, end, by="namespace" if args.tenant else args.by, category=int(args.category),
                            tier=args.tier, emission_factor=args.emission_factor, emission_factors=factors,
                            pue_scope=args.pue_scope)
        report = build_energy_report(site, influx, req)
        if args.tenant:
            return report, render_statement(tenant_statement(site, report, args.tenant), args.format,
                                            args.generated_at)
        return report, render_energy(report, args.format, args.generated_at)

    built, code = guarded(build)
    if built is None:
        return code
    report, data = built
    return write_report(args, report.warnings, data)
