"""A tetouan.yaml GPU node, its inventory target, the simulator's HTTP endpoint and the scheduler's poll_once."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collectors.gpu.dcgm import DcgmCollector
from collectors.scheduler import poll_once
from collectors.targets import device_target
from inventory.loader import load_site
from simulator.http_endpoints import HttpEndpoint, dcgm_page
from simulator.model import DeviceState, GpuState
from localservers.process import free_port

SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"


def test_inventory_gpu_node_through_scheduler_poll():
    site = load_site(SITE)
    dev = site.device("h1-r01-k01-n1")
    state = DeviceState(power_w=5000.0, gpus=[GpuState(power_w=300.0 + i, util=0.5) for i in range(dev.gpus)])
    mode = {"now": "ok"}
    port = free_port()

    async def run():
        ep = await HttpEndpoint(lambda path: ("text/plain; version=0.0.4", dcgm_page(dev.id, state))
                                if path == "/metrics" else None, lambda: mode["now"], 2.0).start("127.0.0.1", port)
        target = device_target(site, dev)
        target.port, target.timeout_s, target.retries = port, 0.5, 0
        collector = DcgmCollector()
        out = {}
        try:
            for m in ("ok", "garbage", "slow", "lost_gpu"):
                mode["now"] = "ok" if m == "lost_gpu" else m
                if m == "lost_gpu":
                    state.gpus.pop(3)
                out[m] = await poll_once(collector, target, deadline_s=1.0)
                # polls more than a timeout apart, as the scheduler's are: a GET right after a
                # timeout is a retry, and waits for the late reply (collectors/gpu/httpget.py)
                await asyncio.sleep(target.timeout_s + 0.1)
        finally:
            await collector.close()
            await ep.stop()
        return out
    out = asyncio.run(asyncio.wait_for(run(), 30))
    ok = out["ok"]
    assert ok.ok and len(ok.samples) == dev.gpus
    tags = ok.samples[0].tags
    assert (tags["device"], tags["rack"], tags["hall"], tags["site"]) == (dev.id, dev.rack, dev.hall, site.site.id)
    assert sorted(s.fields["power_w"] for s in ok.samples) == pytest.approx([300.0 + i for i in range(dev.gpus)])
    assert (out["garbage"].ok, out["garbage"].error_kind) == (False, "protocol")
    assert (out["slow"].ok, out["slow"].error_kind) == (False, "timeout")
    lost = out["lost_gpu"]
    assert (lost.ok, lost.error_kind) == (False, "device") and "GPU(s) 7 missing" in lost.error
    assert len(lost.samples) == dev.gpus - 1   # the GPUs still there are kept as partial data
