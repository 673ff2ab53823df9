"""Data-driven inventory checks: each folder under cases/ holds a broken site.yaml
and expected.err, the exact lines ``dcim inventory check`` must print (one per
problem, ``file:line: field: message``).  Adding a regression case means adding
a folder, not code."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inventory import InventoryError, load_site

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_inventory_reports_file_line_and_field(case: Path):
    expected = (case / "expected.err").read_text().splitlines()
    assert expected, "a case must expect at least one problem"
    with pytest.raises(InventoryError) as err:
        load_site(case / "site.yaml")
    got = [str(i).replace(str(case / "site.yaml"), "site.yaml") for i in err.value.issues]
    assert got == expected
    for line in got:
        assert line.startswith("site.yaml:"), line
        assert "Traceback" not in line


@pytest.mark.parametrize("case", CASES[:3], ids=[c.name for c in CASES[:3]])
def test_cli_prints_one_line_per_problem_and_fails(case: Path):
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", "site.yaml"],
                          cwd=case, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[:-1] == (case / "expected.err").read_text().splitlines()
    assert "Traceback" not in proc.stderr


def test_clear_text_secrets_never_echoed():
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "inventory", "check", "site.yaml"],
                          cwd=Path(__file__).parent / "cases" / "clear_text_secret", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "hunter2" not in proc.stderr + proc.stdout
    assert "public-but-secret" not in proc.stderr + proc.stdout
