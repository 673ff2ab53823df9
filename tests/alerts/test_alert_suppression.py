"""Topology-aware suppression on the example site's 2N power chain."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.evaluate import Engine
from alerts.rules import load_rules_text
from alerts.suppression import Suppressor
from contract.sample import Sample
from inventory.loader import load_site
from inventory.topology import PowerGraph

S = 1_000_000_000
T0 = 1_764_000_000 * S
SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"

RULES = """
rules:
  - name: ups-on-battery
    measurement: ups
    field: on_battery
    op: '=='
    threshold: true
    severity: critical
    select: {kind: ups}
    explains: [power]
  - name: pdu-hot
    measurement: pdu
    field: current_a
    threshold: 25
    select: {kind: pdu}
  - name: node-hot
    measurement: node
    field: temp_c
    threshold: 80
  - name: chiller-stopped
    measurement: chiller
    field: running
    op: '=='
    threshold: false
    explains: [cooling]
"""


@pytest.fixture(scope="module")
def site():
    return load_site(SITE)


def engine(site) -> Engine:
    rs = load_rules_text(RULES, "t.yaml")
    return Engine(rs, site, suppressor=Suppressor(PowerGraph(site), rs.by_name.get))


def ups(dev, on, t):
    return Sample("ups", {"device": dev}, {"on_battery": on}, T0 + t * S)


def pdu(dev, amps, t):
    return Sample("pdu", {"device": dev, "phase": "1"}, {"current_a": amps}, T0 + t * S)


def node(dev, temp, t):
    return Sample("node", {"device": dev, "sensor": "cpu"}, {"temp_c": temp}, T0 + t * S)


def by_rule(events):
    return {(e["rule"], e["device"]): e for e in events}


def test_ups_a_on_battery_suppresses_pdu_a_not_the_2n_node(site):
    eng = engine(site)
    root = eng.observe([ups("ups-1a", True, 0)])[0]
    ev = by_rule(eng.observe([pdu("h1-r01-k01-pdu-a", 30, 1), pdu("h1-r01-k01-pdu-b", 30, 1), node("h1-r01-k01-n1", 90, 1)]))
    assert ev[("pdu-hot", "h1-r01-k01-pdu-a")]["suppressed_by"] == root["fingerprint"]
    assert ev[("pdu-hot", "h1-r01-k01-pdu-b")]["suppressed_by"] == ""  # fed by UPS-B
    assert ev[("node-hot", "h1-r01-k01-n1")]["suppressed_by"] == ""  # PDU-B still feeds it
    assert root["suppressed_by"] == ""  # the root itself is not suppressed


def test_both_ups_on_battery_explain_the_node_and_resolution_lifts_it(site):
    eng = engine(site)
    ra = eng.observe([ups("ups-1a", True, 0)])[0]
    eng.observe([node("h1-r01-k01-n1", 90, 1)])
    assert eng.updated == []
    rb = eng.observe([ups("ups-1b", True, 2)])[0]
    n1 = next(a for a in eng.active() if a.rule == "node-hot")
    assert n1.suppressed_by == ",".join(sorted([ra["fingerprint"], rb["fingerprint"]]))
    assert eng.updated == [n1]  # the runtime republishes its retained state
    eng.updated.clear()
    eng.observe([ups("ups-1b", False, 3)])  # UPS-B back: a healthy path again
    assert n1.suppressed_by == ""
    assert eng.updated == [n1]


def test_root_and_symptom_in_one_batch(site):
    eng = engine(site)
    ev = by_rule(eng.observe([pdu("h1-r01-k01-pdu-a", 30, 0), ups("ups-1a", True, 0)]))
    assert ev[("pdu-hot", "h1-r01-k01-pdu-a")]["suppressed_by"] == ev[("ups-on-battery", "ups-1a")]["fingerprint"]


def test_cooling_root_explains_cdu_and_nodes_downstream(site):
    eng = engine(site)
    root = eng.observe([Sample("chiller", {"device": "chiller-1"}, {"running": False}, T0)])[0]
    ev = by_rule(eng.observe([node("h1-r01-k01-n1", 90, 1)]))
    assert ev[("node-hot", "h1-r01-k01-n1")]["suppressed_by"] == root["fingerprint"]  # n1 <- cdu-1 <- chiller-1


def test_reachability_root_explains_only_silent_device_alerts(site):
    rs = load_rules_text("""
rules:
  - name: ups-unreachable
    kind: device_down
    polls: 1
    select: {kind: ups}
    explains: [reachability]
  - name: pdu-down
    kind: device_down
    polls: 1
    select: {kind: pdu}
  - name: pdu-hot
    measurement: pdu
    field: current_a
    threshold: 25
""", "t.yaml")
    eng = Engine(rs, site, suppressor=Suppressor(PowerGraph(site), rs.by_name.get))
    poll = lambda dev, t: Sample("poll", {"device": dev, "protocol": "snmp"}, {"ok": False}, T0 + t * S)
    root = eng.observe([poll("ups-1a", 0)])[0]
    ev = by_rule(eng.observe([poll("h1-r01-k01-pdu-a", 1), pdu("h1-r01-k01-pdu-a", 30, 1), poll("h1-r01-k01-pdu-b", 1)]))
    assert ev[("pdu-down", "h1-r01-k01-pdu-a")]["suppressed_by"] == root["fingerprint"]
    assert ev[("pdu-hot", "h1-r01-k01-pdu-a")]["suppressed_by"] == ""  # a measured value is not explained
    assert ev[("pdu-down", "h1-r01-k01-pdu-b")]["suppressed_by"] == ""  # other side, other UPS
