"""The derived-metrics job: a sample consumer that remembers the latest readings.

``consume`` runs on the collectors' hot path (every poll result goes through
it), so it only stores numbers in a dict; the arithmetic happens in
``compute``, which the service calls once per interval: lookups driven by a
:class:`~derived.chain_plan.ChainPlan` built once from the inventory, each device's
sum added up from the groups it is in when a quantity asks for it
(:class:`~derived.power_chain.ReadingIndex`).  Readings older than
``stale_s`` are left out of a computation (and so counted as ``missing``):
a meter that stopped answering must not keep a PUE looking healthy.
"""
from __future__ import annotations

import logging
import time

from contract import cooling as C
from contract import gpu as G
from contract.sample import Sample
from inventory.model import Site
from inventory.topology import PowerGraph

from derived.chain_plan import ChainPlan
from derived.cooling_loops import DEFAULT_THRESHOLDS, LoopPlan, LoopReadings, LoopThresholds, loop_samples
from derived.power_chain import IDENTITY_TAGS, ReadingIndex, ReadingKey, compute_all, node_input_w, selections

__all__ = ["DerivedMetrics", "INPUT_MEASUREMENTS"]

log = logging.getLogger("dcim.derived")

#: the measurements the per-loop cooling figures read (temperatures, flows, states, clock events;
#: a node's GPUs summed by the poll that read them, collectors/gpu/node_summary.py)
LOOP_MEASUREMENTS = frozenset({C.CDU, G.GPU, G.GPU_NODE})
#: the measurements derived metrics read; everything else is ignored cheaply
INPUT_MEASUREMENTS = frozenset({"meter", "pdu", "ups", "chiller", "crah", "crac", "node"}) | LOOP_MEASUREMENTS


class DerivedMetrics:
    def __init__(self, site: Site, stale_s: float | None = None,
                 loop_thresholds: LoopThresholds = DEFAULT_THRESHOLDS) -> None:
        self.site = site
        interval = max([site.defaults.interval_s] + [d.interval_s or 0 for d in site.all_devices()])
        self.stale_ns = int((stale_s if stale_s is not None else 3 * interval) * 1e9)
        # the inventory does not change while the job runs: its graph and plan are built once
        self.graph = PowerGraph(site)
        self.plan = ChainPlan(site, self.graph)
        self.loop_plan = LoopPlan(site)
        self.loop_readings = LoopReadings()
        self.loop_thresholds = loop_thresholds
        self._groups: dict[tuple[str, tuple], dict[str, tuple[float, int]]] = {}
        self._ignored: set[tuple[str, tuple]] = set()
        self._last_tick = float("-inf")
        #: CPU seconds (this thread) of the last ``tick``'s computation
        self.last_compute_cpu_s = 0.0
        self.consumed = 0

    def consume(self, samples: list[Sample]) -> None:
        """Keep the latest numeric ``power_w`` per series that a derived sum counts (cheap: no computation).

        Series no sum counts (PDU outlets, UPS input, pumps...) are not kept: on the full
        site they are a quarter of the samples, and keeping them only made ``compute``
        skip them again every interval.  Whether a series counts depends only on its
        measurement and component tags, so readings are kept grouped by those
        (``(measurement, tags) -> device -> (value, time)``): the answer is worked out once
        per group, and ``compute`` walks each group with the sums it feeds in hand.
        """
        groups = self._groups
        consumed = 0
        loop_consume = self.loop_readings.consume
        for s in samples:
            meas = s.measurement
            if meas not in INPUT_MEASUREMENTS:
                continue
            if meas in LOOP_MEASUREMENTS:
                loop_consume(s)
            tags = s.tags
            dev = tags.get("device")
            if dev is None:
                continue
            consumed += 1
            value = s.fields.get("power_w")
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            ck = (meas, tuple(sorted((k, v) for k, v in tags.items() if k not in IDENTITY_TAGS)))
            group = groups.get(ck)
            if group is None:
                if ck in self._ignored:
                    continue
                if not selections(*ck):
                    self._ignored.add(ck)
                    continue
                group = groups[ck] = {}
            prev = group.get(dev)
            if prev is None or prev[1] <= s.time_ns:
                group[dev] = (float(value), s.time_ns)
        self.consumed += consumed

    def readings(self, now_ns: int) -> dict[ReadingKey, float]:
        """The fresh readings ``compute`` counts, keyed ``(measurement, device, tags, "power_w")``."""
        oldest = now_ns - self.stale_ns
        return {(meas, dev, comp, "power_w"): v for (meas, comp), group in self._groups.items()
                for dev, (v, t) in group.items() if t >= oldest}

    @property
    def series(self) -> int:
        """How many series are kept (the size of one ``compute`` pass)."""
        return sum(len(g) for g in self._groups.values())

    def compute(self, now_ns: int) -> list[Sample]:
        """Every derived sample from the fresh readings (one pass over them, then lookups)."""
        oldest = now_ns - self.stale_ns
        idx = ReadingIndex.from_groups(self._groups, oldest)
        return compute_all(self.plan, idx, now_ns) + loop_samples(
            self.loop_plan, self.loop_readings, node_input_w(self.plan, idx), now_ns, oldest, self.loop_thresholds)

    def compute_accounted(self, now_ns: int, **extra: float | int) -> list[Sample]:
        """:meth:`compute`, and after its samples the job's own cost: a ``dcim_derived`` sample
        (its CPU, the series it summed, ``extra`` fields such as what the sharded job read), so
        operators (and bench/site_full.py) see whether derived metrics keep up with the interval."""
        cpu = time.thread_time()
        samples = self.compute(now_ns)
        self.last_compute_cpu_s = time.thread_time() - cpu
        samples.append(Sample("dcim_derived", {"site": self.plan.site_id},
                              {"compute_cpu_s": round(self.last_compute_cpu_s, 6), "series": self.series,
                               "samples": len(samples), **extra}, now_ns))
        log.debug("derived: %d samples from %d series in %.3f s CPU", len(samples), self.series,
                  self.last_compute_cpu_s)
        return samples

    def tick(self, interval_s: float, *consumers) -> None:
        """Compute when ``interval_s`` has passed since the last time (call it often) and hand
        the samples to each consumer (the InfluxDB writer's ``write``, the demo's live view)."""
        now = time.monotonic()
        if now - self._last_tick < interval_s:
            return
        self._last_tick = now
        samples = self.compute_accounted(time.time_ns())
        if samples:
            for consume in consumers:
                consume(samples)
