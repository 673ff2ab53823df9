"""Each twin fault raises the alert the shipped rules say it should, then resolves.

The whole chain runs for real: twin endpoints → collectors → scheduler → rule
engine (alerts/rules/site.yaml, with its `for_s` shortened to 1 s so the test
takes seconds, not minutes).
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

from alerts.runtime import AlertRuntime
from dcim.service import CollectionService
from localservers.site import load_relocated
from localservers.twin import TwinThread
from testkit.wait import wait_until

RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules" / "site.yaml"
FAULTS = [  # (fault, device, rule that must fire on that device)
    ("ups_on_battery", "ups-1a", "ups-on-battery"),
    ("chiller_trip", "chiller-1", "chiller-stopped"),
    ("cdu_leak", "cdu-2", "leak-detected"),
    ("gpu_overtemp", "h1-r02-k01-n2", "gpu-temp-high"),
    ("xid_storm", "h1-r02-k02-n3", "gpu-xid-error"),
    ("pdu_breaker_trip", "h1-r01-k03-pdu-b", "pdu-output-dead"),
    ("no_answer", "h1-r02-k03-pdu-a", "device-down"),
]


def test_every_fault_fires_its_alert_and_resolves(tmp_path, monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    monkeypatch.setenv("DCIM_BMC_USER", "u")
    monkeypatch.setenv("DCIM_BMC_PASSWORD", "p")
    rules = tmp_path / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 1", RULES.read_text()))
    site = load_relocated()
    for d in site.polled_devices():
        d.interval_s, d.timeout_s, d.retries = 1.0, 0.5, 0
    events: list[dict] = []

    def firing() -> set[tuple[str, str]]:
        state: dict[str, tuple[str, str, str]] = {}
        for e in events:
            state[e["fingerprint"]] = (e["rule"], e["device"], e["state"])
        return {(r, d) for r, d, s in state.values() if s == "firing"}

    with TwinThread(site, refresh_s=0.5) as twin:
        async def run():
            service = CollectionService(site, None)
            runtime = AlertRuntime(site, rules, state_dir=tmp_path / "state", mqtt=None)
            runtime.add_listener(events.append)
            service.add_consumer(runtime.consume)
            await runtime.start()
            await service.start()

            async def ticker():
                while True:
                    await runtime.tick()
                    await asyncio.sleep(0.25)
            tick_task = asyncio.create_task(ticker())
            try:
                await asyncio.sleep(3)  # a healthy baseline first: nothing of ours fires
                expected = {(rule, dev) for _, dev, rule in FAULTS}
                assert not firing() & expected, firing()
                for fault, dev, _ in FAULTS:
                    twin.call(twin.twin.inject, fault, dev)
                assert await wait_until(lambda: expected <= firing(), 25, 0.25), expected - firing()
                for fault, dev, _ in FAULTS:
                    twin.call(twin.twin.clear, fault, dev)
                # the chiller's loop cools down and the XID gauge resets once the storm is over
                assert await wait_until(lambda: not firing() & expected, 25, 0.25), firing() & expected
            finally:
                tick_task.cancel()
                await service.stop()
                await runtime.stop()
        asyncio.run(run())
    by_rule = {(e["rule"], e["device"]): e for e in events if e["state"] == "firing"}
    assert by_rule[("ups-on-battery", "ups-1a")]["severity"] == "critical"
    assert "ups-1a" in by_rule[("ups-on-battery", "ups-1a")]["annotations"]["summary"]
