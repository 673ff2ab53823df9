"""The contract package: bottom of the import graph, and its tables hold together."""
from __future__ import annotations

import ast
from pathlib import Path

from contract import alert_event as ev
from contract.protocols import PROTOCOLS, SCHEMES
from contract.states import UNKNOWN, VOCABULARIES
from contract.tags import LOCATION_TAGS, series_tags

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
PROJECT = {"inventory", "collectors", "sinks", "alerts", "derived", "dashboards", "reports", "dcim", "simulator",
           "testkit", "bench"}


def test_contract_imports_nothing_from_the_project():
    for path in CONTRACT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in PROJECT, f"{path.name} imports {name}"


def test_every_vocabulary_has_unknown_and_no_word_twice():
    for name, words in VOCABULARIES.items():
        assert UNKNOWN in words and len(set(words)) == len(words), name


def test_schemes_name_one_protocol_each_and_polled_protocols_have_a_collector_and_parser():
    assert sum(len(p.schemes) for p in PROTOCOLS.values()) == len(SCHEMES)
    for p in PROTOCOLS.values():
        if p.schemes:
            assert p.collector and p.url_parser, p.name


def test_series_tags_are_everything_but_the_location():
    tags = {t: "x" for t in LOCATION_TAGS} | {"stage": "output", "phase": "L1"}
    assert series_tags(tags) == {"stage": "output", "phase": "L1"}


def test_alert_point_fields_are_the_schema_names():
    e = ev.alert_event(fingerprint="f", state=ev.FIRING, severity="critical", rule="r", device="d",
                       location={"site": "s", "hall": "h"}, series={"device": "d", "stage": "output"}, labels={},
                       summary="d on battery", value=1, threshold=1, since_ns=0, time_ns=5)
    p = ev.alert_point(e)
    assert p.measurement == ev.ALERT_MEASUREMENT and p.time_ns == 5
    # tags: the schema's point tags plus the series' label set (two series at one instant stay two points)
    assert set(p.tags) == {"rule", "severity", "state", "device", "site", "hall", "stage"}
    assert set(p.tags) <= set(ev.POINT_TAGS) | set(e[ev.SERIES]) and set(p.fields) <= set(ev.POINT_FIELDS)
    assert p.fields[ev.SUMMARY] == "d on battery" == ev.summary_of(e)
    assert ev.identity_labels(e) == {"rule": "r", "device": "d", "stage": "output"}
