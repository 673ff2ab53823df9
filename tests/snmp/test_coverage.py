"""``dcim probe --profile auto`` lists the vendor tables the chosen profile does not read.

Pure cases check how walked OIDs are grouped into tables (no MIB needed); the served cases
walk real recordings (``shared/testdata/snmp``) under snmpsim and check named gaps, the
bounds and the CLI output.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from collectors.snmp import coverage
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.profiles import default_profiles
from testkit.snmp import SnmpsimServer, community_target
from testkit.testdata import shared_testdata

ROOT = "1.3.6.1.4.1.318"


def test_enterprise_root():
    assert coverage.enterprise_root("1.3.6.1.4.1.318.1.3.4.5") == ROOT
    assert coverage.enterprise_root(".1.3.6.1.4.1.1718.3") == "1.3.6.1.4.1.1718"
    assert coverage.enterprise_root("1.3.6.1.2.1.1") is None


def test_columns_sharing_an_index_make_one_table_even_with_a_two_part_index():
    entry = "1.3.6.1.4.1.318.1.1.99.3.1"
    oids = [f"{entry}.{c}.{t}.{i}" for c in (2, 5, 7) for t in (1, 2) for i in (1, 2, 3)]
    groups = coverage.tables_of(oids, ROOT)
    assert list(groups) == [entry] and groups[entry][0] == "table" and len(groups[entry][1]) == 18


def test_scalars_group_by_parent_and_tables_stay_apart():
    oids = ["1.3.6.1.4.1.318.1.1.12.1.1.0", "1.3.6.1.4.1.318.1.1.12.1.2.0",
            "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1", "1.3.6.1.4.1.318.1.1.12.2.3.1.1.3.1"]
    groups = coverage.tables_of(oids, ROOT)
    assert groups["1.3.6.1.4.1.318.1.1.12.1"][0] == "scalars"
    assert groups["1.3.6.1.4.1.318.1.1.12.2.3.1.1"][0] == "table"


def test_uncovered_drops_what_the_profile_reads_and_names_other_readers():
    profs = default_profiles()
    walked = [("1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", 27), ("1.3.6.1.4.1.318.1.1.26.4.3.1.9.1", 5),   # read
              ("1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1", 12), ("1.3.6.1.4.1.318.1.1.12.2.3.1.1.3.1", 1),  # legacy table
              ("1.3.6.1.4.1.318.1.1.12.2.2.1.1.2.1", 16), ("1.3.6.1.4.1.318.1.1.12.2.2.1.1.3.1", 12)]
    gaps = {g.oid: g for g in coverage.uncovered(walked, ROOT, profs["apc-rpdu2"], profs)}
    assert "1.3.6.1.4.1.318.1.1.26.4.3.1" not in gaps
    assert gaps["1.3.6.1.4.1.318.1.1.12.2.3.1.1"].read_by == ("apc-rpdu",)
    named = gaps["1.3.6.1.4.1.318.1.1.12.2.2.1.1"]
    assert named.name == "PowerNet-MIB::rPDULoadPhaseConfigEntry" and named.read_by == ()
    assert (named.rows, named.columns) == (1, 2)


def test_every_mib_table_name_is_an_oid_and_a_mib_name():
    for oid, name in coverage.mib_names().items():
        assert all(p.isdigit() for p in oid.split(".")), oid
        assert "::" in name, (oid, name)


# ---- served recordings ----

RECS = ["apc_ap7900b", "sentry3_3phase"]


@pytest.fixture(scope="module")
def agent():
    server = SnmpsimServer([shared_testdata() / "snmp" / f"{name}.snmprec" for name in RECS]).start()
    yield server
    server.stop()


def _gaps(community: str, port: int, **bounds) -> str:
    target = community_target(community, port)

    async def run():
        c = SnmpCollector()
        try:
            await c.poll(target)
            return await c.gaps(target, **bounds)
        finally:
            await c.close()
    return asyncio.run(run())


def test_legacy_rpdu_recording_lists_its_unread_tables(agent):
    text = _gaps("apc_ap7900b", agent.port)
    head, *lines = text.splitlines()
    assert "not read by profile apc-rpdu" in head and "walked" in head
    assert any("1.3.6.1.4.1.318.1.1.12.2.2.1.1 PowerNet-MIB::rPDULoadPhaseConfigEntry" in l for l in lines)
    assert any(l.strip().startswith("1.3.6.1.4.1.318.1.1.26.6.3.1 ") and "read by profile apc-rpdu2" in l for l in lines)
    assert not any(l.strip().startswith("1.3.6.1.4.1.318.1.1.12.2.3.1.1 ") for l in lines), "a table it reads"


def test_walk_stops_at_the_object_bound_and_says_so(agent):
    text = _gaps("apc_ap7900b", agent.port, limit=10)
    assert "walked 10 objects" in text and "stopped at 10 objects" in text


def test_dcim_probe_prints_the_gaps(agent):
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", f"snmp://apc_ap7900b@127.0.0.1:{agent.port}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "under 1.3.6.1.4.1.318 not read by profile apc-rpdu" in proc.stderr
    assert "PowerNet-MIB::rPDULoadPhaseConfigEntry" in proc.stderr
    quiet = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", f"snmp://sentry3_3phase@127.0.0.1:{agent.port}",
                            "--no-gaps"], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and "not read by profile" not in quiet.stderr


def test_walk_includes_the_branches_of_the_sysobjectid_and_the_profile():
    kids = coverage.children_to_walk("1.3.6.1.4.1.5528", ["1.3.6.1.4.1.5528.100.20.10.2006",
                                                          "1.3.6.1.4.1.5528.100.4.1.1.1", "1.3.6.1.4.1.318.1"])
    assert 100 in kids and kids[:3] == [1, 2, 3] and 318 not in kids
