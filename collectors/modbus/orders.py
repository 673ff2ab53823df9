"""Byte and word orders: turn the registers a device sent into big-endian bytes.

Modbus puts every 16-bit register on the wire high byte first, but says nothing
about how a 32- or 64-bit value is spread over several registers.  Vendors
disagree, so each point names one of four orders, written for a 32-bit value
whose bytes are A (most significant) B C D:

- ``ABCD``: big-endian, registers most significant first (Eastron, Janitza, Schneider).
- ``CDAB``: word-swapped: least significant register first, bytes big-endian in each
  (Vertiv "float (sw)", many PLCs).
- ``BADC``: registers in order, bytes swapped inside each register.
- ``DCBA``: fully little-endian.

For 64-bit values the same rule scales: CDAB/DCBA reverse the register order,
BADC/DCBA swap the bytes within each register.  For a single register only the
byte swap applies (ABCD=CDAB, BADC=DCBA).
"""
from __future__ import annotations

import struct
from typing import Callable, Sequence

__all__ = ["ORDERS", "to_big_endian", "encode"]


def _abcd(regs: Sequence[int]) -> bytes:
    return b"".join(r.to_bytes(2, "big") for r in regs)


def _cdab(regs: Sequence[int]) -> bytes:
    return b"".join(r.to_bytes(2, "big") for r in reversed(regs))


def _badc(regs: Sequence[int]) -> bytes:
    return b"".join(r.to_bytes(2, "little") for r in regs)


def _dcba(regs: Sequence[int]) -> bytes:
    return b"".join(r.to_bytes(2, "little") for r in reversed(regs))


#: order name -> function(registers) -> the value's bytes, most significant first
ORDERS: dict[str, Callable[[Sequence[int]], bytes]] = {
    "ABCD": _abcd,
    "CDAB": _cdab,
    "BADC": _badc,
    "DCBA": _dcba,
}


def to_big_endian(regs: Sequence[int], order: str) -> bytes:
    """The value's bytes, most significant first, from registers in ``order``."""
    return ORDERS[order](regs)


# -- the other way: what a device sends (the twin and the test servers) ---------------------

_FMT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
        "float32": "f", "float64": "d", "bitfield": "H", "bitfield32": "I"}


def _swap_pairs(data: bytes) -> bytes:
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)


def encode(value, type_name: str, order: str = "ABCD") -> list[int]:
    """Registers a device using ``order`` sends for ``value`` of ``type_name``.

    ABCD: big-endian bytes.  DCBA: little-endian bytes.  BADC: big-endian with the
    bytes of each pair swapped.  CDAB: little-endian with each pair swapped.
    Strings: ASCII, NUL padded, two characters per register (BADC/DCBA swap them).
    """
    if type_name.startswith("string("):
        n = int(type_name[7:-1])
        wire = value.encode("ascii").ljust(2 * n, b"\x00")[: 2 * n]
        if order in ("BADC", "DCBA"):
            wire = _swap_pairs(wire)
    else:
        fmt = _FMT[type_name]
        if order == "ABCD":
            wire = struct.pack(">" + fmt, value)
        elif order == "DCBA":
            wire = struct.pack("<" + fmt, value)
        elif order == "BADC":
            wire = _swap_pairs(struct.pack(">" + fmt, value))
        elif order == "CDAB":
            wire = _swap_pairs(struct.pack("<" + fmt, value))
        else:
            raise ValueError(f"unknown order {order!r}")
    return [(wire[i] << 8) | wire[i + 1] for i in range(0, len(wire), 2)]
