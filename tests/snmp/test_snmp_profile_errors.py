"""SNMP profiles that must be refused, with the file, line and field named.

Each ``bad_profiles/NAME.yaml`` has ``NAME.err``: text the error must contain.
Adding a case means adding two files.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collectors.snmp.profiles import PROFILE_DIR, ProfileError, load_profile, load_profiles

BAD = Path(__file__).resolve().parent / "bad_profiles"


@pytest.mark.parametrize("name", sorted(p.stem for p in BAD.glob("*.yaml")))
def test_bad_profile_is_refused_with_location(name):
    path = BAD / f"{name}.yaml"
    expected = (BAD / f"{name}.err").read_text().strip()
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert expected in text.replace(str(BAD) + "/", "")
    for line in text.splitlines():  # every problem names its file and line
        assert line.startswith(f"{path}:"), line
        assert line.split(":")[1].isdigit(), line


def test_every_bad_profile_has_its_expected_error():
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(p.stem for p in BAD.glob("*.err"))


def test_two_files_with_one_name_are_refused_naming_both(tmp_path):
    shutil.copy(PROFILE_DIR / "apc-rpdu2.yaml", tmp_path / "a.yaml")
    shutil.copy(PROFILE_DIR / "apc-rpdu2.yaml", tmp_path / "b.yaml")
    with pytest.raises(ProfileError) as info:
        load_profiles(tmp_path)
    assert f"{tmp_path / 'b.yaml'}:1: name: 'apc-rpdu2' already defined in {tmp_path / 'a.yaml'}" in str(info.value)


def test_a_directory_of_problems_lists_every_file(tmp_path):
    for name in ("detect_key_typo", "divide_zero"):
        shutil.copy(BAD / f"{name}.yaml", tmp_path / f"{name}.yaml")
    with pytest.raises(ProfileError) as info:
        load_profiles(tmp_path)
    assert [i.file for i in info.value.issues] == [str(tmp_path / "detect_key_typo.yaml"), str(tmp_path / "divide_zero.yaml")]


def test_unreadable_profile_names_the_file(tmp_path):
    with pytest.raises(ProfileError, match=r"missing.yaml: cannot read profile"):
        load_profile(tmp_path / "missing.yaml")


def _vendor(path: Path, name: str, extends: str) -> None:
    path.write_text(f"name: {name}\nextends: {extends}\ndetect: {{sysobjectid: [1.3.6.1.4.1.99999]}}\n"
                    "groups:\n  - measurement: ups\n    tags: {stage: output}\n    scalars:\n"
                    "      - {oid: 1.3.6.1.4.1.99999.1.0, field: load_pct}\n")


def test_extends_puts_the_base_groups_first(tmp_path):
    """A vendor profile on top of UPS-MIB: UPS-MIB's groups, then the vendor's (which win on a shared field)."""
    shutil.copy(PROFILE_DIR / "ups-mib.yaml", tmp_path / "ups-mib.yaml")
    _vendor(tmp_path / "vendor.yaml", "vendor", "ups-mib")
    profiles = load_profiles(tmp_path)
    base, vendor = profiles["ups-mib"], profiles["vendor"]
    assert vendor.groups[: len(base.groups)] == base.groups
    assert len(vendor.groups) == len(base.groups) + 1
    assert vendor.groups[-1].scalars[0][0] == "1.3.6.1.4.1.99999.1.0"
    assert set(base.get_oids) < set(vendor.get_oids) and set(base.walk_roots) <= set(vendor.walk_roots)
    # detection stays the vendor's own: extending does not inherit sysObjectID or generic
    assert vendor.sysobjectid == ("1.3.6.1.4.1.99999",) and not vendor.generic


def test_extends_cycle_is_refused_naming_the_chain(tmp_path):
    _vendor(tmp_path / "a.yaml", "a", "b")
    _vendor(tmp_path / "b.yaml", "b", "a")
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "a.yaml")
    assert "extends: a -> b -> a: a profile cannot extend itself" in str(info.value)


def test_extends_names_the_profile_in_that_file(tmp_path):
    _vendor(tmp_path / "a.yaml", "a", "b")
    shutil.copy(PROFILE_DIR / "ups-mib.yaml", tmp_path / "b.yaml")
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "a.yaml")
    assert f"{tmp_path / 'a.yaml'}:2: extends: b.yaml defines the profile 'ups-mib', not 'b'" in str(info.value)
