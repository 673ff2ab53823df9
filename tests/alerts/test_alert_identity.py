"""Alert identity is the full label set: rule + device + every series tag (contract.tags).

A UPS reports input, output and bypass voltage per phase under one field
(``voltage_v``) told apart only by ``stage`` and ``phase``; each of the nine is
its own alert series.  Also: a version-1 state snapshot (identity from a fixed
tag list) still loads.
"""
from __future__ import annotations

from alerts.evaluate import SNAPSHOT_VERSION, Engine
from alerts.rules import load_rules_text
from contract import alert_event as ev
from contract.sample import Sample
from contract.tags import series_tags

S = 1_000_000_000
T0 = 1_764_000_000 * S
STAGES = ("input", "output", "bypass")
PHASES = ("1", "2", "3")

RULES = load_rules_text("""
rules:
  - name: ups-voltage-low
    measurement: ups
    field: voltage_v
    op: '<'
    threshold: 200
    severity: major
    annotations: {summary: "{device} {stage} phase {phase}: {value} V"}
""", "t.yaml")

LOCATION = {"site": "s", "hall": "h1", "row": "r1", "device": "ups-1", "vendor": "eaton", "model": "93PS"}


def ups(t: float, low: dict[tuple[str, str], float] | None = None) -> list[Sample]:
    """One poll of the UPS: nine voltage series; ``low`` overrides some (stage, phase) values."""
    low = low or {}
    return [Sample("ups", {**LOCATION, "stage": st, "phase": ph}, {"voltage_v": low.get((st, ph), 230.0)},
                   T0 + int(t * S)) for st in STAGES for ph in PHASES]


def test_input_output_bypass_per_phase_are_independent_series():
    eng = Engine(RULES)
    assert eng.observe(ups(0)) == []
    fired = eng.observe(ups(1, {("output", "2"): 150.0}))
    assert [(e[ev.STATE], e[ev.SERIES]) for e in fired] == [
        (ev.FIRING, {"device": "ups-1", "stage": "output", "phase": "2"})]
    out_fp = fired[0][ev.FINGERPRINT]
    assert out_fp == ev.fingerprint("ups-voltage-low", {"device": "ups-1", "stage": "output", "phase": "2"})
    assert ev.summary_of(fired[0]) == "ups-1 output phase 2: 150 V"

    # the same phase on the input stage is another series: it fires by itself ...
    fired = eng.observe(ups(2, {("output", "2"): 150.0, ("input", "2"): 160.0}))
    assert [(e[ev.STATE], e[ev.SERIES]["stage"], e[ev.SERIES]["phase"]) for e in fired] == [(ev.FIRING, "input", "2")]
    in_fp = fired[0][ev.FINGERPRINT]
    assert in_fp != out_fp
    # ... and the bypass, in bounds, stays quiet while both fire
    assert {a.series["stage"] for a in eng.active()} == {"input", "output"}

    # output recovers: only the output series resolves
    resolved = eng.observe(ups(3, {("input", "2"): 160.0}))
    assert [(e[ev.STATE], e[ev.FINGERPRINT]) for e in resolved] == [(ev.RESOLVED, out_fp)]
    assert [a.fingerprint for a in eng.active()] == [in_fp]
    # the bypass drops too: a third series, the input's alert untouched
    fired = eng.observe(ups(4, {("input", "2"): 160.0, ("bypass", "2"): 170.0}))
    assert [(e[ev.STATE], e[ev.SERIES]["stage"]) for e in fired] == [(ev.FIRING, "bypass")]
    assert sorted(a.series["stage"] for a in eng.active()) == ["bypass", "input"]
    resolved = eng.observe(ups(5))
    assert sorted((e[ev.STATE], e[ev.SERIES]["stage"]) for e in resolved) == [(ev.RESOLVED, "bypass"),
                                                                              (ev.RESOLVED, "input")]
    assert eng.active() == []


def test_any_new_series_tag_splits_series_and_location_tags_do_not():
    """No list of component tags: a tag no collector wrote before still tells series apart."""
    rules = load_rules_text("rules:\n  - {name: hot, measurement: pdu, field: voltage_v, op: '>', threshold: 250}\n")
    eng = Engine(rules)
    tags = {**LOCATION, "device": "xpdu-1", "phase": "1"}
    events = eng.observe([Sample("pdu", {**tags, "side": "input"}, {"voltage_v": 260.0}, T0),
                          Sample("pdu", {**tags, "side": "output"}, {"voltage_v": 260.0}, T0)])
    assert sorted(e[ev.SERIES]["side"] for e in events) == ["input", "output"]
    # location tags (vendor/model/hall...) belong to the device, not the series
    assert all(set(e[ev.SERIES]) == {"device", *series_tags(tags), "side"} for e in events)


