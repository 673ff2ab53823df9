"""Cumulative energy counters: wraps and resets detected, never negative energy.

Pure state: the collector keeps one :class:`CounterState` per process and the
decoder calls :meth:`update` with each raw reading.  A reading lower than the
previous one is either a wrap (previous value in the top half of the counter's
range, new one in the bottom half: add 2**bits to the running offset so the
series stays monotonic) or a device reset (the meter restarted counting: the
offset is dropped and the sample is flagged so downstream ``increase()`` logic
treats it as a restart).
"""
from __future__ import annotations

__all__ = ["CounterState", "WRAP", "RESET"]

WRAP = "counter_wrap"
RESET = "counter_reset"


class CounterState:
    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[tuple, tuple[int, int]] = {}   # key -> (last raw, offset in raw units)

    def update(self, key: tuple, raw: int, bits: int) -> tuple[int, str | None]:
        """Return (raw + offset, flag) where flag is WRAP, RESET or None."""
        prev = self._last.get(key)
        flag = None
        offset = 0
        if prev is not None:
            last, offset = prev
            if raw < last:
                span = 1 << bits if bits else 0
                if span and last >= span // 2 and raw < span // 2:
                    offset += span
                    flag = WRAP
                else:
                    offset = 0
                    flag = RESET
        self._last[key] = (raw, offset)
        return raw + offset, flag

    def __len__(self) -> int:
        return len(self._last)
