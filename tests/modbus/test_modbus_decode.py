"""Round trips for every type x byte/word order: testkit's struct-based encoder
against the collector's decoder, which are written independently."""
from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.modbus.decode import decode_raw
from testkit.modbus import encode

ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]
INTS = {
    "int16": st.integers(-(2**15), 2**15 - 1), "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1), "uint32": st.integers(0, 2**32 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1), "uint64": st.integers(0, 2**64 - 1),
    "bitfield": st.integers(0, 2**16 - 1), "bitfield32": st.integers(0, 2**32 - 1),
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_name", sorted(INTS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_integer_round_trip(type_name, order, data):
    value = data.draw(INTS[type_name])
    assert decode_raw(encode(value, type_name, order), type_name, order) == value


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=80, deadline=None)
@given(value=st.floats(width=32, allow_nan=False))
def test_float32_round_trip(order, value):
    assert decode_raw(encode(value, "float32", order), "float32", order) == value


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=80, deadline=None)
@given(value=st.floats(allow_nan=False))
def test_float64_round_trip(order, value):
    assert decode_raw(encode(value, "float64", order), "float64", order) == value


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20))
def test_string_round_trip(order, text):
    assert decode_raw(encode(text, "string(10)", order), "string(10)", order) == text


# Known wire layouts, from the orders' definitions (value 0x11223344 = bytes A B C D).
@pytest.mark.parametrize(
    "order,regs",
    [("ABCD", [0x1122, 0x3344]), ("CDAB", [0x3344, 0x1122]), ("BADC", [0x2211, 0x4433]), ("DCBA", [0x4433, 0x2211])],
)
def test_uint32_wire_layouts(order, regs):
    assert decode_raw(regs, "uint32", order) == 0x11223344
    assert encode(0x11223344, "uint32", order) == regs


def test_float32_known_registers():
    # 230.1 V as an Eastron meter sends it: IEEE-754 0x4366199A, high word first.
    assert struct.pack(">f", 230.1).hex() == "4366199a"
    assert math.isclose(decode_raw([0x4366, 0x199A], "float32", "ABCD"), 230.1, rel_tol=1e-7)
    assert math.isclose(decode_raw([0x199A, 0x4366], "float32", "CDAB"), 230.1, rel_tol=1e-7)


def test_int64_energy_counter_layout():
    # 123456789012 Wh = 0x0000_001C_BE99_1A14, four registers, most significant first.
    assert decode_raw([0x0000, 0x001C, 0xBE99, 0x1A14], "int64", "ABCD") == 123456789012
    assert decode_raw([0x1A14, 0xBE99, 0x001C, 0x0000], "int64", "CDAB") == 123456789012


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_name", sorted(INTS) + ["float32", "float64"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_block_decoding_matches_single_point(type_name, order, data):
    """The collector's fast path (unpack from the whole read's bytes) agrees with decode_raw."""
    from collectors.modbus.decode import Decoder

    strategy = INTS[type_name] if type_name in INTS else st.floats(width=32 if type_name == "float32" else 64, allow_nan=False, allow_infinity=False)
    value = data.draw(strategy)
    before = data.draw(st.lists(st.integers(0, 0xFFFF), max_size=5))
    regs = before + encode(value, type_name, order) + [0xABCD]
    block = struct.pack(f">{len(regs)}H", *regs)
    width = len(encode(value, type_name, order))
    dec = Decoder(field="v", type=type_name, order=order, scale=1.0, offset=0.0, convert=None, enum=None,
                  bits=None, width=width, as_int=type_name not in ("float32", "float64"))
    got = dec.from_block(block, regs, len(before))["v"]
    assert got == value
