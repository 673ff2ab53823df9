"""The ``dcim`` command tree: a core command builds without the other areas' modules."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dcim.cli import CORE_COMMANDS, EXTENSIONS

_PROBE = """
import json, sys
from dcim.cli import build_parser, EXTENSIONS
parser = build_parser(sys.argv[1:])
print(json.dumps([sorted(n for n in EXTENSIONS if n in sys.modules),
                  sorted(parser._subparsers._group_actions[0].choices)]))
"""


def _tree(*argv: str) -> tuple[list[str], list[str]]:
    """(extension modules imported, sub-commands offered) for a fresh ``dcim`` with ``argv``."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60, check=True)
    imported, commands = json.loads(out.stdout)
    return imported, commands


@pytest.mark.parametrize("argv", [("run", "--config", "x.yaml"), ("-v", "probe", "snmp://127.0.0.1"),
                                  ("inventory", "check", "site.yaml")])
def test_a_core_command_imports_no_extension(argv):
    imported, commands = _tree(*argv)
    assert imported == [] and sorted(commands) == sorted(CORE_COMMANDS)


@pytest.mark.parametrize("argv", [(), ("--help",), ("report", "pue"), ("rn",)])
def test_any_other_command_line_gets_the_whole_tree(argv):
    imported, commands = _tree(*argv)
    assert imported == sorted(EXTENSIONS)
    assert {"run", "report", "alerts", "simulate", "derived", "demo"} <= set(commands)


def test_run_parses_the_same_with_and_without_the_extensions():
    from dcim.cli import build_parser

    argv = ["run", "--config", "c.yaml", "--shard", "1/3", "--alerts", "r.yaml", "--state-dir", "s"]
    lean, whole = build_parser(argv).parse_args(argv), build_parser([]).parse_args(argv)
    assert vars(lean) == vars(whole) and lean.shard == "1/3"
