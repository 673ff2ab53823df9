"""``dcim run --alerts`` builds its rule engine once polling has started (dcim/alert_wiring.py
DeferredRuntime): nothing the shard polled meanwhile goes unevaluated, in order, and a stop or an
error before the build is handled as the engine itself would be."""
from __future__ import annotations

import asyncio

import pytest

from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from dcim.alert_wiring import DeferredRuntime
from testkit.wait import wait_until

S = 1_000_000_000
T0 = 1_764_000_000 * S
HOT = "rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n"


def _sample(amps: float, t: int) -> list[Sample]:
    return [Sample("pdu", {"device": "pdu-1", "phase": "1"}, {"current_a": amps}, t)]


def _deferred(tmp_path, ready, events: list, wait_s: float = 30.0) -> DeferredRuntime:
    def build() -> AlertRuntime:
        rt = AlertRuntime(None, load_rules_text(HOT, "t"), state_dir=tmp_path / "state", mqtt=None,
                          clock=lambda: T0 + 10 * S)
        rt.add_listener(events.append)
        return rt
    return DeferredRuntime(build, ready=ready, wait_s=wait_s)


def test_samples_from_before_the_build_are_evaluated_in_order_once_it_is_ready(tmp_path):
    events: list[dict] = []
    ready = [False]

    async def run():
        d = _deferred(tmp_path, lambda: ready[0], events)
        await d.start()
        d.consume(_sample(30.0, T0 + S))      # fires...
        d.consume(_sample(10.0, T0 + 2 * S))  # ...and resolves, if kept in order
        await asyncio.sleep(0.3)
        assert d.runtime is None and events == []  # not built while the shard's first batch is not out
        await d.tick()  # a tick before the build is a no-op, not an error
        ready[0] = True
        assert await wait_until(lambda: d.runtime is not None, 10, 0.02)
        d.consume(_sample(40.0, T0 + 3 * S))  # straight to the engine now
        await d.tick()
        await d.stop(timeout=2.0)

    asyncio.run(run())
    assert [e["state"] for e in events if e["rule"] == "hot"] == ["firing", "resolved", "firing"]


def test_a_stop_before_the_build_builds_it_and_evaluates_what_came(tmp_path):
    events: list[dict] = []

    async def run():
        d = _deferred(tmp_path, lambda: False, events)
        await d.start()
        d.consume(_sample(30.0, T0 + S))
        await d.stop(timeout=2.0)
        return d

    d = asyncio.run(run())
    assert d.runtime is not None
    assert [e["state"] for e in events] == ["firing"]
    assert (tmp_path / "state" / "engine-state.json").exists()  # saved at stop, as the engine always is


def test_the_build_waits_at_most_wait_s(tmp_path):
    events: list[dict] = []

    async def run():
        d = _deferred(tmp_path, lambda: False, events, wait_s=0.2)  # InfluxDB never takes a batch
        await d.start()
        assert await wait_until(lambda: d.runtime is not None, 10, 0.02)
        await d.stop(timeout=2.0)

    asyncio.run(run())


def test_an_error_while_building_ends_the_service_at_the_next_tick(tmp_path):
    def build():
        raise PermissionError(13, "Permission denied", str(tmp_path / "state"))

    async def run():
        d = DeferredRuntime(build, ready=lambda: True, wait_s=0.1)
        await d.start()
        await asyncio.sleep(0)  # the build runs
        assert await wait_until(lambda: d._task.done(), 10, 0.02)
        with pytest.raises(PermissionError):
            await d.tick()
        await d.stop(timeout=1.0)  # nothing to stop, and no second error

    asyncio.run(run())
