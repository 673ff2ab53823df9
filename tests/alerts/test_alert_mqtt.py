"""The runtime against a real Mosquitto: fire/resolve, retained state, restarts, silences, acks."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from alerts.mqtt_publisher import MqttSettings
from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from inventory.loader import load_site
from mqtt_helpers import Subscriber

S = 1_000_000_000
SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"
RULES = load_rules_text("""
rules:
  - name: pdu-hot
    measurement: pdu
    field: current_a
    threshold: 25
    clear: 22
    severity: major
    select: {kind: pdu}
  - name: ups-on-battery
    measurement: ups
    field: on_battery
    op: '=='
    threshold: true
    severity: critical
    explains: [power]
""", "t.yaml")


@pytest.fixture(scope="module")
def site():
    return load_site(SITE)


class Clock:
    def __init__(self) -> None:
        self.t = time.time_ns()

    def __call__(self) -> int:
        return self.t

    def at(self, seconds: float) -> int:
        return self.t + int(seconds * S)


def pdu(clock: Clock, amps: float, t: float, device: str = "h1-r01-k01-pdu-a") -> Sample:
    return Sample("pdu", {"device": device, "phase": "1"}, {"current_a": amps}, clock.at(t))


def runtime(site, tmp_path: Path, port: int, clock: Clock, **kw) -> AlertRuntime:
    return AlertRuntime(site, RULES, state_dir=tmp_path / "state",
                        mqtt=MqttSettings(port=port, site="tetouan", **kw), clock=clock)


def run(coro):
    return asyncio.run(coro)


def states(sub: Subscriber) -> list[str]:
    return [e["state"] for e in sub.events()]


def test_fire_resolve_retained_state_and_status(site, tmp_path, mosquitto):
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/tetouan/#").start()
    rt = runtime(site, tmp_path, mosquitto.port, clock)

    async def go():
        await rt.start()
        rt.consume([pdu(clock, 30, 0)])
        await rt.tick(clock.at(1))
        assert rt.publisher.drain(10)
    run(go())
    assert sub.wait_for(lambda s: states(s) == ["firing"])
    ev = sub.events()[0]
    topic = next(t for t, p, r in sub.messages if "/alerts/" in t)
    assert topic == "dcim/tetouan/alerts/major/pdu-hot/h1-r01-k01-pdu-a"
    assert ev["hall"] == "h1" and ev["rack"] == "h1-r01-k01" and ev["value"] == 30

    # a late subscriber gets the retained current state and the engine status
    late = Subscriber(mosquitto.port, "dcim/tetouan/#", client_id="late").start()
    assert late.wait_for(lambda s: any(t == f"dcim/tetouan/active/{ev['fingerprint']}" for t, p, r in s.messages))
    assert late.wait_for(lambda s: ("dcim/tetouan/engine/status", b"online", True) in s.messages)
    late.stop()

    async def resolve():
        rt.consume([pdu(clock, 10, 2)])
        assert rt.publisher.drain(10)
        await rt.stop()
    run(resolve())
    assert sub.wait_for(lambda s: states(s) == ["firing", "resolved"])
    assert sub.wait_for(lambda s: (f"dcim/tetouan/active/{ev['fingerprint']}", b"", False) in s.messages)
    assert sub.wait_for(lambda s: s.messages[-1][:2] == ("dcim/tetouan/engine/status", b"offline"))
    # the cleared retained state is gone for the next subscriber
    later = Subscriber(mosquitto.port, "dcim/tetouan/active/#", client_id="later").start()
    time.sleep(0.3)
    assert later.messages == []
    later.stop()
    sub.stop()


def test_engine_restart_mid_firing_no_duplicate_and_resolution_later(site, tmp_path, mosquitto):
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/tetouan/alerts/#").start()
    rt = runtime(site, tmp_path, mosquitto.port, clock)

    async def first():
        await rt.start()
        rt.consume([pdu(clock, 30, 0)])
        await rt.stop()
    run(first())
    assert sub.wait_for(lambda s: states(s) == ["firing"])

    rt2 = runtime(site, tmp_path, mosquitto.port, clock)
    assert [a.rule for a in rt2.active()] == ["pdu-hot"]

    async def second():
        await rt2.start()
        rt2.consume([pdu(clock, 31, 10)])  # still above: no new firing
        await rt2.tick(clock.at(11))
        rt2.consume([pdu(clock, 5, 12)])
        assert rt2.publisher.drain(10)
        await rt2.stop()
    run(second())
    assert sub.wait_for(lambda s: states(s) == ["firing", "resolved"])
    time.sleep(0.2)
    assert states(sub) == ["firing", "resolved"]
    sub.stop()


def test_engine_crash_with_broker_down_loses_nothing(site, tmp_path, mosquitto):
    """Events made while the broker is down and the engine then crashes go out after both restart."""
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/tetouan/alerts/#", client_id="persistent", clean=False).start()
    mosquitto.stop()
    rt = runtime(site, tmp_path, mosquitto.port, clock)
    pdus = sorted(d.id for d in site.all_devices() if d.kind == "pdu")[:5]

    async def crash():
        await rt.start()
        for i, dev in enumerate(pdus):
            rt.consume([pdu(clock, 30, 2 * i, device=dev)])
            rt.consume([pdu(clock, 10, 2 * i + 1, device=dev)])
        rt.publisher.kill()
    run(crash())
    assert len(rt.outbox) == 20  # 10 events + 10 retained states, all waiting
    rt.outbox.close()

    mosquitto.start()
    rt2 = runtime(site, tmp_path, mosquitto.port, clock)

    async def resume():
        await rt2.start()
        assert rt2.publisher.drain(15)
        await rt2.stop()
    run(resume())
    assert sub.wait_for(lambda s: len(s.events()) >= 10, timeout=15)
    time.sleep(0.3)
    evs = sub.events()
    assert [e["device"] for e in evs] == [d for d in pdus for _ in (0, 1)]
    assert states(sub) == ["firing", "resolved"] * 5
    assert len({e["id"] for e in evs}) == 10
    sub.stop()


def test_broker_restart_events_during_outage_delivered_once(site, tmp_path, mosquitto):
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/tetouan/alerts/#", client_id="ops", clean=False).start()
    rt = runtime(site, tmp_path, mosquitto.port, clock)

    async def go():
        await rt.start()
        rt.consume([pdu(clock, 30, 0)])
        assert rt.publisher.drain(10)
        mosquitto.stop()
        await asyncio.sleep(0.3)
        rt.consume([pdu(clock, 10, 1)])  # resolved during the outage
        rt.consume([pdu(clock, 30, 2, device="h1-r01-k02-pdu-b")])
        assert len(rt.outbox) == 4
        await asyncio.sleep(0.3)
        mosquitto.start()
        assert await asyncio.get_running_loop().run_in_executor(None, rt.publisher.drain, 15)
        await rt.stop()
    run(go())
    assert sub.wait_for(lambda s: len(s.events()) >= 3, timeout=15)
    time.sleep(0.5)
    evs = sub.events()
    assert [(e["state"], e["device"]) for e in evs] == [
        ("firing", "h1-r01-k01-pdu-a"), ("resolved", "h1-r01-k01-pdu-a"), ("firing", "h1-r01-k02-pdu-b")]
    sub.stop()


def test_silence_and_ack_via_mqtt_commands_are_recorded(site, tmp_path, mosquitto):
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/tetouan/#").start()
    rt = runtime(site, tmp_path, mosquitto.port, clock)

    async def go():
        await rt.start()
        rt.consume([pdu(clock, 30, 0)])
        assert rt.publisher.drain(10)
        fp = rt.active()[0].fingerprint
        sub.client.publish("dcim/tetouan/commands/silence", json.dumps(
            {"select": "device=h1-r01-k02-*", "duration": "2h", "author": "amina", "reason": "PDU swap"}), qos=1)
        sub.client.publish("dcim/tetouan/commands/ack", json.dumps({"fingerprint": fp, "author": "youssef"}), qos=1)
        sub.client.publish("dcim/tetouan/commands/silence", b"not json", qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(rt.silences.audit()) < 2:
            await rt.tick(clock.at(1))
            await asyncio.sleep(0.05)
        assert rt.active()[0].acked
        rt.consume([pdu(clock, 30, 2, device="h1-r01-k02-pdu-a")])
        assert rt.publisher.drain(10)
        await rt.stop()
        return fp
    fp = run(go())
    audit = rt.silences.audit()
    assert [a["action"] for a in audit] == ["silence", "ack"]
    assert audit[0]["author"] == "amina" and audit[0]["match"] == {"device": "h1-r01-k02-*"}
    assert rt.commands_rejected == 1
    assert sub.wait_for(lambda s: len(s.events()) == 2)
    first, second = sub.events()
    assert not first["silenced"] and second["silenced"] and second["device"] == "h1-r01-k02-pdu-a"
    # the retained state of the acked alert was republished with acked=true
    acked = [json.loads(p) for t, p, r in sub.messages if t == f"dcim/tetouan/active/{fp}" and p]
    assert acked[-1]["acked"] is True
    sub.stop()


def test_broker_stopped_mid_stream_at_least_once_none_lost(tmp_path, mosquitto):
    """Broker goes down while 3,000 events stream out: every event arrives; duplicates are only
    messages that were in flight at the cut (bounded by the window) and carry the same id."""
    clock = Clock()
    sub = Subscriber(mosquitto.port, "dcim/load/alerts/#", client_id="ops-mid", clean=False).start()
    rules = load_rules_text("rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n", "t")
    rt = AlertRuntime(None, rules, state_dir=tmp_path / "st", mqtt=MqttSettings(port=mosquitto.port, site="load"),
                      clock=clock)

    async def go():
        await rt.start()
        for phase, amps in ((0, 30.0), (1, 10.0)):
            for start in range(0, 1500, 100):
                rt.consume([Sample("pdu", {"device": f"p{i}"}, {"current_a": amps}, clock.at(phase))
                            for i in range(start, start + 100)])
        deadline = time.monotonic() + 10
        while rt.publisher.published < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        mosquitto.stop()
        left = len(rt.outbox)
        await asyncio.sleep(0.3)
        mosquitto.start()
        assert await asyncio.get_running_loop().run_in_executor(None, rt.publisher.drain, 20)
        await rt.stop()
        return left
    left = run(go())
    assert left > 0  # the cut really happened mid-stream
    assert sub.wait_for(lambda s: len({e["id"] for e in s.events()}) >= 3000, timeout=20)
    evs = sub.events()
    ids = [e["id"] for e in evs]
    assert len(set(ids)) == 3000
    assert len(ids) - 3000 <= rt.publisher.settings.window
    sub.stop()
