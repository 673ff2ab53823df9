"""Every panel query of every dashboard runs against the real InfluxDB and returns data.

The database is filled by the real producers only (the twin's model through
the collectors, the derived-metrics job and the rule engine, all through the
InfluxDB writer): three days of backfilled history and a live part; see
conftest.py.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dashboards.preview import run_dashboard
from dashboards.provisioning import dashboards_json
from dashboards.builder import Datasource
from sinks.influx_query import InfluxQuery

SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"


@pytest.fixture(scope="module")
def client(filled):
    return InfluxQuery(filled.url, filled.db)


@pytest.fixture(scope="module")
def dashboards(filled):
    return dashboards_json(filled.site, Datasource())


def test_every_panel_query_returns_rows(filled, client, dashboards):
    empty = []
    for uid, dash in dashboards.items():
        _, results = run_dashboard(dash, client, filled.from_ms, filled.end_ms)
        assert len(results) == sum(p["type"] != "row" for p in dash["panels"])
        for r in results:
            if r.error or r.rows == 0:
                empty.append(f"{uid} / {r.title}: {r.error or 'no rows'}\n    {r.queries}")
    assert not empty, "\n".join(empty)


def test_template_variables_are_the_inventory(filled, client, dashboards):
    power = next(d for d in dashboards.values() if "power" in d["tags"])
    variables, _ = run_dashboard({**power, "panels": []}, client, filled.from_ms, filled.end_ms)
    site = filled.site
    assert variables["hall"] == sorted(h.id for h in site.halls)
    assert variables["row"] == sorted(r.id for h in site.halls for r in h.rows)
    assert variables["rack"] == sorted(k.id for _, _, k in site.racks())


def test_row_variable_follows_the_hall(filled, client, dashboards):
    from dashboards.queries import resolve_variables

    power = next(d for d in dashboards.values() if "power" in d["tags"])
    row_var = [v for v in power["templating"]["list"] if v["name"] in ("row",)]

    def run(q):
        return [row for s in client.query(q) for row in s.values]

    hall = filled.site.halls[0]
    got = resolve_variables([{"name": "hall", "query": "SHOW TAG VALUES FROM \"capacity\" WITH KEY = \"hall\" "
                              f"WHERE \"hall\" = '{hall.id}'"}] + row_var, run, filled.from_ms, filled.end_ms, "10s")
    assert got["row"] == sorted(r.id for r in hall.rows)
    got = resolve_variables([{"name": "hall", "query": "SHOW TAG VALUES FROM \"capacity\" WITH KEY = \"hall\" "
                              "WHERE \"hall\" = 'no-such-hall'"}] + row_var, run, filled.from_ms, filled.end_ms, "10s")
    assert got == {"hall": [], "row": []}


def test_derived_pue_is_consistent_with_meters(filled, client):
    """The stored instantaneous PUE equals the boundary / IT-cat-1 meter power at the same instant."""
    rows = client.query('SELECT last("pue"), last("category") FROM "pue" WHERE "hall" = \'\'')[0].rows()
    assert rows and rows[0]["last_1"] == 1
    pue = rows[0]["last"]
    sp = client.query('SELECT last("facility_w") AS f, last("it_w") AS i FROM "site_power" WHERE "hall" = \'\'')
    f, i = sp[0].values[0][1], sp[0].values[0][2]
    assert pue == pytest.approx(f / i)
    assert 1.0 < pue < 3.0  # a plausible facility for the twin's model, not a constant


def test_preview_writes_one_png_per_panel(filled, dashboards, tmp_path, capsys):
    from dcim.commands.dashboards import cmd_preview

    out = tmp_path / "preview"
    args = argparse.Namespace(site=SITE, datasource_uid="iozera-influxdb", influx=filled.url, db=filled.db,
                              out=out, from_=str(filled.from_ms), to=str(filled.end_ms), influx_token_env=None)
    assert cmd_preview(args) == 0
    n_panels = sum(p["type"] != "row" for d in dashboards.values() for p in d["panels"])
    pngs = sorted(out.glob("*/panel-*.png"))
    assert len(pngs) == n_panels
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, png
    index = (out / "index.html").read_text()
    assert index.count("<img ") == n_panels
    assert f"{n_panels} with data" in capsys.readouterr().out


def test_alert_annotations_return_the_firing_events(filled, client, dashboards):
    """Each annotation lists exactly the firing events the rule engine emitted, by their text."""
    from contract import alert_event as ev
    from dashboards.queries import substitute

    firing = sorted(ev.summary_of(e) for e in filled.events if e[ev.STATE] == ev.FIRING)
    assert any("ups-1a is on battery" in s for s in firing)  # the live fault
    assert any("XID" in s for s in firing)
    for uid, dash in dashboards.items():
        for ann in dash["annotations"]["list"]:
            if ann.get("builtIn"):
                continue
            q = substitute(ann["query"], filled.from_ms, filled.end_ms, "10s", {})
            rows = [r for s in client.query(q) for r in s.rows()]
            assert ann["textColumn"] == ev.SUMMARY
            assert sorted(r[ev.SUMMARY] for r in rows) == firing, uid
            assert {c for c in ann["tagsColumn"].split(",")} <= set(rows[0]), uid


def test_history_has_daily_energy_from_the_twins_counters(filled, client):
    """The backfill's counters are the model's integral: the boundary meters' daily kWh are positive
    and their sum over the history equals the spread of the counters."""
    q = (f'SELECT spread("energy_kwh") FROM "meter" WHERE "device" = \'meter-util-a\' AND "phase" = \'\' '
         f'AND time >= {filled.from_ms}ms AND time <= {filled.end_ms}ms')
    spread = client.query(q)[0].values[0][1]
    assert spread > 0
    q = (f'SELECT difference(last("energy_kwh")) FROM "meter" WHERE "device" = \'meter-util-a\' AND "phase" = \'\' '
         f'AND time >= {filled.from_ms}ms AND time <= {filled.end_ms}ms GROUP BY time(1d) fill(none)')
    daily = [v[1] for v in client.query(q)[0].values if v[1] is not None]
    assert len(daily) >= 2 and all(d > 0 for d in daily)
    assert sum(daily) <= spread + 1e-6


def test_history_counters_are_the_models_integral(filled, client):
    """At the backfill's last instant each energy meter read what the model had integrated."""
    checked = 0
    for device, kwh in filled.history_truth_kwh.items():
        q = (f'SELECT last("energy_kwh") FROM "meter" WHERE "device" = \'{device}\' AND "phase" = \'\' '
             f'AND time >= {filled.from_ms}ms AND time <= {filled.history_end_ms + 1}ms')
        series = client.query(q)
        if not series or kwh <= 0:
            continue  # a meter without an energy register (water), or one that measured nothing (diesel)
        assert series[0].values[0][1] == pytest.approx(kwh, rel=1e-3, abs=1.0), device
        checked += 1
    assert checked >= 5


