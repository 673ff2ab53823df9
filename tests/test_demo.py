"""The README's first command, end to end, as a new user runs it: ``dcim demo --no-live``.

One demo run for the module (a few days of backfilled history, then a live
part with the whole fault timeline); then, as the acceptance criterion for the
demo, every target and annotation query of every dashboard JSON the demo wrote
runs against the InfluxDB data the demo left in ``DIR/influxdb`` over the
demo's period, with Grafana's macros and template variables substituted as
Grafana would ("All" selected), and must return at least one non-null value.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboards.queries import auto_interval, resolve_variables, substitute
from sinks.influx_query import InfluxQuery
from localservers.influx import InfluxServer

BACKFILL_DAYS = 3  # the daily panels need two whole days; the default 30 costs more than a test should
DURATION_S = 40
INTERVAL_S = 2


@dataclass
class DemoRun:
    out: Path
    stdout: str
    manifest: dict


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoRun:
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "demo", "--duration", str(DURATION_S),
                           "--interval", str(INTERVAL_S), "--no-live", "--free-ports",
                           "--backfill-days", str(BACKFILL_DAYS), "--out", str(out)],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "250"})  # rich wraps at the terminal's width
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return DemoRun(out, proc.stdout, json.loads((out / "demo.json").read_text()))


@pytest.fixture(scope="module")
def client(demo):
    """The demo's own InfluxDB data directory, served again after the demo stopped its server."""
    server = InfluxServer(demo.out / "influxdb").start()
    try:
        yield InfluxQuery(server.url, "dcim")
    finally:
        server.stop()


def test_demo_runs_end_to_end(demo):
    text = demo.stdout
    # what the history cost, in the demo's own output
    assert re.search(r"backfill: 3\.\d days of the twin's model .* in [\d.]+ s \([\d.]+ s CPU\)", text), text[:2000]
    assert "PUE 1." in text  # the instantaneous PUE status line, from the meters
    assert "fault inject ups_on_battery on ups-1a" in text
    assert "firing   critical ups-on-battery ups-1a" in text
    assert "resolved critical ups-on-battery ups-1a" in text
    assert "firing   major    gpu-xid-error" in text
    assert "firing   critical leak-detected cdu-1" in text
    assert "polls ok" in text
    dashboards = list((demo.out / "grafana").rglob("*.json"))
    assert len(dashboards) >= 5
    for d in dashboards:
        assert json.loads(d.read_text())["panels"]
    assert (demo.out / "pue-report.pdf").read_bytes()[:5] == b"%PDF-"


def test_live_timeline_has_every_fault_the_twin_has(demo):
    from simulator.model import FAULTS

    for fault in FAULTS:
        assert f"fault inject {fault} on " in demo.stdout, fault
        assert f"fault clear {fault} on " in demo.stdout, fault


def _non_null(series) -> bool:
    return any(v is not None for s in series for row in s.values for v in row[1:])


def _queries(dash: dict) -> list[tuple[str, str]]:
    """(label, query) for each target of each panel and each annotation of one dashboard JSON."""
    out = []
    for panel in dash.get("panels", []):
        for i, target in enumerate(panel.get("targets", [])):
            out.append((f"{dash['title']} / {panel['title']} / target {i + 1}", target["query"]))
    for ann in dash.get("annotations", {}).get("list", []):
        if not ann.get("builtIn"):
            out.append((f"{dash['title']} / annotation {ann['name']}", ann["query"]))
    return out


def test_every_dashboard_query_has_data_over_the_demo_period(demo, client):
    from_ms, to_ms = demo.manifest["from_ms"], demo.manifest["to_ms"]
    interval = auto_interval(from_ms, to_ms)
    files = sorted((demo.out / "grafana" / "dashboards").glob("*.json"))
    assert len(files) == 7, files

    def run(q: str) -> list[list]:
        return [row for s in client.query(q, epoch="ms") for row in s.values]

    empty, checked = [], 0
    for path in files:
        dash = json.loads(path.read_text())
        variables = resolve_variables(dash.get("templating", {}).get("list", []), run, from_ms, to_ms, interval)
        for name, values in variables.items():
            assert values, f"{path.name}: template variable ${name} has no values"
        for label, query in _queries(dash):
            q = substitute(query, from_ms, to_ms, interval, variables)
            checked += 1
            try:
                ok = _non_null(client.query(q, epoch="ms"))
            except Exception as exc:
                empty.append(f"{label}: error {exc}\n    {q}")
                continue
            if not ok:
                empty.append(f"{label}: no non-null value\n    {q}")
    assert checked >= 40
    assert not empty, f"{len(empty)} of {checked} queries came back empty:\n" + "\n".join(empty)


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pue_report_covers_the_backfilled_history(demo):
    """The report's period is the demo's (history + live), and its meters have hourly readings over it."""
    report = json.loads((demo.out / "pue-report.json").read_text())
    assert report["site_id"] == "tetouan" and report["meters"]
    assert report["period_start"] == _utc(demo.manifest["from_ms"])
    assert report["period_end"] >= _utc(demo.manifest["live_from_ms"])
    for m in report["meters"]:
        if m["role"] in ("boundary", "it", "renewable"):
            assert m["readings"] >= BACKFILL_DAYS * 24, m["id"]
            assert m["coverage_pct"] > 90.0, (m["id"], m["coverage_pct"])
    total = report["total"]
    assert total["e_it_kwh"] > 0 and 1.0 < total["pue"] < 2.0


def test_capacity_report_covers_the_demo_period(demo):
    """The demo's capacity report: every element of the site, measured over its own history."""
    report = json.loads((demo.out / "capacity-report.json").read_text())
    assert report["site_id"] == "tetouan" and report["period_start"] == _utc(demo.manifest["from_ms"])
    levels = {r["level"] for r in report["rows"]}
    assert levels == {"hall", "row", "rack", "pdu", "ups", "transformer"}
    assert all(r["peak_w"] is not None and r["samples"] > 0 for r in report["rows"]), report["warnings"]
    racks = [r for r in report["rows"] if r["level"] == "rack"]
    assert all(r["stranded_w"] == pytest.approx(r["allocated_w"] - r["peak_w"], abs=1e-3) for r in racks)
    assert len(report["input_sha256"]) == 64 and report["queries"]
    assert (demo.out / "capacity-report.html").read_text().startswith("<!DOCTYPE html>")
    assert (demo.out / "capacity-report.csv").read_text().startswith("level,id,")


def test_energy_attribution_by_tenant_covers_the_demo(demo):
    """The twin's GPUs ran the example site's tenants' jobs: the demo's month splits among them and adds up."""
    rep = json.loads((demo.out / "energy-by-tenant.json").read_text())
    rows = {r["entity"]: r for r in rep["rows"]}
    assert {"atlas", "noor", "uae-uni", "unallocated"} <= set(rows)
    assert all(rows[t]["it_kwh"] > 0 and rows[t]["facility_kwh"] > rows[t]["it_kwh"] for t in ("atlas", "noor"))
    assert sum(r["it_kwh"] for r in rep["rows"]) == pytest.approx(rep["measured_kwh"], rel=1e-9)
    assert rep["measured_kwh"] == pytest.approx(rep["e_it_kwh_pue"], rel=0.02)
    assert rep["period_start"] <= _utc(demo.manifest["from_ms"] + 3_600_000)
    assert (demo.out / "statement-atlas.pdf").read_bytes()[:5] == b"%PDF-"
    assert (demo.out / "energy-by-tenant.pdf").read_bytes()[:5] == b"%PDF-"
