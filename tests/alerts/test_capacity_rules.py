"""The shipped headroom rules (alerts/rules/site.yaml) on what the derived job writes.

The rule-test file checks timing and hysteresis on hand-written ``capacity`` samples; here the
engine is fed the real producer's samples: the derived job's ``capacity`` samples for the
hand-checkable site of tests/reports/capacity_site.yaml, its 2N rack loaded past its margin.
"""
from __future__ import annotations

from pathlib import Path

from alerts.evaluate import Engine
from alerts.rules import load_rules
from contract.sample import Sample
from dcim.cli import main
from derived.job import DerivedMetrics
from inventory import load_site

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "rules" / "site.yaml"
SITE = ROOT / "tests" / "reports" / "capacity_site.yaml"
T0 = 1_793_491_200 * 10**9


def test_the_shipped_headroom_case_passes(capsys):
    assert main(["alerts", "test", str(ROOT / "alerts" / "rules" / "capacity_test.yaml")]) == 0
    assert "PASS (4 checks)" in capsys.readouterr().out


def _readings(t: int, pdu_a: float, pdu_b: float) -> list[Sample]:
    def s(meas, dev, w, **tags):
        return Sample(meas, {"site": "cap", "device": dev, **tags}, {"power_w": w}, t)
    return [s("pdu", "pdu-a", pdu_a), s("pdu", "pdu-b", pdu_b), s("pdu", "pdu-c", 8000.0),
            s("ups", "ups-a", 30000.0, stage="output"), s("ups", "ups-b", 20000.0, stage="output"),
            s("meter", "m-tx-a", 40000.0), s("meter", "m-tx-b", 30000.0)]


def test_a_2n_rack_past_its_margin_fires_once_and_resolves():
    """k2n: usable 20 kW (the weaker side).  9 + 9.5 kW leaves 1.5 kW = 7.5 % (< 10 %): fires after
    the rule's 120 s; 6 + 6 kW leaves 8 kW = 40 % (> 15 %): resolves.  Its PDUs carry the whole
    rack on a failure: PDU-B (20 kW) has 7.5 % too, PDU-A (22 kW) 3.5 kW = 15.9 %: no alert."""
    site = load_site(SITE)
    dm = DerivedMetrics(site)
    engine = Engine(load_rules(RULES), site)
    events = []
    for i in range(30):
        t = T0 + i * 10 * 10**9
        a, b = (9000.0, 9500.0) if i < 20 else (6000.0, 6000.0)
        dm.consume(_readings(t, a, b))
        events += engine.observe([s for s in dm.compute(t) if s.measurement == "capacity"])
        events += engine.tick(t)
    got = [(e["state"], e["rule"], e["series"].get("id")) for e in events]
    assert got == [("firing", "rack-headroom-low", "k2n"), ("firing", "pdu-headroom-low", "pdu-b"),
                   ("resolved", "rack-headroom-low", "k2n"), ("resolved", "pdu-headroom-low", "pdu-b")]
    first = events[0]
    assert first["annotations"]["summary"] == ("rack k2n: headroom 7.5% of usable capacity with 2N kept "
                                               "(margin 10%)")
    assert first["severity"] == "minor"