def test_snapshot_round_trip_keeps_full_label_set_identity():
    eng = Engine(RULES)
    eng.observe(ups(0, {("output", "1"): 100.0, ("bypass", "1"): 100.0}))
    snap = eng.snapshot()
    assert snap["version"] == SNAPSHOT_VERSION
    again = Engine(RULES)
    again.restore(snap, now_ns=T0 + 10 * S)
    assert again.tick(T0 + 10 * S) == []  # nothing re-sent
    # the output recovers: exactly its own series resolves after the restart
    resolved = again.observe(ups(11, {("bypass", "1"): 100.0}))
    assert [(e[ev.STATE], e[ev.SERIES]["stage"]) for e in resolved] == [(ev.RESOLVED, "output")]


def test_version_1_snapshot_loads_and_its_alerts_are_resolved_then_refire_under_full_identity():
    """A snapshot written before identity was the full label set: stage was not part of it."""
    old_series = {"device": "ups-1", "phase": "2"}
    old_fp = ev.fingerprint("ups-voltage-low", old_series)
    absent_rules = load_rules_text("""
rules:
  - name: ups-voltage-low
    measurement: ups
    field: voltage_v
    op: '<'
    threshold: 200
  - {name: ups-silent, kind: absent, measurement: ups, stale_after_s: 60, select: {device: ups-2}}
""")
    alert = {"rule": "ups-voltage-low", "fingerprint": old_fp, "severity": "warning", "device": "ups-1",
             "series": old_series, "location": {"site": "s", "hall": "h1", "row": "r1"}, "state": "firing",
             "value": 150.0, "threshold": 200.0, "pending_since_ns": T0, "since_ns": T0, "last_sent_ns": T0,
             "labels": {}, "context": {}, "suppressed_by": "", "silenced": False, "acked": False, "notifications": 1}
    absent_fp = ev.fingerprint("ups-silent", {"device": "ups-2"})
    absent = {**alert, "rule": "ups-silent", "fingerprint": absent_fp, "device": "ups-2",
              "series": {"device": "ups-2"}, "value": 61.0, "threshold": 60.0}
    v1 = {"version": 1, "started_ns": T0,
          "alerts": [[["ups-voltage-low", "ups-1", [["phase", "2"]]], alert],
                     [["ups-silent", "ups-2", []], absent]],
          "seen": [[["ups-silent", "ups-2", []], T0, {"site": "s"}]],
          "fails": {}, "rate_last": [[["ups-voltage-low", "ups-1", [["phase", "2"]]], T0, 150.0]]}
    eng = Engine(absent_rules)
    eng.restore(v1, now_ns=T0 + 10 * S)
    # absent identity (the device alone) is unchanged: that alert carries over
    assert [a.fingerprint for a in eng.active()] == [absent_fp]
    # the merged v1 series is resolved once, so retained topics and receivers close it
    events = [e for e in eng.tick(T0 + 10 * S) if e[ev.RULE] == "ups-voltage-low"]
    assert [(e[ev.STATE], e[ev.FINGERPRINT]) for e in events] == [(ev.RESOLVED, old_fp)]
    assert [e for e in eng.tick(T0 + 11 * S) if e[ev.RULE] == "ups-voltage-low"] == []
    # still low: fires again, now as the output's own series
    fired = eng.observe(ups(12, {("output", "2"): 150.0}))
    assert [(e[ev.STATE], e[ev.SERIES]) for e in fired] == [
        (ev.FIRING, {"device": "ups-1", "stage": "output", "phase": "2"})]
    assert eng.snapshot()["version"] == SNAPSHOT_VERSION


def test_a_rule_comparing_a_state_with_a_vendor_word_is_refused():
    """``state == onBattery`` can never fire since states are vocabulary words: a load error, not silence."""
    import pytest

    from alerts.rules import RuleError

    text = "rules:\n  - name: on-batt\n    measurement: ups\n    field: state\n    op: '=='\n    threshold: onBattery\n"
    with pytest.raises(RuleError) as ei:
        load_rules_text(text, "r.yaml")
    assert "r.yaml:6: rules[0].threshold: 'onBattery' is not a state word" in str(ei.value)
    assert "compare state_raw" in str(ei.value)
    assert load_rules_text(text.replace("field: state", "field: state_raw"), "r.yaml").by_name["on-batt"]
    assert load_rules_text(text.replace("onBattery", "battery"), "r.yaml").by_name["on-batt"]
