"""Stable partition of the inventory over collector shards (rendezvous hashing).

Each device goes to the shard whose ``hash(key, shard)`` is highest
(highest-random-weight hashing).  Why this and not ``hash % N``:

- every device lands in exactly one shard for any N, with no shared state or
  coordination between collector hosts: each one computes the same answer
  from the same inventory file;
- going from N to N+1 shards moves only the devices the new shard wins, about
  1/(N+1) of them, and shrinking moves only the removed shard's devices;
  ``hash % N`` would reshuffle almost everything, and every moved device costs
  a cold start (SNMP profile detection, Modbus range learning, counter state).

The key is the device id, except for Modbus devices behind a shared gateway:
they are keyed by the gateway's address so one shard owns the whole gateway,
which serialises its requests (two shards polling one gateway would fight
over its single bus).
"""
from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Callable, Iterable

from contract.protocols import PROTOCOLS
from inventory.model import Device

__all__ = ["shard_key", "shard_of", "in_shard", "assign", "shard_sizes"]

def shard_key(device: Device) -> str:
    """What decides a device's shard: its id, or its gateway (host:port or serial line) for
    protocols that put many units behind one connection (``gateway`` in contract/protocols.py)."""
    row = PROTOCOLS[device.protocol]
    if row.gateway and row.needs_host and device.host:
        return f"gateway:{device.host}:{device.effective_port()}"
    if row.gateway and row.needs_serial and device.serial:
        return f"serial:{device.serial}"
    return f"device:{device.id}"


def _weight(key: bytes, shard: int) -> int:
    digest = hashlib.blake2b(key, digest_size=8, salt=shard.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "big")


@functools.lru_cache(maxsize=1 << 17)
def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) that owns ``key``.

    Cached: a shard's start asks for every device's shard three times (pruning the cached
    site, keeping upstream devices, selecting its targets), each ``count`` BLAKE2b hashes."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    if count == 1:
        return 0
    raw = key.encode()
    best, best_w = 0, -1
    for i in range(count):
        w = _weight(raw, i)
        if w > best_w:
            best, best_w = i, w
    return best


def in_shard(shard: tuple[int, int]) -> Callable[[Device], bool] | None:
    """The test of "polled by shard ``(index, count)``", or None when there is one shard (every
    polled device is its own)."""
    index, count = shard
    if count == 1:
        return None
    return lambda dev: dev.protocol != "none" and shard_of(shard_key(dev), count) == index


def assign(devices: Iterable[Device], count: int) -> dict[str, int]:
    """device id -> shard, for every device (``shard_of`` caches per key)."""
    return {d.id: shard_of(shard_key(d), count) for d in devices}


def shard_sizes(devices: Iterable[Device], count: int) -> list[int]:
    """How many devices each shard polls (for ``dcim inventory shards``)."""
    c = Counter(assign(devices, count).values())
    return [c.get(i, 0) for i in range(count)]
