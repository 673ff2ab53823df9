"""End to end against a real influxd: the report's figures equal the ones summed by hand from the generator."""
from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from dcim.cli import main
from report_datasets import dataset_a, dataset_b, epoch, linear_power_kwh

MONTHS_A = [("2026-01", epoch(2026, 1, 1), epoch(2026, 2, 1)), ("2026-02", epoch(2026, 2, 1), epoch(2026, 3, 1)),
            ("2026-03", epoch(2026, 3, 1), epoch(2026, 4, 1))]
MONTHS_B = MONTHS_A[:2]
TOL = 1e-3


@pytest.fixture(scope="module")
def loaded_a(influx_server, tmp_path_factory):
    ds = dataset_a()
    influx_server.create_database("reports_a")
    ds.load(influx_server.url, "reports_a")
    d = tmp_path_factory.mktemp("report_a")
    site = ds.write_site(d / "site.yaml")
    certs = d / "certs.csv"
    certs.write_text("id,month,kwh,source\n" + "".join(
        f"GO-{m},{m},{v},wind\n" for m, v in ds.extra["certificates"].items()))
    return ds, site, certs, d


@pytest.fixture(scope="module")
def loaded_b(influx_server, tmp_path_factory):
    ds = dataset_b()
    influx_server.create_database("reports_b")
    ds.load(influx_server.url, "reports_b")
    d = tmp_path_factory.mktemp("report_b")
    site = ds.write_site(d / "site.yaml")
    ef = d / "factors.csv"
    ef.write_text("month,kgco2e_per_kwh\n" + "".join(f"{m},{v}\n" for m, v in ds.extra["factors"].items()))
    return ds, site, ef, d


def run_a(influx_server, loaded_a, fmt: str, out_name: str, *extra: str) -> tuple[int, object]:
    ds, site, certs, d = loaded_a
    out = d / out_name
    code = main(["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", "reports_a",
                 "--from", "2026-01", "--to", "2026-04", "--certificates", str(certs), "--format", fmt,
                 "--out", str(out), *extra])
    return code, out


def test_dataset_a_matches_hand_computation(influx_server, loaded_a):
    ds = loaded_a[0]
    code, out = run_a(influx_server, loaded_a, "json", "a.json")
    assert code == 0
    rep = json.loads(out.read_text())
    assert [m["label"] for m in rep["months"]] == [m for m, _, _ in MONTHS_A]
    for got, (label, a, b) in zip(rep["months"], MONTHS_A):
        e_dc, e_it = ds.sum_in("boundary", a, b), ds.sum_in("it", a, b)
        ren = ds.sum_in("pv", a, b) + ds.sum_in("ppa", a, b) + ds.extra["certificates"].get(label, 0.0)
        assert got["e_dc_kwh"] == pytest.approx(e_dc, abs=TOL), label
        assert got["e_it_kwh"] == pytest.approx(e_it, abs=TOL), label
        assert got["pue"] == pytest.approx(e_dc / e_it, abs=TOL), label
        assert got["ref"] == pytest.approx(min(1.0, ren / e_dc), abs=TOL), label
        assert got["wue"] == pytest.approx(ds.sum_in("water", a, b) / e_it, abs=TOL), label
        hours = (b - a) // 3600
        want_cov = 100.0 * (hours - ds.extra["gap_hours"]) / hours if label == ds.extra["gap_month"] else 100.0
        assert got["coverage_pct"] == pytest.approx(want_cov, abs=TOL), label
    tot = rep["total"]
    e_dc, e_it = ds.sum_in("boundary", ds.start, ds.end), ds.sum_in("it", ds.start, ds.end)
    assert tot["pue"] == pytest.approx(e_dc / e_it, abs=TOL)
    assert tot["cue"] == pytest.approx(0.5 * e_dc / e_it, abs=TOL)   # all boundary energy is grid here
    matched = math.fsum(min(ds.truth["renewable"][k], ds.truth["boundary"][k]) for k in range(ds.steps()))
    assert tot["hourly_matched_kwh"] == pytest.approx(matched, abs=TOL)
    # the bridging list: one reset on meter-a, the swapped-out meter's bench counting ignored
    assert [(b["meter"], b["kind"], b["time"]) for b in rep["bridges"]] == [("meter-a", "reset", "2026-02-10T12:00:00Z")]
    meters = {m["id"]: m for m in rep["meters"]}
    assert "meter-pdu-x" not in meters                      # category 2 not mixed into a category 1 report
    assert meters["meter-b-old"]["total"] == pytest.approx(ds.sum_in("b", ds.start, ds.extra["swap"]), abs=TOL)
    assert meters["meter-b-new"]["total"] == pytest.approx(ds.sum_in("b", ds.extra["swap"], ds.end), abs=TOL)
    assert meters["meter-it-1"]["longest_gap_h"] == pytest.approx(31.0)
    assert len(rep["input_sha256"]) == 64 and rep["queries"]
    assert all("time >= '" in q and "time < '" in q for q in rep["queries"])


def test_csv_and_json_are_byte_identical_across_runs(influx_server, loaded_a):
    for fmt in ("csv", "json"):
        c1, o1 = run_a(influx_server, loaded_a, fmt, f"r1.{fmt}")
        c2, o2 = run_a(influx_server, loaded_a, fmt, f"r2.{fmt}")
        assert c1 == c2 == 0
        assert o1.read_bytes() == o2.read_bytes() and len(o1.read_bytes()) > 200
    rows = run_a(influx_server, loaded_a, "csv", "r3.csv")[1].read_text().splitlines()
    assert rows[0].startswith("period,start,end,e_dc_kwh,e_it_kwh,pue")
    assert [r.split(",")[0] for r in rows[1:]] == ["2026-01", "2026-02", "2026-03", "total"]


