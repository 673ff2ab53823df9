"""The write-cache settings docs/storage.md gives for the full site reach a real influxd.

``InfluxServer(snapshot_bytes=…)`` must become influxd's ``cache-snapshot-memory-size``: a server
told to write its cache out at 1 MiB does so once it holds more (bench/site_full.py runs the full
site at 1.25 GiB; a setting influxd never saw would leave it at its 25 MiB default unnoticed).
"""
from __future__ import annotations

import time
import urllib.request

from localservers.influx import InfluxServer

MIB = 2**20


def _snapshots(server: InfluxServer) -> int:
    """Cache snapshots influxd has written (``tsm1_engine.cacheCompactions``, summed over shards)."""
    return int(server.counters({"tsm1_engine": ("cacheCompactions",)}).get("cacheCompactions", 0))


def test_snapshot_size_reaches_influxd(tmp_path):
    server = InfluxServer(tmp_path / "influx", snapshot_bytes=MIB, cache_max_bytes=256 * MIB)
    text = server.config_text()
    assert f"cache-snapshot-memory-size = {MIB}" in text
    assert f"cache-max-memory-size = {256 * MIB}" in text
    server.start()
    try:
        server.create_database("s")
        assert _snapshots(server) == 0
        t0 = 1_760_000_000_000_000_000
        # 20,000 series × 2 fields: ≈2 MB of cache as influxd counts it, past the 1 MiB threshold
        body = "\n".join(f"gpu,device=n{i:05d},gpu={i % 8} temp_c={i % 90}.5,power_w={i}i {t0}"
                         for i in range(20_000)).encode()
        req = urllib.request.Request(f"{server.url}/write?db=s&precision=ns", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204
        deadline = time.monotonic() + 60  # influxd looks at its cache's size once a second
        while _snapshots(server) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _snapshots(server) >= 1, "influxd never wrote its cache out at 1 MiB"
        rows = server.query('SELECT count("power_w") FROM "gpu"', db="s")
        assert rows["results"][0]["series"][0]["values"][0][1] == 20_000
    finally:
        server.stop()
