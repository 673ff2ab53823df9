"""What every ``dcim report`` subcommand shares: the InfluxDB source arguments, how it fails (one place for the
wording and exit codes) and how it writes its output."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["add_source_args", "fail", "guarded", "influx_from_args", "write", "write_report"]


def add_source_args(p: argparse.ArgumentParser, site_help: str, span: str = "period") -> None:
    """``--site``, ``--influx``, ``--db``, ``--token-env``, ``--from`` and ``--to`` (``span``: what the help calls
    the interval)."""
    p.add_argument("--site", type=Path, required=True, help=f"site inventory file ({site_help})")
    p.add_argument("--influx", required=True, help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
    p.add_argument("--db", required=True, help="database (or DBRP-mapped bucket)")
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding an InfluxDB token")
    p.add_argument("--from", dest="start", required=True, help=f"{span} start, inclusive (YYYY-MM[-DD], UTC)")
    p.add_argument("--to", dest="end", required=True, help=f"{span} end, exclusive (YYYY-MM[-DD], UTC)")


def influx_from_args(args: argparse.Namespace):
    """The :class:`~sinks.influx_query.InfluxQuery` ``--influx``/``--db`` name, with the token read from the
    variable ``--token-env`` names (never from the command line, so it stays out of shell history and ps)."""
    from inventory.secrets import SecretValue
    from reports.pue import ReportError
    from sinks.influx_query import InfluxQuery

    token = None
    if args.token_env:
        if args.token_env not in os.environ:
            raise ReportError(f"--token-env {args.token_env}: that environment variable is not set")
        token = SecretValue(os.environ[args.token_env])
    return InfluxQuery(args.influx, args.db, token)


def guarded(build: Callable[[], Any]) -> tuple[Any, int | None]:
    """``(build(), None)``, or ``(None, exit code)`` with the reason printed: 2 for a bad inventory (its issues,
    file:line) or bad inputs, 3 when InfluxDB is unreachable or a query failed."""
    from inventory import InventoryError
    from reports.pue import ReportError
    from sinks.influx_query import QueryError

    try:
        return build(), None
    except InventoryError as exc:
        exc.print_issues()
        return None, 2
    except ReportError as exc:
        return None, fail(str(exc))
    except QueryError as exc:
        return None, fail(str(exc), 3)


def fail(message: str, code: int = 2) -> int:
    print(f"dcim report: {message}", file=sys.stderr)
    return code


def write_report(args: argparse.Namespace, warnings: list[str], data: str | bytes) -> int:
    """The report's warnings on standard error (each ``warning: ...``), then the report as :func:`write`."""
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return write(args, data)


def write(args: argparse.Namespace, data: str | bytes) -> int:
    """``data`` to ``args.out`` (parents created), or to standard output when no ``--out`` was given."""
    if args.out is None:
        sys.stdout.write(data if isinstance(data, str) else data.decode())
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            args.out.write_text(data, encoding="utf-8", newline="")
        else:
            args.out.write_bytes(data)
    except OSError as exc:
        return fail(f"{args.out}: cannot write: {exc.strerror or exc}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