def test_dataset_b_category2_wrap_fuel_and_power_integration(influx_server, loaded_b):
    ds, site, ef, d = loaded_b
    out = d / "b.json"
    code = main(["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", "reports_b",
                 "--from", "2026-01-01", "--to", "2026-03-01", "--category", "2", "--integrate-power", "pdu-2",
                 "--emission-factors", str(ef), "--format", "json", "--out", str(out)])
    assert code == 0
    rep = json.loads(out.read_text())
    p0, slope = ds.extra["pdu2_p0"], ds.extra["pdu2_slope"]
    co2 = e_it_all = 0.0
    for got, (label, a, b) in zip(rep["months"], MONTHS_B):
        grid = ds.sum_in("grid", a, b)
        e_dc = grid + ds.sum_in("fuel_l", a, b) * 9.9
        pdu2 = linear_power_kwh(p0, slope, ds.start, a, b)
        e_it = ds.sum_in("pdu1", a, b) + pdu2
        assert got["e_dc_kwh"] == pytest.approx(e_dc, abs=TOL), label
        assert got["e_it_kwh"] == pytest.approx(e_it, abs=TOL), label
        assert got["pue"] == pytest.approx(e_dc / e_it, abs=TOL), label
        assert got["ref"] == pytest.approx(min(1.0, ds.sum_in("ppa", a, b) / e_dc), abs=TOL), label
        assert got["cue"] == pytest.approx(ds.extra["factors"][label] * grid / e_it, abs=TOL), label
        assert got["estimated_kwh"] == pytest.approx(pdu2, abs=TOL), label
        assert got["wue"] is None
        co2 += ds.extra["factors"][label] * grid
        e_it_all += e_it
    assert rep["total"]["cue"] == pytest.approx(co2 / e_it_all, abs=TOL)
    assert rep["months"][0]["fuel_l"] == pytest.approx(600.0, abs=TOL)
    assert [(b["meter"], b["kind"]) for b in rep["bridges"]] == [("util-1", "wrap")]
    assert rep["has_water"] is False
    assert {m["id"] for m in rep["meters"]} == {"util-1", "diesel-1", "pdu-1", "pdu-2", "wind-ppa"}


def test_pdf_renders_with_pue_figures(influx_server, loaded_a):
    if not shutil.which("pdftotext") or not shutil.which("pdfinfo"):
        raise RuntimeError("poppler-utils (pdftotext, pdfinfo) is required for this test")
    ds = loaded_a[0]
    code, out = run_a(influx_server, loaded_a, "pdf", "a.pdf")
    assert code == 0 and out.read_bytes().startswith(b"%PDF")
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")))
    assert pages >= 3
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    for _, a, b in MONTHS_A:
        assert f"{ds.sum_in('boundary', a, b) / ds.sum_in('it', a, b):.3f}" in text
    e = ds.sum_in("boundary", ds.start, ds.end) / ds.sum_in("it", ds.start, ds.end)
    assert f"{e:.3f}" in text
    assert "meter-a" in text and "reset" in text and "Methodology" in text
    assert json.loads(run_a(influx_server, loaded_a, "json", "h.json")[1].read_text())["input_sha256"] in text


def test_html_is_self_contained_with_charts(influx_server, loaded_a):
    code, out = run_a(influx_server, loaded_a, "html", "a.html")
    assert code == 0
    html = out.read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "http://" not in html.replace(influx_server.url, "") and "<script" not in html
    ds = loaded_a[0]
    e = ds.sum_in("boundary", ds.start, ds.end) / ds.sum_in("it", ds.start, ds.end)
    assert f"{e:.3f}" in html


def test_period_off_the_reading_grid_interpolates_at_the_edges(influx_server, loaded_a):
    """Start and end between readings: the counter is anchored by the readings just outside the period."""
    ds, site, certs, d = loaded_a
    a, b = epoch(2026, 1, 10) + 1800, epoch(2026, 3, 5, 12) + 1800

    def true(name: str, lo: int, hi: int) -> float:   # power is constant within each hour
        return math.fsum(v * max(0, min(hi, ds.step_start(k) + 3600) - max(lo, ds.step_start(k))) / 3600
                         for k, v in enumerate(ds.truth[name]))

    out = d / "edges.json"
    assert main(["report", "pue", "--site", str(site), "--influx", influx_server.url, "--db", "reports_a",
                 "--from", "2026-01-10T00:30:00Z", "--to", "2026-03-05T12:30:00Z", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    edges = [(a, epoch(2026, 2, 1)), (epoch(2026, 2, 1), epoch(2026, 3, 1)), (epoch(2026, 3, 1), b)]
    for got, (lo, hi) in zip(rep["months"], edges):
        assert got["e_dc_kwh"] == pytest.approx(true("boundary", lo, hi), abs=TOL)
        assert got["pue"] == pytest.approx(true("boundary", lo, hi) / true("it", lo, hi), abs=TOL)
    assert rep["total"]["e_it_kwh"] == pytest.approx(true("it", a, b), abs=TOL)