def test_the_tier_variable_follows_the_time_span(filled, client, dashboards):
    from dashboards.queries import resolve_variables

    noc = next(d for d in dashboards.values() if "noc" in d["tags"])
    tier = [v for v in noc["templating"]["list"] if v["name"] == "tier"]

    def run(q):
        return [row for s in client.query(q) for row in s.values]

    end = filled.end_ms
    for span_h, rp in ((6, "autogen"), (3 * 24, "rollup_1m"), (30 * 24, "rollup_1h")):
        assert resolve_variables(tier, run, end - span_h * 3_600_000, end, "1m") == {"tier": [rp]}, span_h


def test_pue_report_on_the_history_is_the_models_energy(filled):
    """The auditors' report over the backfilled history, read from what the collectors wrote,
    finds the energy the twin's model integrated: the IT and boundary meters' counters started
    at zero with the history, so their totals are the model's counters at its end."""
    import json

    from reports.build import ReportRequest, build_pue_report, render

    report = json.loads(render(build_pue_report(
        filled.site, InfluxQuery(filled.url, filled.db),
        ReportRequest(filled.from_ms / 1000, (filled.history_end_ms + 1) / 1000, progress=False)), "json"))
    truth = filled.history_truth_kwh
    roles = {d.id: d.meter.role for d in filled.site.all_devices() if d.kind == "meter" and d.meter}
    it = sum(kwh for dev, kwh in truth.items() if roles[dev] == "it")
    boundary = sum(kwh for dev, kwh in truth.items() if roles[dev] == "boundary")
    total = report["total"]
    assert total["e_it_kwh"] == pytest.approx(it, rel=1e-3)
    assert total["boundary_kwh"] == pytest.approx(boundary, rel=1e-3)
    assert total["pue"] == pytest.approx(boundary / it, rel=1e-3)


