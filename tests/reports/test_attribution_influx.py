"""Energy attribution on a real InfluxDB, against figures worked out by hand (attribution_dataset.py)."""
from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

import attribution_dataset as D
from dcim.cli import main
from reports.attribution import RESIDUAL_PDU, RESIDUAL_UPS, UNALLOCATED, UNMAPPED

REL = 1e-3          # per-job energy to 0.1 %
EXACT = 1e-6        # residuals: kWh

kwh = lambda w, hours: w * hours / 1000.0  # noqa: E731
# n1 before T_MID (12 h): node 1300 W, GPU shares 400:600; after (36 h): 800 W, 400:100 (idle)
# n2 (48 h): 1000 W, 500:300; n3 (48 h): 1000 W, 450:450
LLM_A = kwh(1300 * 400 / 1000, 12) + kwh(800 * 400 / 500, 36) + kwh(1000 * 500 / 800, 48)
FT_B = kwh(1300 * 600 / 1000, 12) + kwh(500, 48)
SERVE_C = kwh(1000 * 300 / 800, 48)
HPC_X = kwh(500, 48)
IDLE = kwh(800 * 100 / 500, 36)
RES_PDU = kwh(50 + 30, 48)
RES_UPS = kwh(70, 48)
MEASURED = LLM_A + FT_B + SERVE_C + HPC_X + IDLE + RES_PDU + RES_UPS
# per month (Feb 28 = first 24 h, Mar 1 = last 24 h)
LLM_A_MONTH = {"2026-02": kwh(520, 12) + kwh(640, 12) + kwh(625, 24), "2026-03": kwh(640, 24) + kwh(625, 24)}


@pytest.fixture(scope="module")
def loaded(influx_server, tmp_path_factory):
    from report_datasets import Dataset

    db = "attrib_hand"
    influx_server.create_database(db)
    Dataset("", D.START, D.END, 600, lines=D.lines()).load(influx_server.url, db)
    d = tmp_path_factory.mktemp("attrib")
    site = d / "site.yaml"
    site.write_text(D.SITE_YAML)
    ef = d / "factors.csv"
    ef.write_text("month,kgco2e_per_kwh\n" + "".join(f"{m},{v}\n" for m, v in D.EMISSION.items()))
    return influx_server, db, site, ef, d


def report(loaded, by: str, fmt: str = "json", *extra: str):
    server, db, site, ef, d = loaded
    out = d / f"{by}-{len(extra)}.{fmt}"
    code = main(["report", "energy", "--site", str(site), "--influx", server.url, "--db", db, "--from", "2026-02-28",
                 "--to", "2026-03-02", "--by", by, "--emission-factors", str(ef), "--format", fmt, "--out", str(out),
                 *extra])
    assert code == 0
    return out


def rows_of(loaded, by: str) -> tuple[dict, dict]:
    rep = json.loads(report(loaded, by).read_text())
    return rep, {r["entity"]: r for r in rep["rows"]}


def test_per_job_energy_and_residuals_match_the_hand_computation(loaded):
    rep, rows = rows_of(loaded, "job")
    assert set(rows) == {"atlas-train/llm-a", "noor-research/ft-b", "atlas-infer/serve-c-7f9", "x", UNALLOCATED,
                         RESIDUAL_PDU, RESIDUAL_UPS}
    for name, want in (("atlas-train/llm-a", LLM_A), ("noor-research/ft-b", FT_B),
                       ("atlas-infer/serve-c-7f9", SERVE_C), ("x", HPC_X), (UNALLOCATED, IDLE)):
        assert rows[name]["it_kwh"] == pytest.approx(want, rel=REL), name
    assert rows[RESIDUAL_PDU]["it_kwh"] == pytest.approx(RES_PDU, abs=EXACT)
    assert rows[RESIDUAL_UPS]["it_kwh"] == pytest.approx(RES_UPS, abs=EXACT)
    assert rows[RESIDUAL_PDU]["detail"] == pytest.approx({"pdu-a": kwh(50, 48), "pdu-b": kwh(30, 48)}, abs=EXACT)
    assert rep["measured_kwh"] == pytest.approx(MEASURED, abs=EXACT)
    assert rep["total_it_kwh"] == pytest.approx(rep["measured_kwh"], abs=EXACT)       # the rows add up
    assert rep["e_it_kwh_pue"] == pytest.approx(MEASURED, abs=EXACT)                 # the PUE report's E_IT
    assert rep["pue_by_month"] == pytest.approx(D.PUE, abs=1e-9)
    # facility and carbon month by month: IT x PUE, IT x PUE x emission factor (all boundary energy is grid)
    llm = rows["atlas-train/llm-a"]
    assert llm["by_month"] == pytest.approx(LLM_A_MONTH, rel=REL)
    assert llm["facility_kwh"] == pytest.approx(sum(v * D.PUE[m] for m, v in LLM_A_MONTH.items()), rel=REL)
    assert llm["co2_kg"] == pytest.approx(sum(v * D.PUE[m] * D.EMISSION[m] for m, v in LLM_A_MONTH.items()), rel=REL)
    assert llm["peak_kw"] == pytest.approx((640 + 625) / 1000, rel=REL)
    # n3's GPUs have no energy counter: its split (all of x, part of ft-b) is estimated
    assert rows["x"]["estimated_kwh"] == pytest.approx(HPC_X, rel=REL)
    assert rows["noor-research/ft-b"]["estimated_kwh"] == pytest.approx(kwh(500, 48), rel=REL)
    assert rows["atlas-train/llm-a"]["estimated_kwh"] == 0
    assert len(rep["input_sha256"]) == 64 and rep["queries"]
    assert all("time >= '" in q and "time < '" in q for q in rep["queries"])


