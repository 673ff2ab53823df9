"""Decoders fuzzed with hypothesis: whatever a device or a file sends, no crash.

Each decoder gets arbitrary input and must either decode or refuse with its
own documented error; nothing else may escape.  The example counts are the
"fuzz cases per decoder" figure of the reliability closing note.
"""
from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.modbus.decode import DecodeError, decode_raw
from collectors.plausibility import screen
from contract.sample import Sample
from collectors.snmp.decode import Fetched, decode
from collectors.snmp.profiles import load_profiles
from inventory.errors import InventoryError
from inventory.loader import load_site_text
from simulator.snmp_agent import decode_message

CASES = 300
PROFILES = load_profiles()
snmp_values = st.one_of(st.none(), st.integers(min_value=-2**64, max_value=2**64), st.binary(max_size=40),
                        st.text(max_size=20), st.floats(allow_nan=True, allow_infinity=True), st.booleans())


@settings(max_examples=CASES, deadline=None)
@given(name=st.sampled_from(sorted(PROFILES)), data=st.data())
def test_snmp_profile_decoder_never_crashes(name, data):
    profile = PROFILES[name]
    assert profile.get_oids or profile.walk_roots  # the compiled plan the collector fetches
    gets = {o: data.draw(snmp_values) for o in profile.get_oids[:20]}
    walks = {}
    for root in profile.walk_roots[:6]:
        rows = data.draw(st.lists(st.tuples(st.text("0123456789.", min_size=1, max_size=12), snmp_values), max_size=8))
        walks[root] = [(f"{root}.{suffix}", v) for suffix, v in rows]
    samples, problems = decode(profile, Fetched(gets=gets, walks=walks), {"device": "fuzz"}, 1)
    for s in samples:
        assert isinstance(s, Sample)
    assert all(kind in ("decode", "protocol", "device") for kind, _ in problems)


types = st.sampled_from(["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string(4)"])
orders = st.sampled_from(["ABCD", "DCBA", "BADC", "CDAB"])


@settings(max_examples=CASES, deadline=None)
@given(regs=st.lists(st.integers(min_value=0, max_value=65535), max_size=10), type_name=types, order=orders)
def test_modbus_register_decoder_never_crashes(regs, type_name, order):
    try:
        value = decode_raw(regs, type_name, order)
    except DecodeError:
        return
    assert isinstance(value, (int, float, str))


@settings(max_examples=CASES, deadline=None)
@given(st.binary(max_size=300))
def test_twin_snmp_request_parser_refuses_garbage_cleanly(data):
    try:
        decode_message(data)
    except (ValueError, IndexError):
        pass


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_inventory_loader_gives_inventory_errors_only(text):
    try:
        load_site_text(text, "fuzz.yaml")
    except InventoryError as exc:
        assert all(str(i).startswith("fuzz.yaml") for i in exc.issues)


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30))


@settings(max_examples=CASES, deadline=None)
@given(st.dictionaries(st.sampled_from(["power_w", "current_a", "voltage_v", "energy_kwh", "temp_c", "power_factor",
                                        "humidity_pct", "frequency_hz", "state", "xid_last"]), numbers, min_size=1))
def test_plausibility_screen_leaves_only_finite_in_bounds_values(fields):
    s = Sample("pdu", {"device": "x"}, dict(fields), 1)
    samples = [s]
    problems = screen(samples)
    kept = samples[0].fields if samples else {}
    assert len(problems) + len(kept) == len(fields)
    for name, value in kept.items():
        assert not (isinstance(value, float) and not math.isfinite(value))
    assert all("implausible" in p for p in problems)


def test_plausibility_flags_the_briefs_absurd_values():
    s = Sample("pdu", {"device": "x", "outlet": "3"}, {"power_w": -40_000.0, "energy_kwh": float("nan"),
                                                       "current_a": 1e30, "voltage_v": 231.0}, 1)
    samples = [s]
    problems = screen(samples)
    assert samples[0].fields == {"voltage_v": 231.0}
    assert len(problems) == 3 and any("outlet=3" in p and "power_w" in p for p in problems)