def test_capacity_report_reads_what_the_producers_wrote(filled, client, tmp_path):
    """Twin → collectors → derived job → writer → ``dcim report capacity``: every element of the example
    site has figures, the levels agree with each other and with the PDUs' own readings."""
    import datetime as dt
    import json

    from dcim.cli import main

    def iso(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    out = tmp_path / "capacity.json"
    args = ["report", "capacity", "--site", str(SITE), "--influx", filled.url, "--db", filled.db,
            "--from", iso(filled.from_ms), "--to", iso(filled.end_ms), "--out", str(out)]
    assert main(args) == 0
    rep = json.loads(out.read_text())
    rows = {(r["level"], r["id"]): r for r in rep["rows"]}
    site = filled.site
    assert {k for k in rows if k[0] == "rack"} == {("rack", k.id) for _, _, k in site.racks()}
    assert {k[1] for k in rows if k[0] == "transformer"} == {"tx-a", "tx-b"}
    assert all(r["samples"] > 0 and r["peak_w"] is not None for r in rows.values()), \
        [k for k, r in rows.items() if r["peak_w"] is None]
    for _, _, rack in site.racks():
        r = rows["rack", rack.id]
        assert r["allocated_w"] == 4 * 10200.0                     # four 10.2 kW nodes
        assert r["stranded_w"] == pytest.approx(r["allocated_w"] - r["peak_w"])
        pdus = [d.id for d in rack.devices if d.kind == "pdu"]
        # a 2N rack's PDUs each carry the whole rack on a failure: their design peak is the rack's
        assert all(rows["pdu", p]["peak_w"] == pytest.approx(r["peak_w"]) for p in pdus)
        # ... and the rack never drew more than its PDUs' own peaks together (from the collectors' series)
        own = sum(client.query(f'SELECT max("power_w") FROM "pdu" WHERE "device" = \'{p}\' AND "outlet" = \'\' '
                               f'AND "phase" = \'\' AND time >= {filled.from_ms}ms AND time < {filled.end_ms}ms')[0]
                  .values[0][1] for p in pdus)
        assert 0 < r["own_peak_w"] <= own + 1e-6
    assert rows["ups", "ups-1a"]["peak_w"] == rows["ups", "ups-1b"]["peak_w"]   # the 2N pair's load
    hall = rows["hall", "h1"]
    rack_peaks = [rows["rack", k.id]["peak_w"] for _, _, k in site.racks()]
    assert max(rack_peaks) <= hall["peak_w"] <= sum(rack_peaks) + 1e-6
    assert rep["source"].startswith("raw readings") and len(rep["input_sha256"]) == 64
    assert main(args) == 0 and json.loads(out.read_text())["input_sha256"] == rep["input_sha256"]


def test_liquid_cooling_lists_the_inventory_nodes_of_the_chosen_loop(filled, client, dashboards):
    """The ``node`` variable of the liquid-cooling dashboard is the inventory's node list of the loop
    picked with ``cdu``/``loop`` (written by the derived job), and its GPU panels then show those
    nodes and no others."""
    from dashboards.queries import resolve_variables
    from inventory.loops import LoopIndex

    liquid = next(d for d in dashboards.values() if "liquid" in d["tags"])
    chain = [v for v in liquid["templating"]["list"] if v["name"] in ("cdu", "loop", "node")]
    index = LoopIndex(filled.site)

    def run(q):
        return [row for s in client.query(q, epoch="ms") for row in s.values]
    everything = resolve_variables(chain, run, filled.from_ms, filled.end_ms, "60s")
    assert everything["cdu"] == sorted({k[0] for k in index.loops()})
    for cdu, loop in index.loops():
        pick = [{"name": "cdu", "query": f"SHOW TAG VALUES FROM \"cooling_loop\" WITH KEY = \"device\" WHERE \"device\" = '{cdu}'"}]
        got = resolve_variables(pick + chain[1:], run, filled.from_ms, filled.end_ms, "60s")
        assert got["loop"] == [loop]
        assert got["node"] == sorted(n.id for n in index.gpu_nodes_on((cdu, loop)))
        hottest = next(p for p in liquid["panels"] if p["title"] == "Hottest GPU per node on the loop")
        from dashboards.queries import substitute
        q = substitute(hottest["targets"][0]["query"], filled.live_ms, filled.end_ms, "10s",
                       {**got, "tier": ["autogen"]})
        shown = {s.tags["device"] for s in client.query(q)}
        assert shown and shown <= set(got["node"])