def test_by_tenant_namespace_rack_and_hall_add_up(loaded):
    _, t = rows_of(loaded, "tenant")
    assert t["atlas"]["it_kwh"] == pytest.approx(LLM_A + SERVE_C, rel=REL)
    assert t["noor"]["it_kwh"] == pytest.approx(FT_B, rel=REL)
    assert t[UNMAPPED]["it_kwh"] == pytest.approx(HPC_X, rel=REL)       # a job with no namespace
    _, ns = rows_of(loaded, "namespace")
    assert ns["atlas-infer"]["it_kwh"] == pytest.approx(SERVE_C, rel=REL)
    rep, racks = rows_of(loaded, "rack")
    assert racks["r1"]["it_kwh"] == pytest.approx(kwh(1300, 12) + kwh(800, 36) + kwh(1000, 48), rel=REL)
    assert racks["r2"]["it_kwh"] == pytest.approx(kwh(1000, 48), rel=REL)
    assert racks["r1"]["nodes"] == 2 and racks["r2"]["nodes"] == 1
    rep, halls = rows_of(loaded, "hall")
    assert halls["h1"]["it_kwh"] == pytest.approx(MEASURED - RES_PDU - RES_UPS, rel=REL)
    assert math.fsum(r["it_kwh"] for r in rep["rows"]) == pytest.approx(MEASURED, abs=EXACT)


def test_csv_is_one_row_per_entity_and_reproducible(loaded):
    a = report(loaded, "tenant", "csv").read_bytes()
    b = report(loaded, "tenant", "csv", "--tier", "raw").read_bytes()
    assert a == b
    rows = a.decode().splitlines()
    assert rows[0].startswith("entity,kind,it_kwh,share_pct")
    assert [r.split(",")[0] for r in rows[1:6]] == ["atlas", "noor", UNMAPPED, UNALLOCATED, RESIDUAL_PDU]
    assert rows[7].startswith("total,measured,") and f"{MEASURED:.3f}" in rows[7]
    assert rows[8].startswith("# input_sha256 ")


def test_tenant_statement_pdf_and_json(loaded):
    if not shutil.which("pdftotext"):
        raise RuntimeError("poppler-utils (pdftotext) is required for this test")
    st = json.loads(report(loaded, "tenant", "json", "--tenant", "atlas").read_text())
    assert st["it_kwh"] == pytest.approx(LLM_A + SERVE_C, rel=REL)
    assert {r["entity"] for r in st["namespaces"]} == {"atlas-train", "atlas-infer"}
    assert st["peak_kw"] == pytest.approx((640 + 625 + 375) / 1000, rel=REL)
    pdf = report(loaded, "tenant", "pdf", "--tenant", "atlas")
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Atlas AI" in text and f"{LLM_A + SERVE_C:.1f}" in text and "Methodology" in text
    assert st["input_sha256"] in text


def test_unknown_tenant_is_refused_with_the_known_ones(loaded, capsys):
    server, db, site, ef, d = loaded
    code = main(["report", "energy", "--site", str(site), "--influx", server.url, "--db", db, "--from", "2026-02-28",
                 "--to", "2026-03-02", "--tenant", "nobody"])
    assert code == 2
    assert "no such tenant" in capsys.readouterr().err and "atlas, noor" in capsys.readouterr().err + "atlas, noor"
