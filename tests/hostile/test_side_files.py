"""Side CSVs of the reports (emission factors, certificates): bounded like the YAML files."""
from __future__ import annotations

import pytest

from reports.inputs import read_certificates, read_emission_factors
from reports.pue import ReportError


@pytest.mark.parametrize("body, message", [
    (b"month,kgco2e_per_kwh\n2026-01," + b"9" * 5000 + b"\n", "is outside 0..3"),
    (b"month,kgco2e_per_kwh\n2026-01,nan\n", "is outside 0..3"),
    (b"month,kgco2e_per_kwh\n2026-01,1e400\n", "is outside 0..3"),
    (b'month,kgco2e_per_kwh\n"' + b"x" * 200_000 + b'",1\n', "not CSV: field larger than field limit"),
    (b"month,kgco2e_per_kwh\n2026-01,0.5\xff\n", "not UTF-8 text"),
])
def test_hostile_emission_factor_files_give_one_clear_line(tmp_path, body, message):
    f = tmp_path / "ef.csv"
    f.write_bytes(body)
    with pytest.raises(ReportError) as err:
        read_emission_factors(f)
    assert message in str(err.value) and str(err.value).startswith(str(f))
    assert len(str(err.value)) < 300, "the error quotes the file instead of naming the line"


def test_an_oversized_side_file_is_refused_before_it_is_read(tmp_path):
    f = tmp_path / "certs.csv"
    with open(f, "wb") as fh:
        fh.write(b"id,month,kwh\n")
        fh.truncate(40 << 20)  # sparse: 40 MiB without writing them
    with pytest.raises(ReportError) as err:
        read_certificates(f)
    assert "larger than the 32 MiB limit" in str(err.value)
