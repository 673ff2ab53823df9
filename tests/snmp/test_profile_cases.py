"""Every SNMP profile has a test-case folder, and every MIB-derived case decodes as expected.

Layout: ``tests/snmp/testcases/<profile name>/`` holds a ``README.md`` saying where the cases come
from, and at least one case:

- ``recordings.txt``: names of real-device recordings in ``shared/testdata/snmp/`` (one a line);
  ``test_recordings.py`` compares those with LibreNMS value for value, so here we only check that
  each one exists and is mapped to this profile;
- ``<case>.snmprec`` + ``<case>.expected.yaml``: rows written from the vendor MIB's definitions
  where no real recording exists (the README says so), served by snmpsim and polled with
  ``--profile auto`` like a device.

A profile without a case is a red test, not a silent gap.  ``NO_CASE_YET`` names the profiles
that had none when the rule was introduced; it may only shrink (a listed profile that gains a case
fails until it is taken off the list).
"""
from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
import yaml

from collectors.snmp.collector import SnmpCollector
from collectors.snmp.profiles import PROFILE_DIR, load_profiles
from testkit.snmp import SnmpsimServer, community_target
from tests.snmp.conftest import testdata_dir as _testdata

CASES = Path(__file__).resolve().with_name("testcases")
MAP = yaml.safe_load(Path(__file__).with_name("librenms_map.yaml").read_text())

#: profiles that had no test case when the rule came in (to be written from their MIBs)
NO_CASE_YET: set[str] = set()


def _profile_names() -> list[str]:
    return sorted(load_profiles(PROFILE_DIR))


def _cases_of(folder: Path) -> list[str]:
    """Names of the cases in one profile folder (recordings and MIB-derived rows)."""
    cases = []
    rec = folder / "recordings.txt"
    if rec.is_file():
        cases += [f"recording:{n.strip()}" for n in rec.read_text().splitlines() if n.strip()]
    cases += [p.name[: -len(".snmprec")] for p in sorted(folder.glob("*.snmprec"))]
    return cases


def _mib_cases() -> list[tuple[str, str]]:
    return [(d.name, p.name[: -len(".snmprec")]) for d in sorted(CASES.iterdir()) if d.is_dir()
            for p in sorted(d.glob("*.snmprec"))]


def test_every_profile_has_a_case_folder():
    missing, stale = [], []
    for name in _profile_names():
        folder = CASES / name
        has = folder.is_dir() and (folder / "README.md").is_file() and _cases_of(folder)
        if not has and name not in NO_CASE_YET:
            missing.append(name)
        if has and name in NO_CASE_YET:
            stale.append(name)
    assert not missing, (f"SNMP profiles without a test case under {CASES}/<profile>/ "
                         f"(README.md + recordings.txt or <case>.snmprec/.expected.yaml): {missing}")
    assert not stale, f"these profiles now have a case: take them off NO_CASE_YET: {stale}"


def test_case_folders_name_real_profiles():
    names = set(_profile_names())
    strays = [d.name for d in CASES.iterdir() if d.is_dir() and d.name not in names]
    assert not strays, f"test-case folders for profiles that do not exist: {strays}"


def test_recording_cases_exist_and_are_mapped_to_their_profile():
    checked = 0
    for folder in sorted(d for d in CASES.iterdir() if d.is_dir()):
        for case in _cases_of(folder):
            if not case.startswith("recording:"):
                continue
            rec = case.split(":", 1)[1]
            assert (_testdata() / "snmp" / f"{rec}.snmprec").is_file(), f"{folder.name}: no recording {rec}"
            assert MAP.get(rec, {}).get("profile") == folder.name, \
                f"{folder.name}/recordings.txt: {rec} is mapped to {MAP.get(rec, {}).get('profile')!r} in librenms_map.yaml"
            checked += 1
    assert checked >= 1


def test_every_mib_case_has_expected_rows():
    for profile, case in _mib_cases():
        exp = CASES / profile / f"{case}.expected.yaml"
        assert exp.is_file(), f"{profile}/{case}.snmprec has no {exp.name}"
        rows = yaml.safe_load(exp.read_text())
        assert isinstance(rows, list) and rows, f"{exp}: expected a non-empty list of samples"


@pytest.fixture(scope="module")
def case_agent():
    """One snmpsim serving every MIB-derived case, each under the community '<profile>_<case>'."""
    server = SnmpsimServer({f"{profile}_{case}": CASES / profile / f"{case}.snmprec"
                            for profile, case in _mib_cases()}).start()
    yield server
    server.stop()


def _poll(community: str, port: int):
    """The first poll (walks) and the second (the walked rows read back with GETs)."""
    target = community_target(community, port)

    async def run():
        c = SnmpCollector()
        try:
            first = await c.poll(target)
            planned = community in c.known_rows  # GETs take fewer round trips than the walks
            second = await c.poll(target)
            return first, second, c.detected[community][1], c.known_polls, planned
        finally:
            await c.close()
    return asyncio.run(run())


def _series(samples) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for s in samples:
        out.setdefault((s.measurement, tuple(sorted(s.tags.items()))), {}).update(s.fields)
    return out


def _same(got, want) -> bool:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return got == want


@pytest.mark.parametrize("profile,case", _mib_cases(), ids=[f"{p}/{c}" for p, c in _mib_cases()])
def test_mib_case_decodes_to_expected_samples(case_agent, profile, case):
    samples, again, detected, known_polls, planned = _poll(f"{profile}_{case}", case_agent.port)
    assert detected == profile, f"--profile auto picked {detected!r} for {profile}/{case}"
    # the second poll GETs the rows the first walked where that takes fewer round trips (the
    # rPDU2 case walks 29 columns): the same series and values (counter-derived fields may be
    # added once a counter has a previous reading)
    assert known_polls == int(planned), f"{profile}/{case}: GETs planned {planned}, known polls {known_polls}"
    assert planned or profile != "apc-rpdu2"
    first, second = _series(samples), _series(again)
    assert set(second) == set(first), f"{profile}/{case}: GET poll series differ: {set(first) ^ set(second)}"
    for key, fields in first.items():
        assert all(_same(second[key].get(k), v) for k, v in fields.items()), \
            f"{profile}/{case}: {key}: walk {fields} vs GET {second[key]}"
    expected = yaml.safe_load((CASES / profile / f"{case}.expected.yaml").read_text())
    by_tags: dict[tuple, list] = {}
    for s in samples:
        key = (s.measurement, tuple(sorted((k, v) for k, v in s.tags.items() if k != "device")))
        by_tags.setdefault(key, []).append(s)
    for row in expected:
        key = (row["measurement"], tuple(sorted((k, str(v)) for k, v in row["tags"].items())))
        assert key in by_tags, f"{profile}/{case}: no sample {key}; got {sorted(by_tags)}"
        fields = {k: v for s in by_tags[key] for k, v in s.fields.items()}
        for name, want in row["fields"].items():
            assert name in fields, f"{profile}/{case}: {key} lacks field {name} (has {sorted(fields)})"
            assert _same(fields[name], want), f"{profile}/{case}: {key} {name} = {fields[name]!r}, want {want!r}"
    # nothing decoded that the case does not account for (a wrong index tag would show up here)
    wanted = {(r["measurement"], tuple(sorted((k, str(v)) for k, v in r["tags"].items()))) for r in expected}
    assert set(by_tags) == wanted, f"{profile}/{case}: unexpected series {sorted(set(by_tags) - wanted)}"
