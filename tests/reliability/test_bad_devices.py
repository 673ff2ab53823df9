"""A device that answers garbage, slowly, or not at all never delays the others.

The twin of the example site serves every PDU, UPS and Modbus unit; three of
them misbehave while the real CollectionService polls everything every second.
Every other device must be polled on every tick, successfully, well inside its
deadline, with no skipped ticks — and the liars get `poll` errors, not readings.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from dcim.service import CollectionService
from localservers.site import load_relocated
from localservers.twin import TwinThread

RUN_S = 6.0
LIARS = {"h1-r01-k01-pdu-a": "garbage", "h1-r01-k02-pdu-b": "slow", "meter-util-b": "no_answer"}


@pytest.fixture()
def env(monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")


def test_liars_do_not_delay_honest_devices(env):
    site = load_relocated()
    devices = [d for d in site.polled_devices() if d.protocol in ("snmp", "modbus")]
    for d in devices:
        d.interval_s, d.timeout_s, d.retries = 1.0, 0.4, 1
    polls: dict[str, list] = defaultdict(list)
    readings: dict[str, int] = defaultdict(int)

    def consume(samples):
        for s in samples:
            if s.measurement == "poll":
                polls[s.tags["device"]].append(s.fields)
            else:
                readings[s.tags["device"]] += 1

    with TwinThread(site, slow_s=2.0) as twin:
        for device, behaviour in LIARS.items():
            twin.call(twin.twin.inject, behaviour, device)

        async def run():
            service = CollectionService(site, None, devices=devices)
            service.add_consumer(consume)
            await service.start()
            await asyncio.sleep(RUN_S)
            await service.stop()
            return service

        service = asyncio.run(run())
    assert not service.problems
    honest = [d.id for d in devices if d.id not in LIARS]
    assert len(honest) >= 20
    for dev_id in honest:
        fields = polls[dev_id]
        assert len(fields) >= RUN_S - 1, (dev_id, len(fields))
        assert all(f["ok"] for f in fields), (dev_id, [f.get("error") for f in fields])
        assert max(f["duration_ms"] for f in fields) < 500, (dev_id, fields)
        assert not any(f.get("skipped") for f in fields), dev_id
        assert readings[dev_id] > 0
    for dev_id in LIARS:
        assert polls[dev_id], dev_id
        assert not any(f["ok"] for f in polls[dev_id]), (dev_id, polls[dev_id])
        assert readings[dev_id] == 0, f"{dev_id} produced readings while lying"
        want = "protocol" if LIARS[dev_id] == "garbage" else "timeout"   # garbage is not silence, on every protocol
        assert {f["error_kind"] for f in polls[dev_id]} == {want}, (dev_id, polls[dev_id][:2])
