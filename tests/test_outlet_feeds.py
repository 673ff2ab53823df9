"""Outlet samples carry the node they feed (from the inventory), so outlet and GPU power line up."""
from __future__ import annotations

import asyncio

from collectors.targets import build_targets, outlet_feeds
from dcim.service import CollectionService
from localservers.site import load_relocated
from localservers.twin import TwinThread


def test_feeds_map_follows_fed_by(monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    site = load_relocated()
    feeds = outlet_feeds(site)
    assert feeds["h1-r01-k01-pdu-a"]["1"] == "h1-r01-k01-n1"   # not its BMC (labels.node = n1)
    assert feeds["h1-r01-k01-pdu-b"]["4"] == "h1-r01-k01-n4"
    assert "9" not in feeds["h1-r01-k01-pdu-a"]                 # nothing plugged there
    (t,), _ = build_targets(site, [site.device("h1-r02-k03-pdu-b")])
    assert t.outlet_feeds == feeds["h1-r02-k03-pdu-b"]


def test_polled_outlets_are_tagged_with_the_node(monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    site = load_relocated()
    pdu = site.device("h1-r01-k02-pdu-a")
    pdu.interval_s = 1.0
    seen = []
    with TwinThread(site):
        async def run():
            service = CollectionService(site, None, devices=[pdu])
            service.add_consumer(seen.extend)
            await service.start()
            await asyncio.sleep(1.5)
            await service.stop()
        asyncio.run(run())
    outlets = [s for s in seen if s.measurement == "pdu" and "outlet" in s.tags]
    assert len(outlets) >= 24
    tagged = {s.tags["outlet"]: s.tags["feeds"] for s in outlets if "feeds" in s.tags}
    assert tagged == {str(n): f"h1-r01-k02-n{n}" for n in (1, 2, 3, 4)}
    loaded = [s for s in outlets if s.tags.get("feeds")]
    assert all(s.fields["power_w"] > 200 for s in loaded), [(s.tags, s.fields) for s in loaded]  # nodes draw there
