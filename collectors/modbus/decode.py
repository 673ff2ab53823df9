"""Registers and bits -> engineering values, per point.  Pure: no I/O.

A profile point is compiled once into a :class:`Decoder` (a precomputed struct
format, order function, scale, enum and bit tables) so the hot path per poll is
a slice, one ``struct.unpack`` and a multiply.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Sequence

from collectors.modbus.orders import ORDERS
from contract.states import RAW_SUFFIX, UNKNOWN

__all__ = ["TYPE_WIDTH", "STRUCT_FORMAT", "register_count", "decode_raw", "Decoder", "DecodeError"]

#: registers taken by each numeric type
TYPE_WIDTH: dict[str, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
    "float32": 2, "float64": 4, "bitfield": 1, "bitfield32": 2,
}

#: big-endian struct format per type
STRUCT_FORMAT: dict[str, str] = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q",
    "float32": ">f", "float64": ">d", "bitfield": ">H", "bitfield32": ">I",
}


class DecodeError(ValueError):
    """Registers that cannot be a value of the point's type (NaN, wrong length)."""


def register_count(type_name: str) -> int:
    """Registers a type occupies; ``string(n)`` takes ``n`` registers."""
    if type_name.startswith("string(") and type_name.endswith(")"):
        return int(type_name[7:-1])
    if type_name == "bool":
        return 1
    return TYPE_WIDTH[type_name]


def decode_raw(regs: Sequence[int], type_name: str, order: str = "ABCD") -> int | float | str:
    """One value of ``type_name`` from ``regs`` laid out in ``order`` (no scaling)."""
    data = ORDERS[order](regs)
    if type_name.startswith("string("):
        # Strings are sent in reading order; only the byte swap inside registers applies.
        if order in ("BADC", "DCBA"):
            data = b"".join(r.to_bytes(2, "little") for r in regs)
        else:
            data = b"".join(r.to_bytes(2, "big") for r in regs)
        return data.split(b"\x00", 1)[0].decode("latin-1").strip()
    fmt = STRUCT_FORMAT[type_name]
    if len(data) != struct.calcsize(fmt):
        raise DecodeError(f"{type_name} needs {struct.calcsize(fmt) // 2} registers, got {len(regs)}")
    return struct.unpack(fmt, data)[0]


def _fast_struct(type_name: str, order: str) -> struct.Struct | None:
    """A Struct that reads the value straight from the block's big-endian bytes, when one exists.

    A read's registers are packed once into big-endian bytes; values in ABCD order
    (and 16-bit values in CDAB, which is the same thing for one register) are then
    one ``unpack_from`` each.  16-bit BADC/DCBA values are the little-endian reading.
    """
    fmt = STRUCT_FORMAT.get(type_name)
    if fmt is None:
        return None
    if order == "ABCD" or (TYPE_WIDTH[type_name] == 1 and order == "CDAB"):
        return struct.Struct(fmt)
    if TYPE_WIDTH[type_name] == 1:
        return struct.Struct("<" + fmt[1:])
    return None


@dataclass(slots=True)
class Decoder:
    """A compiled point: how to turn its registers into fields."""

    field: str
    type: str
    order: str
    scale: float
    offset: float
    convert: str | None
    enum: dict[int, str] | None
    bits: dict[int, str] | None
    width: int
    as_int: bool
    fast: struct.Struct | None = None
    divisor: float | None = None
    #: enum word -> contract.states vocabulary word; the vendor word then goes to ``<field>_raw``
    states: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.fast is None and self.type != "bool":
            self.fast = _fast_struct(self.type, self.order)
        # 0.1, 0.01, 0.001 are not exact in binary: 192 * 0.1 = 19.200000000000003 but
        # 192 / 10 = 19.2.  Dividing by the exact inverse keeps stored values readable.
        if self.scale not in (0.0, 1.0) and abs(self.scale) < 1:
            inv = 1.0 / self.scale
            if abs(inv - round(inv)) < 1e-9:
                self.divisor = float(round(inv))

    def value(self, regs: Sequence[int]) -> dict[str, int | float | bool | str]:
        """Fields produced by this point from exactly its registers."""
        if self.type == "bool":
            return {self.field: bool(regs[0])}
        if len(regs) != self.width:
            raise DecodeError(f"{self.type} needs {self.width} registers, got {len(regs)}")
        return self.fields(decode_raw(regs, self.type, self.order))

    def from_block(self, block: bytes, regs: Sequence[int], off: int) -> dict[str, int | float | bool | str]:
        """Fields from a whole read: ``block`` is its registers as big-endian bytes, ``off`` this point's index."""
        if self.fast is not None:
            return self.fields(self.fast.unpack_from(block, off * 2)[0])
        if self.type == "bool":
            return {self.field: bool(regs[off])}
        return self.fields(decode_raw(regs[off:off + self.width], self.type, self.order))

    def fields(self, raw: int | float | str) -> dict[str, int | float | bool | str]:
        """Scale, convert, or map a raw value to the point's field(s)."""
        if self.as_int:
            return {self.field: raw}  # type: ignore[dict-item]
        if isinstance(raw, str):
            return {self.field: raw}
        if self.bits is not None:
            out: dict[str, int | float | bool | str] = {name: bool((int(raw) >> bit) & 1) for bit, name in self.bits.items()}
            if self.field:
                out[self.field] = int(raw)
            return out
        if self.enum is not None:
            state = self.enum.get(int(raw))
            word = state if state is not None else f"unknown({int(raw)})"
            if self.states is not None:
                return {self.field: self.states.get(word, UNKNOWN), self.field + RAW_SUFFIX: word}
            return {self.field: word}
        if isinstance(raw, float) and not math.isfinite(raw):
            raise DecodeError(f"{self.field}: device sent {raw} (not a number)")
        value = (raw / self.divisor if self.divisor else raw * self.scale) + self.offset
        if self.convert == "f_to_c":
            value = (value - 32.0) * 5.0 / 9.0
        return {self.field: float(value)}
