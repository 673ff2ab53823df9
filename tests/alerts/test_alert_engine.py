"""The pure engine: transitions, hysteresis, for_s, stale/absent, device_down, re-notify."""
from __future__ import annotations

from alerts.evaluate import Engine, fingerprint
from alerts.rules import load_rules_text
from contract.sample import Sample

S = 1_000_000_000
T0 = 1_764_000_000 * S


def rules(text: str):
    return load_rules_text(text, "t.yaml")


def pdu(value: float, t: float, device: str = "pdu-a", phase: str = "1") -> Sample:
    return Sample("pdu", {"site": "s", "hall": "h1", "device": device, "phase": phase}, {"current_a": value}, T0 + int(t * S))


HOT = """
rules:
  - name: phase-hot
    measurement: pdu
    field: current_a
    op: '>'
    threshold: 25
    clear: 22
    severity: major
    annotations: {summary: "{device} phase {phase} {value} A > {threshold}"}
"""


def test_fires_once_then_resolves_with_summary():
    eng = Engine(rules(HOT))
    assert eng.observe([pdu(20, 0)]) == []
    ev = eng.observe([pdu(26, 1)])
    assert [e["state"] for e in ev] == ["firing"]
    e = ev[0]
    assert e["device"] == "pdu-a" and e["hall"] == "h1" and e["value"] == 26 and e["threshold"] == 25
    assert e["annotations"]["summary"] == "pdu-a phase 1 26 A > 25"
    assert e["fingerprint"] == fingerprint("phase-hot", {"device": "pdu-a", "phase": "1"})
    assert e["since"].endswith("Z")
    assert eng.observe([pdu(27, 2)]) == []  # dedup: still firing, nothing sent
    ev = eng.observe([pdu(10, 3)])
    assert [e["state"] for e in ev] == ["resolved"]
    assert eng.active() == []


def test_flap_inside_hysteresis_band_fires_exactly_once():
    eng = Engine(rules(HOT))
    events = []
    for i, v in enumerate([26, 23, 25.5, 22.5, 26, 24, 30, 23]):
        events += eng.observe([pdu(v, i)])
    assert [e["state"] for e in events] == ["firing"]
    events += eng.observe([pdu(21.9, 10)])
    assert [e["state"] for e in events] == ["firing", "resolved"]


def test_without_clear_flapping_fires_each_time():
    eng = Engine(rules(HOT.replace("    clear: 22\n", "")))
    events = []
    for i, v in enumerate([26, 23, 26, 23]):
        events += eng.observe([pdu(v, i)])
    assert [e["state"] for e in events] == ["firing", "resolved", "firing", "resolved"]


def test_series_are_per_component_tag():
    eng = Engine(rules(HOT))
    ev = eng.observe([pdu(26, 0, phase="1"), pdu(26, 0, phase="2"), pdu(26, 0, device="pdu-b")])
    assert len({e["fingerprint"] for e in ev}) == 3


FOR = HOT.replace("severity: major", "severity: major\n    for_s: 30")


def test_for_not_elapsed_gives_nothing_and_recovering_cancels():
    eng = Engine(rules(FOR))
    assert eng.observe([pdu(26, 0)]) == []
    assert eng.tick(T0 + 29 * S) == []
    assert eng.observe([pdu(10, 29.5)]) == []  # pending cancelled, never sent
    assert eng.tick(T0 + 40 * S) == []
    assert eng.active(include_pending=True) == []


def test_for_elapsed_on_tick_fires():
    eng = Engine(rules(FOR))
    eng.observe([pdu(26, 0)])
    ev = eng.tick(T0 + 30 * S)
    assert [e["state"] for e in ev] == ["firing"]
    assert ev[0]["since"] == ev[0]["time"]


def test_renotify():
    eng = Engine(rules(HOT.replace("severity: major", "severity: major\n    renotify_s: 60")))
    assert len(eng.observe([pdu(26, 0)])) == 1
    assert eng.tick(T0 + 59 * S) == []
    ev = eng.tick(T0 + 60 * S)
    assert len(ev) == 1 and ev[0]["renotify"] and ev[0]["state"] == "firing"
    assert eng.tick(T0 + 61 * S) == []


