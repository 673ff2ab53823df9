"""How every ``dcim report`` subcommand fails and writes its output (one place for the wording and exit codes)."""
from __future__ import annotations

import argparse
import sys

__all__ = ["fail", "write"]


def fail(message: str, code: int = 2) -> int:
    print(f"dcim report: {message}", file=sys.stderr)
    return code


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
