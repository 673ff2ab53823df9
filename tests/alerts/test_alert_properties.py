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


CLOCK_RULES = load_rules_text("""
rules:
  - name: quiet
    kind: stale
    measurement: pdu
    field: power_w
    stale_after_s: 30
    for_s: 10
    renotify_s: 40
  - name: gone
    kind: absent
    measurement: meter
    stale_after_s: 20
    select: {device: [m1, m2]}
""", "c.yaml")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pdu:a", "pdu:b", "meter:m1", "meter:m2", "tick"]),
                          st.integers(min_value=-5, max_value=25)), max_size=60))
def test_clock_scans_skipped_until_due_give_the_events_of_a_scan_every_tick(steps):
    """The stale/absent clocks scan every series only when one can be due (a full-site shard has
    ≈120,000 of them); the events must be those of scanning at every tick, also when a sample
    arrives with an older time than the last one."""
    from inventory.loader import load_site_text

    site = load_site_text("site: {id: s, name: s}\ndevices:\n"
                          "  - {id: m1, kind: meter}\n  - {id: m2, kind: meter}\n")
    lazy, eager = Engine(CLOCK_RULES, site), Engine(CLOCK_RULES, site)
    t = 1_764_000_000 * S
    for what, dt in steps:
        t += dt * S
        if what == "tick":
            eager._clock_due.clear()
            a, b = lazy.tick(t), eager.tick(t)
        else:
            m, dev = what.split(":")
            field = "power_w" if m == "pdu" else "energy_kwh"
            sample = [Sample(m, {"device": dev}, {field: 1.0}, t)]
            a, b = lazy.observe(sample), eager.observe(sample)
        assert [(e["rule"], e["device"], e["state"], e["renotify"]) for e in a] == \
               [(e["rule"], e["device"], e["state"], e["renotify"]) for e in b]
    assert {k: v.state for k, v in lazy._alerts.items()} == {k: v.state for k, v in eager._alerts.items()}
