"""Structural checks on the built dashboards: what Grafana needs to show them at all.

These checks are written independently of the builder (overlap is tested
cell by cell, ids are collected from the JSON), so a builder bug cannot hide.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dcim.commands.dashboards import cmd_build
from dashboards.queries import referenced_variables
from inventory import load_site

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "inventory" / "examples" / "tetouan.yaml"
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "state-timeline"}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    import argparse
    out = tmp_path_factory.mktemp("build")
    args = argparse.Namespace(site=SITE, out=out, influx_url="http://127.0.0.1:8086", db="dcim",
                              token_env="DCIM_INFLUX_TOKEN", datasource_uid="iozera-influxdb")
    assert cmd_build(args) == 0
    dashboards = {p.stem: json.loads(p.read_text()) for p in sorted((out / "dashboards").glob("*.json"))}
    ds = yaml.safe_load((out / "provisioning" / "datasources" / "iozera.yaml").read_text())
    prov = yaml.safe_load((out / "provisioning" / "dashboards" / "iozera.yaml").read_text())
    return out, dashboards, ds, prov


def _all_datasource_refs(obj):
    if isinstance(obj, dict):
        if "datasource" in obj and isinstance(obj["datasource"], dict):
            yield obj["datasource"]
        for v in obj.values():
            yield from _all_datasource_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _all_datasource_refs(v)


def test_seven_dashboards_with_unique_uids(build):
    _, dashboards, _, _ = build
    assert len(dashboards) == 7
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == 7 and all(1 <= len(u) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", u) for u in uids)
    assert all(d["schemaVersion"] == 39 for d in dashboards.values())


def test_panel_ids_unique_and_types_known(build):
    for name, d in build[1].items():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        assert {p["type"] for p in d["panels"]} <= PANEL_TYPES
        assert sum(p["type"] != "row" for p in d["panels"]) >= 4, name


def test_gridpos_inside_24_columns_and_not_overlapping(build):
    for name, d in build[1].items():
        taken: dict[tuple[int, int], str] = {}
        for p in d["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, (name, p["title"], g)
            assert g["h"] >= 1 and g["y"] >= 0
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in taken, f"{name}: {p['title']!r} overlaps {taken[(x, y)]!r}"
                    taken[(x, y)] = p["title"]


def test_every_datasource_uid_is_provisioned(build):
    _, dashboards, ds, _ = build
    provisioned = {(x["type"], x["uid"]) for x in ds["datasources"]}
    for name, d in dashboards.items():
        for ref in _all_datasource_refs(d):
            if ref["uid"] == "-- Grafana --":  # Grafana's own built-in annotation source
                continue
            assert (ref["type"], ref["uid"]) in provisioned, (name, ref)


def test_token_is_an_env_reference_only(build, monkeypatch):
    out, _, ds, _ = build
    header = ds["datasources"][0]["secureJsonData"]["httpHeaderValue1"]
    assert header == "Token ${DCIM_INFLUX_TOKEN}"


def test_provider_points_at_the_dashboard_files(build):
    out, dashboards, _, prov = build
    path = Path(prov["providers"][0]["options"]["path"])
    assert {p.stem for p in path.glob("*.json")} == set(dashboards)


def test_every_referenced_variable_exists(build):
    for name, d in build[1].items():
        defined = {v["name"] for v in d["templating"]["list"]}
        texts = [t["query"] for p in d["panels"] for t in p.get("targets", [])]
        texts += [v["query"] for v in d["templating"]["list"]]
        texts += [a.get("query", "") for a in d["annotations"]["list"]]
        for text in texts:
            assert referenced_variables(text) <= defined, (name, text)
        for t in (t for p in d["panels"] for t in p.get("targets", [])):
            assert "$timeFilter" in t["query"], (name, t["query"])
            assert t["rawQuery"] is True and t["datasource"]["type"] == "influxdb"


def test_power_drill_down_variables_chain(build):
    power = next(d for d in build[1].values() if "power" in d["tags"])
    names = [v["name"] for v in power["templating"]["list"]]
    assert names == ["tier", "hall", "row", "rack"]
    by = {v["name"]: v for v in power["templating"]["list"]}
    assert "$hall" in by["row"]["query"] and "$row" in by["rack"]["query"] and "$hall" in by["rack"]["query"]


def test_time_series_read_the_tier_for_their_span_and_the_rest_raw(build):
    for name, d in build[1].items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        for t in (t for p in d["panels"] for t in p.get("targets", [])):
            q = t["query"]
            if "GROUP BY time(" in q:
                assert 'FROM "$tier".' in q and not re.search(r'FROM "[a-z_]+" ', q), (name, q)
            else:
                assert "$tier" not in q, (name, q)
        if any("$tier" in t["query"] for p in d["panels"] for t in p.get("targets", [])):
            tier = variables["tier"]
            assert tier["refresh"] == 2 and tier["multi"] is False and tier["includeAll"] is False
            assert "${__to} - ${__from}" in tier["query"]
        for a in d["annotations"]["list"]:
            assert "$tier" not in a.get("query", "")


def test_energy_dashboard_uses_inventory_meters():
    from dashboards.catalog import energy
    site = load_site(SITE)
    qs = " ".join(t.query for p in energy(site).panels() for t in p.targets)
    for dev in site.all_devices():
        if dev.meter and dev.meter.role in ("boundary", "renewable"):
            assert dev.id.replace("-", "\\-") in qs or dev.id in qs, dev.id
    assert "difference(last(\"energy_kwh\"))" in qs and "GROUP BY time(1d)" in qs


def test_bad_token_env_name_is_refused(tmp_path, capsys):
    import argparse
    args = argparse.Namespace(site=SITE, out=tmp_path, influx_url="http://127.0.0.1:8086", db="dcim",
                              token_env="not a name", datasource_uid="iozera-influxdb")
    assert cmd_build(args) == 2
    assert "--token-env" in capsys.readouterr().err


def test_bad_site_file_is_reported_with_file_and_line(tmp_path, capsys):
    import argparse
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: {id: s1}\nhalls:\n  - id: h1\n    rated_kw: -5\n")
    args = argparse.Namespace(site=bad, out=tmp_path / "out", influx_url="http://127.0.0.1:8086", db="dcim",
                              token_env=None, datasource_uid="iozera-influxdb")
    assert cmd_build(args) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:4" in err and "rated_kw" in err
    assert not (tmp_path / "out").exists()


def test_site_without_it_meters_falls_back_to_derived_power():
    """tests/derived/site_small.yaml has boundary and renewable meters but no IT meter."""
    from dashboards.builder import Datasource
    from dashboards.catalog import build_dashboards

    site = load_site(REPO / "tests" / "derived" / "site_small.yaml")
    dashes = build_dashboards(site)
    energy_q = [t.query for p in dashes["energy"].panels() for t in p.targets]
    assert any('integral("facility_w") / integral("it_w")' in q for q in energy_q)
    assert not any("difference" in q and "sum(\"i\")" in q for q in energy_q)
    assert all(d.uid.startswith("s1-") for d in dashes.values())
    assert len({json.dumps(d.to_json(Datasource())) for d in dashes.values()}) == 7


def test_device_link_points_at_a_built_dashboard_and_its_variables():
    """The link the engine puts on Alertmanager alerts opens a dashboard that exists, with
    template variables it defines."""
    from urllib.parse import parse_qs, urlparse

    from dashboards.builder import Datasource
    from dashboards.catalog import build_dashboards, device_link

    site = load_site(Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml")
    boards = {d.uid: d.to_json(Datasource()) for d in build_dashboards(site).values()}
    seen = set()
    for device, kind in (("h1-r01-k01-pdu-a", "power"), ("chiller-1", "cooling"), ("h1-r01-k01-n2", "gpu"),
                         ("no-such-device", "noc")):
        url = urlparse(device_link(site, "https://grafana.example/", device))
        uid = url.path.removeprefix("/d/")
        assert url.netloc == "grafana.example" and uid in boards and uid.endswith(kind), url
        names = {v["name"] for v in boards[uid].get("templating", {}).get("list", [])}
        for key in parse_qs(url.query):
            assert key.removeprefix("var-") in names, (device, key, names)
        seen.add(uid)
    assert len(seen) == 4
    assert device_link(site, "", "chiller-1") == ""
