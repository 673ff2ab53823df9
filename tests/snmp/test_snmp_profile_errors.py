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
