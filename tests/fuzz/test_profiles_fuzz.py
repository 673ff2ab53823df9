"""Profile loaders fuzzed with hypothesis: whatever a person writes, a ProfileError, never a traceback.

Each case takes a shipped SNMP or Modbus profile, breaks it at a random place
(replaces a value with junk of any YAML type, adds a misspelt key, deletes a
key) and loads it.  The loader must either accept it or refuse it with a
:class:`ProfileError` whose every line reads ``file:line: ...``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.modbus import profile as modbus_profile
from collectors.profile_schema import ProfileError
from collectors.snmp import profiles as snmp_profiles

CASES = int(os.environ.get("DCIM_FUZZ_CASES", "300"))
SNMP_FILES = sorted(snmp_profiles.PROFILE_DIR.glob("*.yaml"))
MODBUS_FILES = sorted(modbus_profile.PROFILE_DIR.glob("*.yaml"))
LOCATED = re.compile(r"^(.*/)?fuzz\.yaml:\d+: ")

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["1.3.6.1.4.1.318", ".1.3.6", "~", "f_to_c", "table", "bitfield", "float32",
                                     "pdu", "holding", "CDAB", "on", "off"]))
junk = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                                                     inner, max_size=3)), max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(data: Any, path: tuple, action: str, value: Any) -> Any:
    """A copy of ``data`` with the node at ``path`` replaced, given a new key, or deleted."""
    if not path:
        return value if action == "replace" else data
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        out = dict(data)
        if not rest and action == "delete":
            out.pop(head, None)
        elif not rest and action == "add_key":
            out[f"{head}s"] = value  # a plausible typo: the key's plural
        else:
            out[head] = _mutate(data[head], rest, action, value)
        return out
    out_list = list(data)
    if not rest and action == "delete":
        del out_list[head]
    else:
        out_list[head] = _mutate(data[head], rest, action, value)
    return out_list


def _broken(draw, files: list[Path]) -> str:
    data = yaml.safe_load(draw(st.sampled_from(files)).read_text())
    path = draw(st.sampled_from(_paths(data)))
    action = draw(st.sampled_from(["replace", "replace", "add_key", "delete"]))
    return yaml.safe_dump(_mutate(data, path, action, draw(junk)), sort_keys=False)


def _check_refusal(exc: ProfileError) -> None:
    lines = str(exc).split("\n")
    assert lines, "a refusal must say why"
    for line in lines:
        assert LOCATED.match(line), line


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_broken_snmp_profile_is_refused_with_a_location(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "fuzz.yaml"
    path.write_text(_broken(data.draw, SNMP_FILES))
    try:
        snmp_profiles.load_profile(path)
    except ProfileError as exc:
        _check_refusal(exc)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_broken_modbus_profile_is_refused_with_a_location(data):
    try:
        modbus_profile.load_profile_text(_broken(data.draw, MODBUS_FILES), "fuzz.yaml")
    except ProfileError as exc:
        _check_refusal(exc)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300))
def test_any_text_is_a_profile_or_a_located_error(text, tmp_path_factory):
    try:
        modbus_profile.load_profile_text(text, "fuzz.yaml")
    except ProfileError as exc:
        _check_refusal(exc)
    path = tmp_path_factory.mktemp("p") / "fuzz.yaml"
    path.write_text(text)
    try:
        snmp_profiles.load_profile(path)
    except ProfileError as exc:
        _check_refusal(exc)
