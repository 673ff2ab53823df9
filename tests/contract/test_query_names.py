"""Every name a consumer spells in a query is one the contract or the conventions define.

The dashboards, the PUE report and the alert consumers read what other parts
write.  A name typed by hand in a query (``"message"`` where the engine writes
``summary``, ``"hal"`` for ``hall``) returns nothing, and no test of the
consumer alone notices.  These tests collect every double-quoted identifier of
every generated dashboard query (targets, annotations, template variables) and
of every planned report query, and check each against the names that have a
definition: the string constants of ``contract/`` and the measurement, tag and
field names documented in docs/conventions.md, plus the aliases the query
itself defines (``AS "x"``) and storage's own tier table (``$tier``), read from
the line protocol storage writes for it.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import contract
from contract import alert_event as ev
from contract import derived as D
from contract import writer as W
from contract.measurements import METER
from dashboards.catalog import build_dashboards
from inventory.loader import load_site
from reports.query import plan_queries
from storage.influxql import tier_rows
from storage.tiers import StorageConfig

REPO = Path(__file__).resolve().parents[2]
SITES = [REPO / "inventory" / "examples" / "tetouan.yaml", REPO / "tests" / "derived" / "site_small.yaml"]

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ALIAS = re.compile(r'\bAS\s+"((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_CODE = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def _contract_names() -> set[str]:
    """Every string constant of contract/ (and the strings of its tuple/set constants)."""
    names: set[str] = set()
    for info in pkgutil.iter_modules(contract.__path__):
        mod = importlib.import_module(f"contract.{info.name}")
        for key, value in vars(mod).items():
            if not key.isupper():
                continue
            if isinstance(value, str):
                names.add(value)
            elif isinstance(value, (tuple, list, set, frozenset)):
                names.update(v for v in value if isinstance(v, str))
    names.update(D.it_category_w(c) for c in (1, 2, 3))
    names.update(W.dropped_field(k) for k in W.DROP_KINDS)
    return names


def _convention_names() -> set[str]:
    """Identifiers in backticks in docs/conventions.md (measurements, tags, fields it documents)."""
    return set(_CODE.findall((REPO / "docs" / "conventions.md").read_text()))


def _storage_tier_names() -> set[str]:
    """Measurement, tag and field names of the tier table, as storage writes it (line protocol)."""
    names: set[str] = set()
    for line in tier_rows(StorageConfig()):
        series, fields, _ts = line.rsplit(" ", 2)
        measurement, *tags = series.split(",")
        names.add(measurement)
        names.update(t.split("=", 1)[0] for t in tags)
        names.update(f.split("=", 1)[0] for f in fields.split(","))
    return names


@pytest.fixture(scope="module")
def known() -> set[str]:
    from storage.tiers import META_RP
    return _contract_names() | _convention_names() | _storage_tier_names() | {META_RP}


def _unknown(query: str, known: set[str]) -> set[str]:
    aliases = set(_ALIAS.findall(query))
    return {name for name in _QUOTED.findall(query)
            if name not in known and name not in aliases and not name.startswith("$")}


def _dashboard_queries(site_path: Path) -> list[tuple[str, str]]:
    site = load_site(site_path)
    out: list[tuple[str, str]] = []
    for key, board in build_dashboards(site).items():
        for panel in board.panels():
            out += [(f"{key}: {panel.title}", t.query) for t in panel.targets]
        out += [(f"{key}: annotation {a.name}", a.query) for a in board.annotations]
        out += [(f"{key}: variable {v.name}", v.query) for v in board.variables]
    return out


@pytest.mark.parametrize("site_path", SITES, ids=lambda p: p.name)
def test_every_dashboard_query_names_only_defined_tags_and_fields(site_path, known):
    queries = _dashboard_queries(site_path)
    assert len(queries) > 40  # the six dashboards, not an empty build
    bad = {where: sorted(u) for where, q in queries if (u := _unknown(q, known))}
    assert not bad, f"names used in dashboard queries that contract/ and docs/conventions.md do not define: {bad}"


def test_the_check_refuses_a_name_nobody_defines(known):
    """The check itself can fail: the alert annotation's text column spelled ``message``."""
    q = f'SELECT "message", "{ev.RULE}" FROM "{ev.ALERT_MEASUREMENT}" WHERE "{ev.STATE}" = \'firing\''
    assert _unknown(q, known) == {"message"}
    assert _unknown(q.replace('"message"', f'"{ev.SUMMARY}"'), known) == set()


def test_report_queries_name_only_defined_tags_and_fields(known):
    wanted = [("meter-util-a", "energy_kwh"), ("meter-util-a", "power_w"), ("meter-water-1", "volume_l")]
    plan = plan_queries(wanted, 1_700_000_000.0, 1_700_000_000.0 + 40 * 86400)
    assert plan and all(f'"{METER}"' in q for _f, q in plan)
    bad = {q: sorted(u) for _f, q in plan if (u := _unknown(q, known))}
    assert not bad, f"names used in report queries that contract/ and docs/conventions.md do not define: {bad}"


def test_alert_event_and_point_use_only_schema_names():
    """The payload keys, the point's tags (beyond the series' own) and its fields are the schema's names."""
    schema = {v for k, v in vars(ev).items() if k.isupper() and isinstance(v, str)} | set(ev.POINT_TAGS)
    event = ev.alert_event(fingerprint=ev.fingerprint("ups-on-battery", {"device": "ups-1a", "stage": "output"}),
                           state=ev.FIRING, severity="critical", rule="ups-on-battery", device="ups-1a",
                           location={"site": "s", "hall": "h1"}, series={"device": "ups-1a", "stage": "output"},
                           labels={"team": "power"}, summary="on battery", description="d", runbook="r",
                           value="battery", threshold="normal", since_ns=1, time_ns=2)
    assert set(event) <= schema, set(event) - schema
    assert set(event[ev.ANNOTATIONS]) <= schema
    point = ev.alert_point(event)
    assert point.measurement == ev.ALERT_MEASUREMENT
    assert set(point.tags) - set(event[ev.SERIES]) <= set(ev.POINT_TAGS)
    assert set(point.fields) <= set(ev.POINT_FIELDS)


def test_energy_attribution_queries_name_only_defined_tags_and_fields(known):
    """``dcim report energy``: the counters it reads, and the power it falls back on where a counter is missing."""
    from reports.attribution_build import chain_reads, fallback_reads, site_topology
    from reports.attribution_query import Fetched, plan_reads

    topo = site_topology(load_site(SITES[0]))
    reads = chain_reads(topo) + fallback_reads(topo, Fetched())
    assert {r.field for r in reads} == {"energy_kwh", "power_w"} and len(reads) >= 7
    plan = [q for r in reads for q in plan_reads(r, 1_700_000_000.0, 1_700_000_000.0 + 40 * 86400)]
    bad = {q: sorted(u) for q in plan if (u := _unknown(q, known))}
    assert not bad, f"names used in energy report queries that contract/ and docs/conventions.md do not define: {bad}"
