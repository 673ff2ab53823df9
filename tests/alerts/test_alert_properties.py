"""Property: for any value sequence the engine agrees with a tiny reference model of hysteresis."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from alerts.evaluate import Engine
from alerts.rules import load_rules_text
from contract.sample import Sample

S = 1_000_000_000
RULES = load_rules_text("""
rules:
  - name: hot
    measurement: pdu
    field: current_a
    threshold: 25
    clear: 22
""", "p.yaml")


def reference(values: list[float]) -> list[str]:
    """Fires when v > 25 while inactive; while firing, clears when v < 22."""
    out, firing = [], False
    for v in values:
        if not firing and v > 25:
            firing = True
            out.append("firing")
        elif firing and v < 22:
            firing = False
            out.append("resolved")
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=15, max_value=35, allow_nan=False), max_size=60))
def test_engine_matches_reference_hysteresis(values):
    eng = Engine(RULES)
    got = []
    for i, v in enumerate(values):
        got += [e["state"] for e in eng.observe([Sample("pdu", {"device": "p"}, {"current_a": v}, i * S)])]
    assert got == reference(values)
    # events alternate, so at most one firing alert exists for the series at any time
    assert len(eng.active()) == (1 if got and got[-1] == "firing" else 0)
