"""50,000 events to a slow persistent subscriber through the shipped broker queue settings: none lost."""
from __future__ import annotations

import asyncio
import json
import time

from alerts.mqtt_publisher import MqttSettings
from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from mqtt_helpers import Subscriber
from localservers.mosquitto import MosquittoServer, queue_settings_from

S = 1_000_000_000
N_DEVICES = 25_000  # each fires then resolves: 50,000 events
RULES = load_rules_text("""
rules:
  - name: hot
    measurement: pdu
    field: current_a
    threshold: 25
    severity: minor
""", "load.yaml")


def test_50k_events_to_slow_subscriber_none_lost(tmp_path):
    conf = queue_settings_from()
    assert "max_queued_messages 100000" in conf  # the production queue bound, not mosquitto's default 1000
    broker = MosquittoServer(tmp_path / "broker", config_extra=conf).start()
    try:
        sub = Subscriber(broker.port, "dcim/load/alerts/#", client_id="slow-ops", clean=False,
                         delay_s=0.00005).start()
        t0 = time.time_ns()
        rt = AlertRuntime(None, RULES, state_dir=tmp_path / "state",
                          mqtt=MqttSettings(port=broker.port, site="load"), clock=lambda: t0)

        async def go():
            await rt.start()
            for phase, amps in ((0, 30.0), (1, 10.0)):
                for start in range(0, N_DEVICES, 2500):
                    rt.consume([Sample("pdu", {"device": f"pdu-{i:05d}"}, {"current_a": amps}, t0 + phase * S)
                                for i in range(start, start + 2500)])
            made = time.monotonic()
            ok = await asyncio.get_running_loop().run_in_executor(None, rt.publisher.drain, 45)
            print(f"evaluate+outbox {made - started:.1f}s, broker acked all {time.monotonic() - made:.1f}s later")
            assert rt.outbox.dropped == 0
            await rt.stop()
            return ok
        started = time.monotonic()
        assert asyncio.run(go()), f"outbox not drained: {len(rt.outbox)} left"
        assert sub.wait_for(lambda s: len(s.messages) >= 2 * N_DEVICES, timeout=max(5.0, 55 - (time.monotonic() - started)))
        with sub.lock:
            events = [json.loads(p) for t, p, r in sub.messages]
        print(f"subscriber has all {len(events)} after {time.monotonic() - started:.1f}s")
        assert len(events) == 2 * N_DEVICES
        assert len({e["id"] for e in events}) == 2 * N_DEVICES  # none lost, none twice
        # per series, order kept: firing before resolved
        first_state: dict[str, str] = {}
        for e in events:
            first_state.setdefault(e["fingerprint"], e["state"])
        assert set(first_state.values()) == {"firing"}
        sub.stop()
    finally:
        broker.stop()
