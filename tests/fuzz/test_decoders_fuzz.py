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
    oids = [g.oid for g in getattr(profile, "scalars", [])] if hasattr(profile, "scalars") else []
    gets = {o: data.draw(snmp_values) for o in oids[:20]}
    walks = {}
    for group in list(getattr(profile, "tables", []))[:3]:
        root = getattr(group, "table", None) or getattr(group, "oid", None)
        if not isinstance(root, str):
            continue
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
