"""Stable pseudo-random numbers for the twin: the same (seed, parts) gives the same number in every
process and run (Python's ``hash`` is salted per process), so a twin's shards and a test's model agree."""
from __future__ import annotations

import functools
import hashlib

__all__ = ["unit"]


@functools.lru_cache(maxsize=1 << 20)  # constant per (seed, parts): hashing it every step cost a third of the step
def unit(seed: int, *parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for (seed, parts)."""
    h = hashlib.blake2b(repr((seed,) + parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64
