"""One ``gpu_node`` sample per poll that read a node's GPUs: what the site-level job needs of them.

The full site has 43,200 GPU nodes and 345,600 GPUs.  The derived metrics read, of a node's
GPUs, only their summed power (a node's input power when it reports none of its own) and,
for its cooling loop, how many report, the hottest, the OR of their clock-event reasons and
how many are thermally throttled.  On a sharded site that job reads the readings back from
InfluxDB, and reading every GPU's rows cost influxd ≈12.5 s of CPU per interval even when
idle (derived/from_influx.py): a node's summary, written by the poll that read its GPUs, is
an eighth of the rows.  The per-GPU rows are read back only for the nodes whose hottest GPU
is past the job's hot threshold (``gpus_hot`` depends on that threshold, which is the job's).

A pure function of one poll's samples; the scheduler's :func:`~collectors.scheduler.finish_poll`
(live polls and the demo's backfill alike) appends its result, so every producer of ``gpu``
samples (DCGM, NVML) writes one.  Each figure is what :mod:`derived.cooling_loops` and
:mod:`derived.power_chain` work out from the same samples: a GPU is told apart by its ``gpu``
tag, and where two samples of one GPU come in a poll (MIG instances) the later one's
temperature and reasons stand, as they do in the job's readings; every sample's ``power_w``
is summed, as the job sums every per-GPU power series.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from contract import gpu as G
from contract import tags as T
from contract.sample import Sample

__all__ = ["node_summary"]


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def node_summary(samples: Iterable[Sample], tags: Mapping[str, str]) -> Sample | None:
    """The ``gpu_node`` sample of one poll's ``samples`` (tagged ``tags``: the device's own, as its
    ``poll`` sample), or None when they hold no ``gpu`` sample with a power, temperature or
    clock-event reading."""
    power = 0.0
    powered = False
    temps: dict[str, float] = {}
    reasons: dict[str, int] = {}
    time_ns = 0
    for s in samples:
        if s.measurement != G.GPU:
            continue
        f = s.fields
        gpu = s.tags.get(T.GPU)
        seen = False
        w = f.get(G.POWER_W)
        if _number(w):
            power += float(w)
            powered = seen = True
        if gpu is not None:
            t = f.get(G.TEMP_C)
            r = f.get(G.CLOCK_EVENT_REASONS)
            if _number(t):
                temps[gpu] = float(t)
                seen = True
            if _number(r):
                reasons[gpu] = int(r)
                seen = True
        if seen and s.time_ns > time_ns:
            time_ns = s.time_ns
    if not time_ns:
        return None
    fields: dict[str, object] = {}
    if powered:
        fields[G.POWER_W] = power
    reporting = temps.keys() | reasons.keys()
    fields[G.GPUS] = len(reporting)
    if temps:
        fields[G.TEMP_MAX_C] = max(temps.values())
    if reasons:
        mask = 0
        for r in reasons.values():
            mask |= r
        fields[G.CLOCK_EVENT_REASONS] = mask
    fields[G.GPUS_THROTTLED] = sum(1 for r in reasons.values() if r & G.THERMAL_SLOWDOWN)
    return Sample(G.GPU_NODE, dict(tags), fields, time_ns)
