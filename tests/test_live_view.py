"""The demo's live view, rendered to text."""
from __future__ import annotations

from rich.console import Console

from collectors.sample import Sample
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
