"""Hostile input, data-driven: each folder under cases/ is one attack on a file the project reads.

A case holds ``cmd`` (the ``dcim`` arguments), its input files (or ``make.py``,
run first in the case's copy, for inputs too big or too odd for git: a 50 MB
file, a secret with mode 0644), and ``expected.err``: the exact lines the
command must print on stderr (``{case}`` stands for the case's directory,
``{snmp_profiles}`` and ``{modbus_profiles}`` for the shipped SNMP and Modbus profile names,
comma-separated and sorted, as the profile registries list them: a new profile does not
rewrite a case, and the whole line is still compared).
Every case must exit non-zero without a traceback, under an address-space
limit of :data:`MEMORY_MB` and a CPU limit of :data:`CPU_S` (a bomb that
expanded would hit either and fail the case with MemoryError or SIGXCPU).
Adding a regression means adding a folder.

``HOSTILE_RECORD=1`` writes what each case printed to its ``expected.err``
(for a new case; review the file before committing it).
"""
from __future__ import annotations

import os
import resource
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.snmp.profiles import default_profiles
from collectors.modbus.profile import profile_names as modbus_profile_names

REPO = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())
MEMORY_MB = 400
CPU_S = 20


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_MB << 20, MEMORY_MB << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S))


def _placeholders() -> dict[str, str]:
    """What ``{snmp_profiles}``/``{modbus_profiles}`` stand for: the registries' names, as the errors list them."""
    return {"{snmp_profiles}": ", ".join(sorted(default_profiles())),
            "{modbus_profiles}": ", ".join(modbus_profile_names())}


def _expand(text: str) -> str:
    for placeholder, names in _placeholders().items():
        text = text.replace(placeholder, names)
    return text


def _record(text: str) -> str:
    for placeholder, names in _placeholders().items():
        text = text.replace(names, placeholder)
    return text


def _env() -> dict[str, str]:
    """A bare environment: no DCIM_* secrets or settings from the caller leak into a case."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_with_file_line_field(case: Path, tmp_path: Path):
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns("expected.err", "cmd", "make.py"))
    if (case / "make.py").exists():
        subprocess.run([sys.executable, str(case / "make.py")], cwd=work, check=True, timeout=120)
    args = shlex.split((case / "cmd").read_text())
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", *args], cwd=work, env=_env(), capture_output=True,
                          text=True, timeout=120, preexec_fn=_limits)
    got = proc.stderr.replace(str(work), "{case}").strip().splitlines()
    if os.environ.get("HOSTILE_RECORD"):
        (case / "expected.err").write_text(_record("\n".join(got)) + "\n")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode not in (0, -9, -24), (proc.returncode, proc.stderr[-2000:])  # not OK, not killed
    assert got == _expand((case / "expected.err").read_text()).splitlines()
    assert proc.stdout.strip() == "" or "OK" not in proc.stdout
    if (case / "make.py").exists() or any(case.glob("*secret*")):
        assert "hunter2" not in proc.stdout + proc.stderr
