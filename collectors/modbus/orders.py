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

from typing import Callable, Sequence

__all__ = ["ORDERS", "to_big_endian"]


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
