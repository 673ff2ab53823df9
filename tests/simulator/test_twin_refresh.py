"""The twin's refresh loop steps the model a chunk at a time and keeps its event loop answering.

A full-site step is ≈1 s of CPU: stepped in one go, every endpoint of the twin process would
stall meanwhile.  Here the example site's twin steps one GPU node per chunk: its loop runs other
tasks between chunks, a synchronous step meanwhile finishes the chunked one first, and a stop
in the middle of a step leaves the model whole for the next step.
"""
from __future__ import annotations

import asyncio

from localservers.site import load_relocated
from simulator.model import SiteModel
from simulator.twin import Twin

T0 = 1_795_000_000.0


async def _until_stepping(twin: Twin) -> None:
    for _ in range(1000):
        await asyncio.sleep(0)
        if twin.model.stepping:
            return
    raise AssertionError("the refresh loop never paused in the middle of a step")


def test_the_refresh_loop_yields_mid_step_and_a_stop_mid_step_leaves_the_model_whole():
    site = load_relocated()
    now = [T0]
    twin = Twin(site, seed=4, refresh_s=0.0, clock=lambda: now[0])
    twin.step_chunk = 1
    assert sum(1 for d in twin.model.devices.values() if d.kind == "gpu_node") >= 3

    async def scenario() -> None:
        await twin.start()  # steps to T0 at once
        now[0] = T0 + 5
        await _until_stepping(twin)  # this coroutine runs while the twin is in the middle of a step
        version = twin._version
        twin.step(T0 + 7)  # synchronous (fault injection, backfill): the step to T0 + 5 is finished first
        assert not twin.model.stepping and twin._version == version + 1
        now[0] = T0 + 7
        await _until_stepping(twin)  # the loop went on: its finished step ended, the next began
        await twin.stop()
        assert twin._task is not None and twin._task.cancelled()
        assert twin.model.stepping  # the step to T0 + 7 is kept, not half-thrown-away
        await twin.stop()  # stopping again is harmless

    asyncio.run(scenario())
    twin.step(T0 + 9)  # finishes the pending step, then does this one
    assert not twin.model.stepping
    plain = SiteModel(site, seed=4)
    for t in (T0, T0 + 5, T0 + 7, T0 + 7, T0 + 9):
        plain.step(t)
    assert next((k for k in plain.state if plain.state[k] != twin.model.state[k]), None) is None
