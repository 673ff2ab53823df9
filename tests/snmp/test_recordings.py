"""Every recording served by snmpsim, polled with --profile auto, equals LibreNMS's values."""
from __future__ import annotations

import asyncio
import csv
import math
import re

import pytest
import yaml

from collectors.base import Target
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.engine import ENGINES
from inventory.secrets import SecretValue
from tests.snmp.conftest import recordings
from tests.snmp.conftest import testdata_dir as _testdata

from pathlib import Path

MAP = yaml.safe_load((Path(__file__).with_name("librenms_map.yaml")).read_text())
NAMES = [r.stem for r in recordings()]


def _target(name: str, port: int, engine: str) -> Target:
    return Target(device_id=name, protocol="snmp", host="127.0.0.1", port=port, timeout_s=3.0, retries=1,
                  tags={"device": name}, options={"engine": engine}, secrets={"community": SecretValue(name)})


def _poll(name: str, port: int, engine: str) -> tuple[list, SnmpCollector]:
    async def run():
        c = SnmpCollector()
        try:
            return await c.poll(_target(name, port, engine)), c
        finally:
            await c.close()
    return asyncio.run(run())


_cache: dict = {}


def poll_cached(name, port, engine):
    key = (name, engine)
    if key not in _cache:
        _cache[key] = _poll(name, port, engine)
    return _cache[key]


def _rule_for(rules, row):
    oid = row["sensor_oid"].lstrip(".")
    for rule in rules:
        m = re.fullmatch(rule["oid"], oid)
        if m and rule.get("class", row["sensor_class"]) == row["sensor_class"]:
            return rule, m
    return None, None


def test_every_recording_has_a_mapping():
    assert sorted(MAP.keys() - {"_states"}) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_recording_matches_librenms(snmpsim, name):
    entry = MAP[name]
    samples, collector = poll_cached(name, snmpsim.port, "gufo")
    assert collector.detected[name][1] == entry["profile"]
    rows = list(csv.DictReader(open(_testdata() / "snmp" / f"{name}.sensors.csv")))
    assert rows
    compared = 0
    for row in rows:
        rule, m = _rule_for(entry["rules"], row)
        assert rule is not None, f"{name}: CSV row not mapped: {row['sensor_class']} {row['sensor_oid']} {row['sensor_descr']}"
        if "skip" in rule:
            continue
        tags = {k: (m.expand(v) if "\\" in v else v.replace("$descr", row["sensor_descr"]))
                for k, v in rule["tags"].items()}
        want_raw = row["librenms_poller_sensor_current"] or row["librenms_discovery_sensor_current"]
        want = float(want_raw) * float(rule.get("factor", 1))
        matches = [s for s in samples if s.measurement == rule["measurement"]
                   and {k: s.tags.get(k) for k in tags} == tags
                   and not (set(s.tags) - set(tags) - {"device", "name", "sensor", "unit", "port"} - set(tags))
                   and rule["field"] in s.fields]
        # the most specific sample: fewest extra component tags
        matches.sort(key=lambda s: len(s.tags))
        assert matches, f"{name}: no {rule['measurement']} sample with {tags} and field {rule['field']} (row {row['sensor_descr']})"
        got = matches[0].fields[rule["field"]]
        assert math.isclose(got, want, rel_tol=1e-3, abs_tol=0.006), \
            f"{name}: {row['sensor_descr']} ({row['sensor_oid']}): got {got}, LibreNMS {want}"
        compared += 1
    assert compared >= 3, f"{name}: only {compared} values compared"


@pytest.mark.parametrize("name", NAMES)
def test_engines_give_identical_samples(snmpsim, name):
    results = {}
    for engine in ENGINES:
        samples, _ = poll_cached(name, snmpsim.port, engine)
        results[engine] = sorted((s.measurement, sorted(s.tags.items()), sorted(s.fields.items())) for s in samples)
    first, *rest = results.values()
    assert first
    for other in rest:
        assert other == first


def test_profiles_states(snmpsim):
    """States decode to the contract.states vocabulary, the vendor MIB's name kept in <field>_raw."""
    samples, _ = poll_cached("apc_ap8959eu3", snmpsim.port, "gufo")
    outlets = {s.tags["outlet"]: s.fields["state"] for s in samples if "outlet" in s.tags}
    assert outlets["23"] == "off" and outlets["1"] == "on" and len(outlets) == 24
    samples, _ = poll_cached("cyberpower", snmpsim.port, "gufo")
    out = [s for s in samples if s.tags.get("stage") == "output"][0]
    assert out.fields["state"] == "normal" and out.fields["state_raw"] == "onLine"


# (recording, stage, field) -> (vocabulary word, the vendor's word in <field>_raw), from the recorded integers
UPS_STATES = {
    ("apc_smt750x-nmc2", "output", "state"): ("normal", "onLine"),             # upsBasicOutputStatus 2
    ("apc_smt750x-nmc2", "battery", "replace"): ("ok", "ok"),                  # upsAdvBatteryReplaceIndicator 1
    ("eaton-mgeups_93ps", "output", "state"): ("normal", "normal"),            # UPS-MIB upsOutputSource 3
    ("eaton-mgeups_93ps", "battery", "state"): ("normal", "batteryNormal"),    # upsBatteryStatus 2
    ("eatonups", "output", "state"): ("normal", "normal"),                     # XUPS xupsOutputSource 3
    ("eatonups", "battery", "state"): ("normal", "batteryResting"),            # xupsBatteryAbmStatus 4
    ("cyberpower", "output", "state"): ("normal", "onLine"),                   # upsBaseOutputStatus 2
    ("cyberpower", "battery", "state"): ("normal", "normal"),                  # upsBaseBatteryStatus 2
    ("cyberpower", "input", "state"): ("normal", "normal"),                    # upsAdvanceInputStatus 1
}


def test_ups_states_use_the_vocabulary_for_every_vendor(snmpsim):
    """Four UPS MIBs, one vocabulary: the same rule (state == 'battery') serves them all."""
    from contract.states import UPS_OUTPUT, VOCABULARIES

    for (name, stage, field), (word, raw) in UPS_STATES.items():
        samples, _ = poll_cached(name, snmpsim.port, "gufo")
        (s,) = [s for s in samples if s.measurement == "ups" and s.tags.get("stage") == stage and field in s.fields]
        assert (s.fields[field], s.fields[field + "_raw"]) == (word, raw), (name, stage, field)
        if stage == "output":
            assert s.fields[field] in VOCABULARIES[UPS_OUTPUT]
