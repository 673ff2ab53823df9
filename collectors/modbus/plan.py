"""Request coalescing: which reads cover a profile's points.  Pure: no I/O.

Fewer, larger reads are what makes polling 50,000 endpoints affordable: one
125-register read costs the gateway and the collector about as much as a
1-register read.  Points of the same function are sorted by address and merged
while the read stays within the Modbus limits (125 registers, 2000 bits) and the
hole between two points is at most ``max_gap`` registers.

A point is never split over two reads, so a 32- or 64-bit energy counter always
comes from one request and cannot be torn between an old low word and a new
high word.

Devices that reject a read covering unmapped registers answer "illegal data
address" (exception 2).  :func:`split_request` gives the smaller reads to try
instead; the collector remembers the new plan per device, so the fall-back is
learned once and not retried every poll.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from collectors.modbus.decode import Decoder

__all__ = ["Item", "Request", "plan_requests", "split_request", "MAX_REGISTERS", "MAX_BITS", "DEFAULT_MAX_GAP"]

MAX_REGISTERS = 125   # FC 3/4 limit (Modbus spec 6.3/6.4)
MAX_BITS = 2000       # FC 1/2 limit (Modbus spec 6.1/6.2)
DEFAULT_MAX_GAP = 10  # registers (or bits) of unmapped space a read may cover


@dataclass(frozen=True, slots=True)
class Item:
    """One point inside a read: its address, width, and how to decode it."""

    address: int
    width: int
    decoder: Decoder
    measurement: str
    tags: tuple[tuple[str, str], ...]
    index: int  # position in the profile, for error messages


@dataclass(frozen=True, slots=True)
class Request:
    """One Modbus read: function, start address, count, and the points it serves."""

    function: str
    address: int
    count: int
    items: tuple[Item, ...] = field(default_factory=tuple)

    @property
    def end(self) -> int:
        return self.address + self.count

    def describe(self) -> str:
        return f"{self.function} {self.address}..{self.end - 1} ({self.count})"


def _limit(function: str, max_registers: int) -> int:
    return MAX_BITS if function in ("coil", "discrete") else max_registers


def plan_requests(
    items: Iterable[tuple[str, Item]],
    *,
    max_gap: int = DEFAULT_MAX_GAP,
    max_registers: int = MAX_REGISTERS,
) -> list[Request]:
    """Merge ``(function, item)`` pairs into as few reads as the limits allow.

    Overlapping points (a bitfield read twice with different bit tables) share
    the read.  The order of the result is by function, then address.
    """
    by_fn: dict[str, list[Item]] = {}
    for fn, item in items:
        by_fn.setdefault(fn, []).append(item)
    out: list[Request] = []
    for fn in sorted(by_fn):
        limit = _limit(fn, max_registers)
        cur: list[Item] = []
        start = end = 0
        for it in sorted(by_fn[fn], key=lambda i: (i.address, i.width)):
            it_end = it.address + it.width
            if cur and it.address - end <= max_gap and max(end, it_end) - start <= limit:
                cur.append(it)
                end = max(end, it_end)
                continue
            if cur:
                out.append(Request(fn, start, end - start, tuple(cur)))
            cur, start, end = [it], it.address, it_end
        if cur:
            out.append(Request(fn, start, end - start, tuple(cur)))
    return out


def split_request(req: Request) -> list[Request]:
    """Smaller reads to try after ``req`` was refused with illegal data address.

    First step: drop the gap filling (reads of strictly contiguous points).
    Second step: one read per point.  A single point cannot be split: ``[]``.
    """
    if len(req.items) <= 1:
        return []
    contiguous = plan_requests(((req.function, it) for it in req.items), max_gap=0, max_registers=req.count)
    if len(contiguous) > 1:
        return contiguous
    return [Request(req.function, it.address, it.width, (it,)) for it in req.items]
