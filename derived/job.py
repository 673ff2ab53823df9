"""The derived-metrics job: a sample consumer that remembers the latest readings.

``consume`` runs on the collectors' hot path (every poll result goes through
it), so it only stores numbers in a dict; the arithmetic happens in
``compute``, which the service calls once per interval.  Readings older than
``stale_s`` are left out of a computation (and so counted as ``missing``):
a meter that stopped answering must not keep a PUE looking healthy.
"""
from __future__ import annotations

import time

from contract.sample import Sample
from inventory.model import Site
from inventory.topology import PowerGraph

from derived.power_chain import IDENTITY_TAGS, ReadingKey, compute_all

__all__ = ["DerivedMetrics", "INPUT_MEASUREMENTS"]

#: the measurements derived metrics read; everything else is ignored cheaply
INPUT_MEASUREMENTS = frozenset({"meter", "pdu", "ups", "chiller", "cdu", "crah", "crac", "node", "gpu"})


class DerivedMetrics:
    def __init__(self, site: Site, stale_s: float | None = None) -> None:
        self.site = site
        interval = max([site.defaults.interval_s] + [d.interval_s or 0 for d in site.all_devices()])
        self.stale_ns = int((stale_s if stale_s is not None else 3 * interval) * 1e9)
        self.graph = PowerGraph(site)  # the inventory does not change while the job runs
        self._latest: dict[ReadingKey, tuple[float, int]] = {}
        self._last_tick = float("-inf")
        self.consumed = 0

    def consume(self, samples: list[Sample]) -> None:
        """Keep the latest numeric ``power_w``-like value per series (cheap: no computation)."""
        latest = self._latest
        for s in samples:
            if s.measurement not in INPUT_MEASUREMENTS:
                continue
            dev = s.tags.get("device")
            if dev is None:
                continue
            comp = tuple(sorted((k, v) for k, v in s.tags.items() if k not in IDENTITY_TAGS))
            for field, value in s.fields.items():
                if field.endswith("_w") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    key = (s.measurement, dev, comp, field)
                    prev = latest.get(key)
                    if prev is None or prev[1] <= s.time_ns:
                        latest[key] = (float(value), s.time_ns)
            self.consumed += 1

    def readings(self, now_ns: int) -> dict[ReadingKey, float]:
        """The snapshot ``compute`` uses: fresh readings only."""
        oldest = now_ns - self.stale_ns
        return {k: v for k, (v, t) in self._latest.items() if t >= oldest}

    def compute(self, now_ns: int) -> list[Sample]:
        return compute_all(self.site, self.readings(now_ns), now_ns, self.graph)

    def tick(self, interval_s: float, *consumers) -> None:
        """Compute when ``interval_s`` has passed since the last time (call it often) and hand
        the samples to each consumer (the InfluxDB writer's ``write``, the demo's live view)."""
        now = time.monotonic()
        if now - self._last_tick < interval_s:
            return
        self._last_tick = now
        samples = self.compute(time.time_ns())
        if samples:
            for consume in consumers:
                consume(samples)
