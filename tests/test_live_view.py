"""The demo's live view, rendered to text."""
from __future__ import annotations

from rich.console import Console

from contract.sample import Sample
from dcim.live_view import LiveState, render


def _text(state: LiveState) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(render(state))
    return console.export_text()


def test_view_shows_pue_power_halls_alerts_and_failing_devices():
    st = LiveState(site="tetouan")
    st([
        Sample("site_power", {"site": "tetouan"}, {"facility_power_w": 1_234_000.0, "it_power_w": 1_000_000.0}, 1),
        Sample("pue", {"site": "tetouan"}, {"pue_instant": 1.234}, 1),
        Sample("capacity", {"site": "tetouan", "level": "hall", "id": "h1"}, {"load_w": 900_000.0, "rated_w": 1_000_000.0}, 1),
        Sample("poll", {"device": "pdu-1"}, {"ok": True, "duration_ms": 3.5}, 1),
        Sample("poll", {"device": "ups-9"}, {"ok": False, "duration_ms": 2000.0, "error_kind": "timeout", "error": "no reply"}, 1),
    ])
    st.alert_event({"fingerprint": "abc", "state": "firing", "severity": "critical", "rule": "ups_on_battery",
                    "device": "ups-1a", "annotations": {"summary": "UPS ups-1a on battery"}})
    out = _text(st)
    assert "1.234" in out and "1,234.0 kW" in out and "1,000.0 kW" in out
    assert "h1" in out and "90" in out
    assert "ups_on_battery" in out and "UPS ups-1a on battery" in out
    assert "1 ok" in out and "1 failed" in out
    assert "ups-9" in out and "timeout: no reply" in out
    st.alert_event({"fingerprint": "abc", "state": "resolved"})
    assert "Active alerts (0)" in _text(st)


def test_view_computes_instant_pue_from_meter_roles_of_the_inventory():
    from inventory import load_site_text

    site = load_site_text("""
site: {id: s}
devices:
  - {id: util, kind: utility}
  - {id: ups, kind: ups, fed_by: [util]}
  - {id: m-in, kind: meter, measures: util, meter: {role: boundary}}
  - {id: m-it, kind: meter, measures: ups, meter: {role: it, category: 1}}
halls:
  - {id: h1, rated_kw: 100, rows: [{id: r1, racks: [{id: k1, devices: [{id: p1, kind: pdu, fed_by: [ups]}]}]}]}
""")
    st = LiveState.for_site(site)
    st([Sample("meter", {"device": "m-in"}, {"power_w": 130_000.0}, 1),
        Sample("meter", {"device": "m-in", "phase": "L1"}, {"power_w": 43_000.0}, 1),
        Sample("meter", {"device": "m-it"}, {"power_w": 100_000.0}, 1),
        Sample("pdu", {"device": "p1", "pdu": "1"}, {"power_w": 60_000.0}, 1),
        Sample("pdu", {"device": "p1", "pdu": "1", "phase": "1"}, {"power_w": 20_000.0}, 1)])
    assert st.pue == 1.3 and st.facility_w == 130_000.0 and st.it_w == 100_000.0
    assert st.hall_load == {"h1": (60_000.0, 100_000.0)}
