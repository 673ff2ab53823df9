"""What could not be kept, by measurement, and one log line per reason (not one per batch).

A batch is gzip'd line protocol with a point count; when one has to go (the
spool's disk is full or read-only and memory is full, or the spool's size cap
was reached) the writer names what went: how many points of which
measurements, and why.  During a long outage the loss is summarised at most
once a minute, so the log says what happened without becoming the problem.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from collections import Counter

__all__ = ["measurements_in", "describe", "LossLog"]


def measurements_in(payload: bytes) -> Counter:
    """Points per measurement in a gzip'd line-protocol batch (``?`` if it cannot be read)."""
    try:
        text = gzip.decompress(payload).decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):
        return Counter({"?": 1})
    out: Counter = Counter()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out[_measurement(line)] += 1
    return out


def _measurement(line: str) -> str:
    """The measurement of one line: up to the first unescaped comma or space."""
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in ", ":
            break
        i += 1
    return line[:i].replace("\\,", ",").replace("\\ ", " ")


def describe(by: Counter, limit: int = 6) -> str:
    """``poll 120, pdu 3400, +2 more``: the biggest measurements first."""
    items = by.most_common()
    text = ", ".join(f"{m} {n}" for m, n in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


class LossLog:
    """Accumulates losses and logs them: at once for a new reason, else at most every ``every_s``."""

    def __init__(self, log: logging.Logger, every_s: float = 60.0) -> None:
        self.log = log
        self.every_s = every_s
        self.reason = ""
        self.last = float("-inf")
        self.points = 0
        self.by: Counter = Counter()

    def add(self, by: Counter, points: int, reason: str, now: float) -> None:
        if reason != self.reason:
            self.flush(now)
            self.reason = reason
            self.last = float("-inf")
        self.points += points
        self.by.update(by)
        if now - self.last >= self.every_s:
            self.flush(now)

    def flush(self, now: float) -> None:
        """Log what accumulated since the last line (recovery, shutdown, the minute)."""
        if self.points:
            self.log.error("could not keep %d points (%s): %s", self.points, describe(self.by), self.reason)
            self.points = 0
            self.by = Counter()
        self.last = now
