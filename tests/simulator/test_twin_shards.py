"""Twin shards: N twin processes serve a site too big for one process's open-file limit;
each device is served by exactly one of them, the shard its collectors poll it from."""
from __future__ import annotations

import asyncio

from dcim.service import select_shard
from localservers.site import load_relocated
from simulator.twin import Twin


def test_two_twin_shards_serve_every_device_once():
    site = load_relocated()

    async def serve_both() -> list[set[str]]:
        twins = [Twin(site, devices=select_shard(site, (i, 2))) for i in range(2)]
        for t in twins:
            await t.start()  # both in one process: disjoint devices, so no socket is bound twice
        try:
            return [set(t.endpoints) for t in twins]
        finally:
            for t in twins:
                await t.stop()

    a, b = asyncio.run(serve_both())
    polled = {d.id for d in site.polled_devices() if d.protocol in ("snmp", "modbus", "dcgm", "redfish")}
    assert a and b and not (a & b)
    assert a | b == polled