# -- bounded YAML: whatever a file says, data within bounds or a YamlProblem -----------------
_yaml_atoms = st.sampled_from([
    "a", "1", "-7", "0x1F", "1_000", "9" * 30, "9" * 4400, ".nan", ".inf", "-.inf", "1.0e+400", "true", "~", "''",
    "&x", "*x", "&y [1, 2]", "*y", "<<: *y", "<<: {a: 1}", "!!python/object/apply:os.system ['id']", "!!binary aGk=",
    "!!set {a, b}", "!!float nan", "[", "]", "{", "}", ":", "- ", "\n", "\n  ", ", ", "k: ", "#", "'", '"', "|\n  x",
])


def _assert_bounded(value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _assert_bounded(k)
            _assert_bounded(v)
    elif isinstance(value, list):
        for v in value:
            _assert_bounded(v)
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -2**63 <= value < 2**63


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_yaml_atoms, max_size=30).map("".join))
def test_bounded_yaml_gives_bounded_data_or_a_yaml_problem(text):
    from inventory.yaml_lines import YamlProblem, load_with_lines

    try:
        data, lines = load_with_lines(text)
    except YamlProblem as exc:
        assert exc.message and "Traceback" not in exc.message
        return
    _assert_bounded(data)
    assert "*" not in text or "&" not in text or data is None or len(repr(data)) < 4 * len(text) + 100


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["rules:\n", "  - name: r\n", "    measurement: pdu\n", "    field: f\n",
                                 "    threshold: .nan\n", "    for_s: 1e300\n", "    for_s: " + "9" * 5000 + "\n",
                                 "    annotations: {summary: '{value:>99999999}'}\n", "    annotations: {summary: '{a.b}'}\n",
                                 "    annotations: {summary: '{'}\n", "    threshold: 3\n", "    op: outside\n",
                                 "    band: [1, .inf]\n", "x: &a [1]\ny: *a\n"]), max_size=12).map("".join))
def test_rule_files_give_rule_errors_only(text):
    from alerts.rules import RuleError, load_rules_text

    try:
        load_rules_text(text, "fuzz-rules.yaml")
    except RuleError as exc:
        assert all(str(i).startswith("fuzz-rules.yaml") for i in exc.issues)


@settings(max_examples=CASES, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["_", "true", "x", "1x", "2x999999999999", "1+1x99999", "-3-2x4", "nan"]),
                          st.from_regex(r"\A-?[0-9]{1,4}(\.[0-9])?([+-][0-9])?x[0-9]{1,8}\Z")), max_size=20).map(" ".join))
def test_rule_test_values_expand_within_the_cap_or_refuse(text):
    from alerts.rule_tests import MAX_VALUES, expand_values

    try:
        out = expand_values(text)
    except ValueError:
        return
    assert len(out) <= MAX_VALUES


def test_plausibility_keeps_a_discharging_batterys_negative_current_only():
    """A UPS battery's DC current is signed (negative = discharging); a PDU's negative current is not."""
    battery = Sample("ups", {"device": "u", "stage": "battery"}, {"current_a": -112.4, "voltage_v": -3.0}, 1)
    output = Sample("ups", {"device": "u", "stage": "output"}, {"current_a": -112.4}, 1)
    pdu = Sample("pdu", {"device": "p", "phase": "1"}, {"current_a": -5.0, "voltage_v": 230.0}, 1)
    absurd = Sample("ups", {"device": "u", "stage": "battery", "pole": "negative"}, {"current_a": -1e9}, 1)
    samples = [battery, output, pdu, absurd]
    problems = screen(samples)
    assert battery.fields == {"current_a": -112.4}             # the battery voltage stays unsigned
    assert output not in samples and absurd not in samples    # emptied samples are removed
    assert pdu.fields == {"voltage_v": 230.0}
    assert len(problems) == 4 and sum("current_a" in p for p in problems) == 3
