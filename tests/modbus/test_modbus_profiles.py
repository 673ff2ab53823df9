"""Every shipped profile against a real server holding its device's registers.

Data-driven like Telegraf's testcases/: each folder in testcases/ holds
``device.yaml`` (device values at the vendor map's addresses, encoded the way the
device sends them) and ``expected.yaml`` (the samples, worked out by hand from
the manual).  Adding a regression test means adding a folder.
"""
from __future__ import annotations

import asyncio
import math
from urllib.parse import urlsplit

import pytest

from collectors.base import PollError
from collectors.modbus.profile import load_profile, profile_names
from collectors.modbus.url import target_from_url
from collectors.registry import make_collector
from modbus_cases import case_names, load_case
from testkit.testdata import shared_testdata

TAGS = {"site": "test", "device": "dev-1"}


def _close(a, b) -> bool:
    if isinstance(b, bool) or isinstance(b, str):
        return a == b and type(a) is type(b)
    if isinstance(b, int) and not isinstance(b, bool):
        return a == b and isinstance(a, int) and not isinstance(a, bool)
    return isinstance(a, float) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def test_every_profile_has_a_testcase():
    assert set(profile_names()) <= set(case_names()), "each profile needs a testcases/<profile>/ folder"


@pytest.mark.parametrize("name", case_names())
def test_profile_against_server(name, case_server):
    device, expected = load_case(name)
    target = target_from_url(urlsplit(f"modbus://127.0.0.1:{case_server.port}/{device['unit']}"), device["profile"])
    target.tags = dict(TAGS)
    collector = make_collector("modbus")

    async def run():
        try:
            first = await collector.poll(target)
            second = await collector.poll(target)  # the plan learned on the first poll must give the same result
            return first, second
        finally:
            await collector.close()

    try:
        first, second = asyncio.run(run())
    except PollError as exc:
        pytest.fail(f"{name}: poll failed: {exc.kind}: {exc.message}")
    for samples in (first, second):
        got = {(s.measurement, tuple(sorted((k, v) for k, v in s.tags.items() if k not in TAGS))): s for s in samples}
        want = {(e["measurement"], tuple(sorted(e["tags"].items()))): e["fields"] for e in expected}
        assert sorted(got) == sorted(want), f"{name}: sample series differ"
        for key, fields in want.items():
            sample = got[key]
            assert {k: sample.tags[k] for k in TAGS} == TAGS
            assert sorted(sample.fields) == sorted(fields), f"{name} {key}: field names differ"
            for f, v in fields.items():
                assert _close(sample.fields[f], v), f"{name} {key} {f}: got {sample.fields[f]!r}, want {v!r}"
            assert sample.time_ns > 1_600_000_000 * 10**9


def test_meter_profiles_follow_the_vendor_maps():
    """Profile addresses and types agree with the transcribed vendor maps in shared/testdata."""
    import yaml

    meters = shared_testdata() / "modbus" / "meters"
    pairs = {
        "eastron_sdm630": ("eastron_sdm630.yaml", "input"),
        "janitza_umg": ("janitza_b-series_umg.yaml", "holding"),
        "schneider_iem3000": ("schneider_iem3000_pm5xxx_common.yaml", "holding"),
        "siemens_pac2200": ("siemens_pac2200.yaml", "input"),
    }
    for profile_name, (map_file, function) in pairs.items():
        vendor = yaml.safe_load((meters / map_file).read_text())
        by_addr = {r["address"]: r for r in vendor["registers"]}
        profile = load_profile(profile_name)
        for p in profile.points:
            assert p.function == function, (profile_name, p)
            assert p.address in by_addr, f"{profile_name}: {p.field} at {p.address} is not in {map_file}"
            r = by_addr[p.address]
            assert p.type == r["type"], (profile_name, p.field, p.type, r["type"])
            assert math.isclose(p.scale, r["scale"]), (profile_name, p.field, p.scale, r["scale"])
        phases = {p.tags.get("phase") for p in profile.points}
        assert {"L1", "L2", "L3"} <= phases
