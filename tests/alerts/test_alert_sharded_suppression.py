"""Suppression across shards equals one engine evaluating the whole site.

The twin runs with faults injected (a chiller trip, a UPS on battery, a PDU breaker,
overheating GPUs, a leak); one poll round of the whole site is recorded through the
real collectors.  The same samples then go (1) through one engine and (2) through
three shard engines, each fed only its shard's samples (``select_shard``), talking
through a real Mosquitto.  Every firing alert must carry the same ``suppressed_by``
in both, on the engines and in the retained MQTT state; then the chiller recovers
(a second poll round) and both views follow again.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from alerts.mqtt_publisher import MqttSettings
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from dcim.service import CollectionService, select_shard
from localservers.site import load_relocated
from localservers.twin import TwinThread
from tests.alerts.mqtt_helpers import Subscriber

RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules" / "site.yaml"
SHARDS = 3
# the GPU nodes of row 1 are cooled by cdu-1, which chiller-1 cools; they sit in every shard
FAULTS = [("chiller_trip", "chiller-1"), ("ups_on_battery", "ups-1a"), ("pdu_breaker_trip", "h1-r01-k03-pdu-b"),
          ("cdu_leak", "cdu-2"), ("gpu_overtemp", "h1-r02-k01-n3")] + [
          ("gpu_overtemp", f"h1-r01-k0{k}-n{n}") for k in (1, 2, 3) for n in (1, 2, 3, 4)]


def _poll_round(site) -> list[Sample]:
    """Every polled device answered at least once, through the real collectors and scheduler."""
    got: list[Sample] = []
    polled = {d.id for d in site.polled_devices()}

    def answered() -> set[str]:
        return {s.tags.get("device") for s in got if s.measurement == "poll" and s.fields.get("ok") is True}

    async def go() -> None:
        service = CollectionService(site, None)
        service.add_consumer(got.extend)
        await service.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not polled <= answered():
            await asyncio.sleep(0.1)
        await service.stop()
    asyncio.run(go())
    assert polled <= answered(), f"devices that never answered the twin: {sorted(polled - answered())}"
    return got


def _views(runtimes) -> dict[str, str]:
    out: dict[str, str] = {}
    for rt in runtimes:
        for a in rt.active():
            out[a.fingerprint] = a.suppressed_by
    return out


def test_sharded_engines_suppress_like_one(tmp_path, monkeypatch, mosquitto):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    monkeypatch.setenv("DCIM_BMC_USER", "u")
    monkeypatch.setenv("DCIM_BMC_PASSWORD", "p")
    rules = tmp_path / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 0", RULES.read_text()))
    site = load_relocated()
    for d in site.polled_devices():
        d.interval_s, d.timeout_s, d.retries = 1.0, 3.0, 1
    shard_of = {d.id: i for i in range(SHARDS) for d in select_shard(site, (i, SHARDS))}
    with TwinThread(site) as twin:
        for fault, dev in FAULTS:
            twin.call(twin.twin.inject, fault, dev)
        twin.call(twin.twin.step)
        round1 = _poll_round(site)
        twin.call(twin.twin.clear, "chiller_trip", "chiller-1")
        twin.call(twin.twin.step)
        round2 = _poll_round(site)

    retained = Subscriber(mosquitto.port, "dcim/tetouan/active/#", client_id="check-retained").start()

    async def go() -> None:
        one = AlertRuntime(site, rules, state_dir=tmp_path / "one", mqtt=None)
        shards = [AlertRuntime(site, rules, state_dir=tmp_path / f"shard{i}",
                               mqtt=MqttSettings(port=mosquitto.port, site="tetouan", client_id=f"engine-{i}",
                                                 share_roots=True),
                               local_devices=[d for d, s in shard_of.items() if s == i]) for i in range(SHARDS)]
        for rt in shards:
            await rt.start()

        def retained_view() -> dict[str, str]:
            state: dict[str, str | None] = {}
            with retained.lock:
                for topic, payload, _ in retained.messages:
                    state[topic.rsplit("/", 1)[-1]] = json.loads(payload)["suppressed_by"] if payload else None
            return {fp: sb for fp, sb in state.items() if sb is not None}

        async def converge(want: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
            deadline = time.monotonic() + 40
            while True:
                for rt in shards:
                    await rt.tick()
                got, on_broker = _views(shards), retained_view()
                if (got == want and on_broker == want) or time.monotonic() > deadline:
                    return got, on_broker
                await asyncio.sleep(0.1)

        try:
            for batch in (round1, round2):
                one.consume(batch)
                await one.tick()
                for i, rt in enumerate(shards):
                    rt.consume([s for s in batch if shard_of.get(s.tags.get("device", "")) == i])
                want = _views([one])
                got, on_broker = await converge(want)
                assert got == want
                assert on_broker == want
                if batch is round1:
                    chiller = next(a for a in one.active() if a.rule == "chiller-stopped" and a.device == "chiller-1")
                    # the case this is about: roots in one shard explaining alerts in another
                    crossing = [a for rt in shards for a in rt.active() if chiller.fingerprint in a.suppressed_by
                                and shard_of[a.device] != shard_of["chiller-1"]]
                    assert crossing, "no alert in another shard is explained by the chiller"
                    assert any(a.rule == "gpu-temp-high" for a in crossing), [a.rule for a in crossing]
                else:
                    assert not any(chiller.fingerprint in sb for sb in got.values()), got
                    assert any(rt.engine.get(a.fingerprint) for rt in shards for a in crossing
                               if a.rule == "gpu-temp-high"), "the GPUs should still be hot"
        finally:
            for rt in shards:
                await rt.stop()
            await one.stop()
    try:
        asyncio.run(go())
    finally:
        retained.stop()
