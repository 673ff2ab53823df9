"""The demo's live view, rendered to text."""
from __future__ import annotations

from rich.console import Console

from contract.sample import Sample
from dcim.live_view import LiveState, render


def _text(state: LiveState) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(render(state))
    return console.export_text()


def test_view_shows_what_the_derived_job_and_the_rule_engine_write(tmp_path, monkeypatch):
    """Fed as in the demo: the twin polled by the collectors (through the demo's backfill, a few
    rounds), the derived job's samples and the rule engine's events; a UPS on battery and a BMC
    that stops answering."""
    import asyncio
    import time

    from alerts.runtime import AlertRuntime
    from dcim.backfill import HistoryFault, backfill
    from dcim.demo import DEMO_SECRETS
    from dcim.service import CollectionService
    from derived.job import DerivedMetrics
    from simulator.twin import Twin
    from localservers.site import EXAMPLE_SITE, load_relocated

    for k, v in DEMO_SECRETS.items():
        monkeypatch.setenv(k, v)
    site = load_relocated(EXAMPLE_SITE)
    st = LiveState.for_site(site)
    derived_out: list = []

    async def run() -> None:
        start = time.time() - 3 * 900
        twin = Twin(site, seed=3, clock=lambda: start)
        await twin.start()
        service = CollectionService(site, None)
        dm = DerivedMetrics(site)
        runtime = AlertRuntime(site, EXAMPLE_SITE.parents[2] / "alerts" / "rules" / "site.yaml",
                               state_dir=tmp_path / "alerts", mqtt=None)
        runtime.add_listener(st.alert_event)
        for consumer in (dm.consume, runtime.consume, st):
            service.add_consumer(consumer)

        def derive(t_ns: int) -> None:
            derived_out[:] = dm.compute(t_ns)
            st(derived_out)
        faults = [HistoryFault("ups_on_battery", "ups-1a", start, float("inf")),
                  HistoryFault("no_answer", "h1-r01-k01-n1-bmc", start, float("inf"))]
        try:
            await backfill(twin, service, start, 900, faults=faults, after_step=[derive, runtime.tick])
        finally:
            await runtime.stop()
            await service.stop()
            await twin.stop()
    asyncio.run(run())

    site_power = next(s for s in derived_out if s.measurement == "site_power" and "hall" not in s.tags)
    pue = next(s for s in derived_out if s.measurement == "pue" and "hall" not in s.tags)
    assert st.facility_w == site_power.fields["facility_w"] and st.it_w == site_power.fields["it_w"]
    assert st.renewable_w == site_power.fields["renewable_w"]
    assert st.pue == pue.fields["pue"]
    halls = {s.tags["id"]: s.fields for s in derived_out if s.measurement == "capacity" and s.tags.get("level") == "hall"}
    assert halls and st.hall_load == {h: (f["load_w"], f["rated_w"]) for h, f in halls.items()}
    out = _text(st)
    assert f"{st.pue:.3f}" in out and f"{st.it_w / 1000:,.1f} kW" in out
    assert "ups-on-battery" in out and "ups-1a is on battery" in out
    assert f"{st.polls.ok} ok" in out and f"{st.polls.failed} failed" in out and st.polls.failed >= 3
    assert "h1-r01-k01-n1-bmc" in out and "timeout" in out
    fp = next(fp for fp, e in st.active_alerts.items() if e["rule"] == "ups-on-battery")
    st.alert_event({"fingerprint": fp, "state": "resolved"})
    assert "ups-on-battery" not in _text(st).split("Active alerts")[1].split("\n\n")[0]


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
