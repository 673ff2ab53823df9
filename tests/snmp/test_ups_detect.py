"""Which UPS profile a device gets, from its sysObjectID and the objects it answers (pure).

The sysObjectIDs are those of real cards: LibreNMS's recordings of them (`netvision`,
`netmanplus`, `liebert`, `huaweiups`, `vertiv-ita2`, `deltaups`, `abbups_abbups`), several of
which hold nothing but the identity; the served cases in ``test_ups_probe.py`` cover the rest.
"""
from __future__ import annotations

import pytest

from collectors.snmp.detect import decide
from collectors.snmp.profiles import default_profiles

UPS_MIB_CHARGE = "1.3.6.1.2.1.33.1.2.4.0"           # upsEstimatedChargeRemaining (the generic UPS-MIB probe)
HUAWEI_DEVICES = "1.3.6.1.4.1.2011.6.174.1.1.1.4.0"  # hwUpsSysDeviceNum
ABB_MAKER = "1.3.6.1.4.1.53973.1.1.1.1.1.1.0"        # ABB upsIdentManufacturer
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"


@pytest.mark.parametrize("sysoid,gets,want", [
    ("1.3.6.1.4.1.13400.2.54", {}, "vertiv-ita2"),                      # Vertiv ITA2 card
    ("1.3.6.1.4.1.2254.2.4", {UPS_MIB_CHARGE: 100}, "delta-ups"),        # Delta / Minuteman card
    ("1.3.6.1.4.1.476.1.42", {UPS_MIB_CHARGE: 100}, "liebert-gp"),       # Liebert IS-UNITY
    ("1.3.6.1.4.1.5491.6", {UPS_MIB_CHARGE: 100}, "riello-netman"),      # Riello NetMan 100 plus
    ("1.3.6.1.4.1.4555.1.1.7", {}, "socomec-netvision"),                 # NET VISION 7/8
    ("1.3.6.1.4.1.534.1", {}, "eaton-xups"),
    (NET_SNMP_LINUX, {ABB_MAKER: "ABB", UPS_MIB_CHARGE: 100}, "abb-ups"),
    (NET_SNMP_LINUX, {HUAWEI_DEVICES: 1, UPS_MIB_CHARGE: 100}, "huawei-ups"),
    ("1.3.6.1.4.1.2011.2.6.9", {HUAWEI_DEVICES: 2}, "huawei-ups"),
    # NET VISION 5/6 (.4555.1.1.1) has another layout: the plain UPS-MIB reads it
    ("1.3.6.1.4.1.4555.1.1.1", {UPS_MIB_CHARGE: 98}, "ups-mib"),
    # a Linux host that is neither ABB nor Huawei but answers UPS-MIB is a plain UPS-MIB device
    (NET_SNMP_LINUX, {UPS_MIB_CHARGE: 100}, "ups-mib"),
])
def test_ups_family_detection(sysoid, gets, want):
    d = decide(sysoid, gets, {}, default_profiles())
    assert d.profile is not None and d.profile.name == want, d.explain()


def test_a_linux_host_without_any_ups_object_is_not_taken_for_a_ups():
    d = decide(NET_SNMP_LINUX, {}, {}, default_profiles())
    assert d.profile is None or d.profile.name not in {"abb-ups", "huawei-ups", "ups-mib"}, d.explain()
    refused = {v.profile: v.why for v in d.verdicts if not v.taken}
    assert "absent" in refused["abb-ups"] and "absent" in refused["huawei-ups"]
