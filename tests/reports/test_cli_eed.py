"""CLI exit codes and messages, and the EED export, against a real influxd."""
from __future__ import annotations

import csv
import io
import json

import pytest

from dcim.cli import main
from report_datasets import dataset_b


@pytest.fixture(scope="module")
def site_b(influx_server, tmp_path_factory):
    ds = dataset_b()
    influx_server.create_database("reports_eed")
    ds.load(influx_server.url, "reports_eed")
    d = tmp_path_factory.mktemp("eed")
    return ds, ds.write_site(d / "site.yaml"), d


def args(influx_server, site, *extra: str, db: str = "reports_eed") -> list[str]:
    return ["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", db, *extra]


def test_bad_dates_give_exit_2_and_a_clear_message(influx_server, site_b, capsys):
    _, site, _ = site_b
    assert main(args(influx_server, site, "--from", "2026-13-01", "--to", "2026-02-01")) == 2
    assert "--from '2026-13-01' is not a date" in capsys.readouterr().err
    assert main(args(influx_server, site, "--from", "2026-02-01", "--to", "2026-01-01")) == 2
    assert "must be after --from" in capsys.readouterr().err


def test_unknown_category_is_a_usage_error(influx_server, site_b, capsys):
    _, site, _ = site_b
    with pytest.raises(SystemExit) as exc:
        main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02", "--category", "4"))
    assert exc.value.code == 2
    assert "unknown category '4'" in capsys.readouterr().err


def test_site_without_boundary_meters_is_refused(influx_server, site_b, tmp_path, capsys):
    site = tmp_path / "noboundary.yaml"
    site.write_text("site: {id: nob}\ndevices:\n"
                    "  - {id: it-1, kind: meter, protocol: none, meter: {role: it, category: 1}}\n")
    assert main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02")) == 2
    assert "no boundary meter" in capsys.readouterr().err


def test_site_without_it_meters_of_category(influx_server, site_b, capsys):
    _, site, _ = site_b
    assert main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02", "--category", "3")) == 2
    assert "no IT meter of category 3" in capsys.readouterr().err


def test_bad_certificate_file_names_file_line_and_field(influx_server, site_b, tmp_path, capsys):
    _, site, _ = site_b
    certs = tmp_path / "certs.csv"
    certs.write_text("id,month,kwh\nGO-1,2026-01,100\nGO-2,2026-1,abc\n")
    assert main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02", "--certificates", str(certs))) == 2
    err = capsys.readouterr().err
    assert f"{certs}:3: month '2026-1' is not YYYY-MM" in err and "Traceback" not in err


def test_unreachable_influx_exits_3(site_b, capsys):
    from localservers.process import free_port
    _, site, _ = site_b
    code = main(["report", "pue", "--site", str(site), "--influx", f"http://127.0.0.1:{free_port()}", "--db", "x",
                 "--from", "2026-01", "--to", "2026-02"])
    assert code == 3 and "unreachable" in capsys.readouterr().err


def test_eed_export_reports_what_is_metered_and_lists_the_rest(influx_server, site_b):
    ds, site, d = site_b
    out_json, out_csv = d / "eed.json", d / "eed.csv"
    common = ["report", "eed", "--site", str(site), "--influx", influx_server.url, "--db", "reports_eed",
              "--from", "2026-01", "--to", "2026-03", "--category", "2", "--integrate-power", "pdu-2"]
    assert main([*common, "--format", "json", "--out", str(out_json)]) == 0
    assert main([*common, "--format", "csv", "--out", str(out_csv)]) == 0
    doc = json.loads(out_json.read_text())
    kpis = doc["kpis"]
    fuel_kwh = sum(ds.truth["fuel_l"]) * 9.9
    assert kpis["total_energy_consumption"]["value"] == pytest.approx(sum(ds.truth["grid"]) + fuel_kwh, abs=1e-3)
    assert kpis["renewable_energy_ppa"]["value"] == pytest.approx(sum(ds.truth["ppa"]), abs=1e-3)
    assert kpis["pue"]["value"] == pytest.approx(
        kpis["total_energy_consumption"]["value"] / kpis["it_energy_consumption"]["value"], abs=1e-3)
    # no water and no heat-reuse meters in this site: listed as missing with a reason, never given a value
    for name in ("wue", "total_water_input", "erf", "waste_heat_reused"):
        assert name not in kpis and doc["missing"][name]
    assert any("calendar year" in n for n in doc["notes"])
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    status = {r["indicator"]: r["status"] for r in rows}
    assert status["pue"] == "reported" and status["erf"] == "missing"
    assert {r["indicator"] for r in rows if r["status"] == "reported"} == set(kpis)


def test_example_site_without_data_still_renders_and_says_so(influx_server, influx_db, tmp_path, capsys):
    """The shared example site, nothing written yet: figures undefined (never invented), every meter flagged."""
    from pathlib import Path
    example = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"
    base = ["report", "pue", "--site", str(example), "--influx", influx_server.url, "--db", influx_db,
            "--from", "2026-01", "--to", "2026-02"]
    out = tmp_path / "empty.json"
    assert main([*base, "--format", "json", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["total"]["pue"] is None and rep["total"]["e_dc_kwh"] == 0.0
    err = capsys.readouterr().err
    assert "meter-util-a: no energy_kwh readings" in err and "meter-ups-1a" in err
    assert main([*base, "--format", "pdf", "--out", str(tmp_path / "empty.pdf")]) == 0
    assert (tmp_path / "empty.pdf").read_bytes().startswith(b"%PDF")


def test_invalid_site_file_names_file_and_line(influx_server, tmp_path, capsys):
    site = tmp_path / "bad.yaml"
    site.write_text("site: {id: bad}\ndevices:\n  - id: it-1\n    kind: meter\n    protocol: none\n"
                    "    meter: {role: it}\n")
    assert main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02")) == 2
    err = capsys.readouterr().err
    assert str(site) in err and "category" in err and "Traceback" not in err


def test_integrate_power_for_an_unknown_meter_is_refused(influx_server, site_b, capsys):
    _, site, _ = site_b
    assert main(args(influx_server, site, "--from", "2026-01", "--to", "2026-02", "--category", "2",
                     "--integrate-power", "pdu-9")) == 2
    assert "pdu-9" in capsys.readouterr().err