def test_outside_band_and_equality_on_bool():
    r = rules("""
rules:
  - name: volts
    measurement: pdu
    field: voltage_v
    op: outside
    band: [207, 253]
  - name: on-batt
    measurement: ups
    field: on_battery
    op: '=='
    threshold: true
""")
    eng = Engine(r)
    mk = lambda m, f, v, t: Sample(m, {"device": "d"}, {f: v}, T0 + t * S)
    assert eng.observe([mk("pdu", "voltage_v", 230.0, 0)]) == []
    assert [e["rule"] for e in eng.observe([mk("pdu", "voltage_v", 200.0, 1)])] == ["volts"]
    assert [e["state"] for e in eng.observe([mk("pdu", "voltage_v", 260.0, 2)])] == []  # still firing
    assert [e["rule"] for e in eng.observe([mk("ups", "on_battery", True, 3)])] == ["on-batt"]
    assert [e["state"] for e in eng.observe([mk("ups", "on_battery", False, 4)])] == ["resolved"]


def test_rate_rule():
    eng = Engine(rules("""
rules:
  - name: runaway
    kind: rate
    measurement: meter
    field: energy_kwh
    rate_per_s: 2
"""))
    mk = lambda v, t: Sample("meter", {"device": "m"}, {"energy_kwh": v}, T0 + t * S)
    assert eng.observe([mk(100.0, 0), mk(110.0, 10)]) == []  # 1 kWh/s
    ev = eng.observe([mk(140.0, 20)])  # 3 kWh/s
    assert ev[0]["state"] == "firing" and abs(ev[0]["value"] - 3.0) < 1e-9


def test_device_down_after_consecutive_failed_polls():
    eng = Engine(rules("""
rules:
  - name: down
    kind: device_down
    polls: 3
    annotations: {summary: "{device} down: {error_kind}"}
"""))
    poll = lambda ok, t: Sample("poll", {"device": "ups-1a", "protocol": "snmp"},
                                {"ok": ok, "error_kind": "" if ok else "timeout", "error": ""}, T0 + t * S)
    assert eng.observe([poll(False, 0), poll(False, 10)]) == []
    assert eng.observe([poll(True, 20), poll(False, 30), poll(False, 40)]) == []  # the count restarts
    ev = eng.observe([poll(False, 50)])
    assert ev[0]["state"] == "firing" and ev[0]["value"] == 3
    assert ev[0]["annotations"]["summary"] == "ups-1a down: timeout"
    assert [e["state"] for e in eng.observe([poll(True, 60)])] == ["resolved"]


def test_stale_series_fires_on_tick_and_resolves_when_data_returns():
    eng = Engine(rules("""
rules:
  - name: stale
    kind: stale
    measurement: pdu
    field: current_a
    stale_after_s: 60
"""))
    eng.observe([pdu(10, 0, phase="1"), pdu(10, 0, phase="2")])
    eng.observe([pdu(10, 50, phase="2")])
    assert eng.tick(T0 + 60 * S) == []
    ev = eng.tick(T0 + 61 * S)
    assert [(e["state"], e["series"].get("phase")) for e in ev] == [("firing", "1")]
    assert eng.tick(T0 + 62 * S) == []  # dedup
    ev = eng.observe([pdu(10, 70, phase="1")])
    assert [e["state"] for e in ev] == ["resolved"]


def test_absent_uses_inventory_devices_never_seen():
    from inventory.loader import load_site
    site = load_site("inventory/examples/tetouan.yaml")
    eng = Engine(rules("""
rules:
  - name: ups-absent
    kind: absent
    measurement: ups
    stale_after_s: 30
    select: {kind: ups}
"""), site)
    eng.tick(T0)
    eng.observe([Sample("ups", {"device": "ups-1a"}, {"load_pct": 40.0}, T0 + 20 * S)])
    ev = eng.tick(T0 + 31 * S)
    assert [(e["device"], e["hall"]) for e in ev] == [("ups-1b", "h1")]


def test_snapshot_roundtrip_keeps_firing_without_resending():
    import json
    eng = Engine(rules(HOT))
    eng.observe([pdu(26, 0)])
    snap = json.loads(json.dumps(eng.snapshot()))
    eng2 = Engine(rules(HOT))
    eng2.restore(snap)
    assert [a.rule for a in eng2.active()] == ["phase-hot"]
    assert eng2.observe([pdu(27, 1)]) == []
    assert [e["state"] for e in eng2.observe([pdu(1, 2)])] == ["resolved"]
