"""Per-sender token buckets for trap storms: bounded memory, nothing dropped uncounted.

A flapping transfer switch can send hundreds of traps a second.  Each sender
(the datagram's source address, i.e. one device, or one proxy) gets its own
bucket, so it spends only its own budget and cannot starve other devices'
traps; what it sends beyond the budget is counted per sender and reported on
the next trap let through (field ``suppressed``) and in the receiver's
``rate_limited`` total.  At most ``max_senders`` buckets are kept (the oldest
idle one is forgotten first).
"""
from __future__ import annotations

__all__ = ["TrapLimiter"]


class TrapLimiter:
    def __init__(self, rate_per_s: float = 5.0, burst: int = 20, max_senders: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.max_senders = max_senders
        #: sender -> [tokens, last refill time, suppressed since the last trap let through]
        self._buckets: dict[str, list] = {}
        self.limited = 0

    def allow(self, sender: str, now_s: float) -> bool:
        b = self._buckets.get(sender)
        if b is None:
            if len(self._buckets) >= self.max_senders:
                self._buckets.pop(next(iter(self._buckets)))
            b = self._buckets[sender] = [self.burst, now_s, 0]
        else:
            b[0] = min(self.burst, b[0] + (now_s - b[1]) * self.rate)
            b[1] = now_s
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        b[2] += 1
        self.limited += 1
        return False

    def take_suppressed(self, sender: str) -> int:
        """Traps of ``sender`` refused since the last one let through (and reset the count)."""
        b = self._buckets.get(sender)
        if b is None or not b[2]:
            return 0
        n, b[2] = b[2], 0
        return n

    def pending(self) -> dict[str, int]:
        """Senders with refused traps not yet reported on a later trap."""
        return {k: b[2] for k, b in self._buckets.items() if b[2]}

    def __len__(self) -> int:
        return len(self._buckets)
