"""Profiles that must be refused, with the file, line and field named.

Each ``bad_profiles/NAME.yaml`` has ``NAME.err``: text the error must contain.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from collectors.modbus.profile import ProfileError, load_profile, load_profile_text, profile_names

BAD = Path(__file__).resolve().parent / "bad_profiles"


@pytest.mark.parametrize("name", sorted(p.stem for p in BAD.glob("*.yaml")))
def test_bad_profile_is_refused_with_location(name):
    path = BAD / f"{name}.yaml"
    expected = (BAD / f"{name}.err").read_text().strip()
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert expected in str(info.value).replace(str(BAD) + "/", "")


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(ProfileError, match=r"x.yaml:4: YAML syntax"):
        load_profile_text("name: a\nmeasurement: m\npoints: [\n  {field: a, address: 0]\n", "x.yaml")


def test_all_shipped_profiles_load():
    names = profile_names()
    assert {"eastron_sdm630", "janitza_umg", "schneider_iem3000", "siemens_pac2200",
            "trane_rtwd_pic", "apc_inrow_sc", "template_cdu"} <= set(names)
    for n in names:
        prof = load_profile(n)
        assert prof.name == n
        assert prof.measurement in ("meter", "chiller", "cdu", "crah")


def test_one_based_addresses_convert_to_pdu_addresses():
    prof = load_profile_text("name: a\nmeasurement: meter\naddress_base: 1\n"
                             "points:\n  - {field: current_a, address: 3000, type: float32}\n")
    assert prof.points[0].address == 2999
