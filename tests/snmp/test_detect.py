"""Generation detection: sysObjectID prefix, then a probe of the candidate's own column.

Pure cases feed ``decide`` the answers a device would give; the served cases run the
collector's detection against snmpsim serving real recordings (``shared/testdata/snmp``) and
the project's MIB-derived cases, and check that ``dcim probe`` says what it picked and why.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.snmp.collector import SnmpCollector
from collectors.snmp.detect import candidates, decide, plan
from collectors.snmp.profiles import default_profiles
from testkit.snmp import SnmpsimServer, community_target
from testkit.testdata import shared_testdata

CASES = Path(__file__).resolve().with_name("testcases")
RPDU2_POWER = "1.3.6.1.4.1.318.1.1.26.4.3.1.5"      # rPDU2DeviceStatusPower column
RPDU_LOAD = "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2"      # rPDULoadStatusLoad column
XPDU_POWER = "1.3.6.1.4.1.318.1.1.15.3.4.3.0"       # xPDUSystemOutputTotalPower.0


def test_plan_asks_each_candidate_generation_once():
    gets, cols = plan("1.3.6.1.4.1.318.1.3.4.5", default_profiles())
    assert RPDU2_POWER in cols and RPDU_LOAD in cols
    assert XPDU_POWER in gets                          # xPDU shares APC's enterprise number
    assert len(cols) == len(set(cols)) and len(gets) == len(set(gets))


def test_candidates_most_specific_prefix_first_generic_last():
    order = [p.name for p, _ in candidates("1.3.6.1.4.1.318.1.3.4.5", default_profiles())]
    assert order.index("apc-rpdu2") < order.index("apc-rpdu") < order.index("apc-xpdu")
    assert order[-1] == "entity-sensor"


def test_rpdu2_column_present_picks_rpdu2_and_says_why():
    d = decide("1.3.6.1.4.1.318.1.3.4.5", {}, {RPDU2_POWER: (RPDU2_POWER + ".1", 42)}, default_profiles())
    assert d.profile.name == "apc-rpdu2" and d.prefix == "1.3.6.1.4.1.318.1.3.4"
    text = d.explain()
    assert "rPDU2" in text and RPDU2_POWER in text and "1.3.6.1.4.1.318.1.3.4" in text


def test_rpdu2_column_answering_minus_one_falls_back_to_legacy_rpdu():
    cols = {RPDU2_POWER: (RPDU2_POWER + ".1", -1), RPDU_LOAD: (RPDU_LOAD + ".1", 15)}
    d = decide("1.3.6.1.4.1.318.1.3.4.4", {}, cols, default_profiles())
    assert d.profile.name == "apc-rpdu"
    passed = {v.profile: v.why for v in d.verdicts if not v.taken}
    assert "not supported" in passed["apc-rpdu2"] and RPDU2_POWER in passed["apc-rpdu2"]


def test_no_rpdu_table_and_xpdu_power_answers_picks_xpdu():
    d = decide("1.3.6.1.4.1.318.1.3.4.7", {XPDU_POWER: 125}, {}, default_profiles())
    assert d.profile.name == "apc-xpdu"
    passed = {v.profile: v.why for v in d.verdicts if not v.taken}
    assert "has no rows" in passed["apc-rpdu2"] and "has no rows" in passed["apc-rpdu"]


def test_vertiv_watchdog_without_pdu_table_is_not_read_as_a_pdu():
    d = decide("1.3.6.1.4.1.21239.42.1.60", {}, {}, default_profiles())
    assert d.profile.name == "entity-sensor" and d.prefix == ""
    assert any(v.profile == "vertiv-geist" and not v.taken for v in d.verdicts)


def test_nothing_answers_and_no_fallback_gives_no_profile():
    profs = {k: v for k, v in default_profiles().items() if k in ("apc-rpdu2", "apc-rpdu")}
    d = decide("1.3.6.1.4.1.318.1.3.4.5", {}, {}, profs)
    assert d.profile is None and "no profile matches" in d.explain()


# ---- against snmpsim: real recordings and MIB-derived cases ----

SERVED = {
    # community -> (file, profile it must pick, the column or instance that must be named)
    "apc_ap8959eu3": (shared_testdata() / "snmp" / "apc_ap8959eu3.snmprec", "apc-rpdu2", RPDU2_POWER),
    "apc_ap7900b": (shared_testdata() / "snmp" / "apc_ap7900b.snmprec", "apc-rpdu", RPDU_LOAD),
    "raritan-pdu_px2": (shared_testdata() / "snmp" / "raritan-pdu_px2.snmprec", "raritan-pdu2",
                        "1.3.6.1.4.1.13742.6.5.2.3.1.4"),
    "sentry3_3phase": (shared_testdata() / "snmp" / "sentry3_3phase.snmprec", "sentry3", "1.3.6.1.4.1.1718.3.2.2.1.7"),
    "vertiv_imd3": (CASES / "vertiv-geist" / "imd3_three_phase.snmprec", "vertiv-geist", "1.3.6.1.4.1.21239.5.2.3.1.1.9"),
    "sentry4_wye": (CASES / "sentry4" / "three_phase_wye.snmprec", "sentry4", "1.3.6.1.4.1.1718.4.1.3.3.1.3"),
}


@pytest.fixture(scope="module")
def agent():
    server = SnmpsimServer({community: src for community, (src, _, _) in SERVED.items()}).start()
    yield server
    server.stop()


def _detect(community: str, port: int):
    target = community_target(community, port)

    async def run():
        c = SnmpCollector()
        try:
            await c.poll(target)
            return c.detections[community]
        finally:
            await c.close()
    return asyncio.run(run())


@pytest.mark.parametrize("community", sorted(SERVED))
def test_served_device_detection_names_profile_prefix_and_probe(agent, community):
    _, want, probed = SERVED[community]
    d = _detect(community, agent.port)
    assert d.profile is not None and d.profile.name == want, d.explain()
    assert probed in d.evidence, d.explain()
    assert d.prefix and d.sysobjectid.startswith(d.prefix)


def test_dcim_probe_prints_the_choice_and_the_candidates_passed_over(agent):
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", f"snmp://apc_ap7900b@127.0.0.1:{agent.port}",
                           "--profile", "auto"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "profile apc-rpdu (rPDU (legacy))" in proc.stderr
    assert f"column {RPDU_LOAD} present" in proc.stderr
    assert "passed over apc-rpdu2" in proc.stderr and "(not supported)" in proc.stderr
    assert proc.stdout.strip(), "samples still go to stdout"


PX1_OUTLET_CURRENT = "1.3.6.1.4.1.13742.4.1.2.2.1.4"    # PDU-MIB outletCurrent column
PX2_INLET_VALUE = "1.3.6.1.4.1.13742.6.5.2.3.1.4"       # PDU2-MIB measurementsInletSensorValue column


def test_raritan_px1_and_px2_are_told_apart_by_their_mib_subtree():
    profiles = default_profiles()
    px1 = decide("1.3.6.1.4.1.13742.4", {}, {PX1_OUTLET_CURRENT: (PX1_OUTLET_CURRENT + ".1", 1850)}, profiles)
    assert px1.profile.name == "raritan-px1" and "PX1 (PDU-MIB)" in px1.explain()
    px2 = decide("1.3.6.1.4.1.13742.6", {}, {PX2_INLET_VALUE: (PX2_INLET_VALUE + ".1.1.1", 120)}, profiles)
    assert px2.profile.name == "raritan-pdu2"
    # a PX1 agent never offers the PDU2 tables, and PX2 is never asked for PDU-MIB's
    assert "raritan-pdu2" not in [p.name for p, _ in candidates("1.3.6.1.4.1.13742.4", profiles)]
    assert "raritan-px1" not in [p.name for p, _ in candidates("1.3.6.1.4.1.13742.6.3.2", profiles)]
    # a PX1 sysObjectID without the outlet column falls through to the generic fallback
    assert decide("1.3.6.1.4.1.13742.4", {}, {PX1_OUTLET_CURRENT: None}, profiles).profile.name != "raritan-px1"
