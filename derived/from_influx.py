"""Derived metrics for a sharded site: read the latest readings back from InfluxDB.

In one process (the demo, a single-shard site) the job consumes samples as the
collectors produce them.  With N collector shards no process sees every
sample, so the site-level job reads the newest power readings of the last few
intervals from InfluxDB instead (one InfluxQL query per input measurement,
``last(/_w$/) ... GROUP BY *``), feeds them to the same
:class:`~derived.job.DerivedMetrics`, and writes what it computes.
"""
from __future__ import annotations

from contract.sample import Sample
from derived.job import INPUT_MEASUREMENTS, LOOP_MEASUREMENTS, DerivedMetrics
from sinks.influx_query import InfluxQuery

__all__ = ["latest_query", "samples_from_series", "refresh_from_influx"]


#: the fields the per-loop cooling figures read beside power (temperatures, flow, states, clock events)
_LOOP_FIELDS = "|_temp_c$|^temp_c$|^flow_lpm$|^state$|^clock_event_reasons$"


def latest_query(measurement: str, window_s: float) -> str:
    """InfluxQL for the newest value of every ``*_w`` field of every series in the window
    (for ``cdu`` and ``gpu`` also the fields the cooling-loop figures read)."""
    fields = "_w$" + (_LOOP_FIELDS if measurement in LOOP_MEASUREMENTS else "")
    return f'SELECT last(/{fields}/) FROM "{measurement}" WHERE time > now() - {int(window_s)}s GROUP BY *'


def samples_from_series(measurement: str, series, time_ns: int) -> list[Sample]:
    """Rows of ``latest_query`` as Samples stamped ``time_ns`` (the window already bounds freshness)."""
    out: list[Sample] = []
    for s in series:
        for row in s.rows():
            fields = {col[len("last_"):]: v for col, v in row.items()
                      if col.startswith("last_") and (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      or col == "last_state" and isinstance(v, str))}
            if fields:
                out.append(Sample(measurement, {k: v for k, v in s.tags.items() if v}, fields, time_ns))
    return out


def refresh_from_influx(job: DerivedMetrics, client: InfluxQuery, now_ns: int) -> int:
    """Feed ``job`` the latest readings; return how many series were read."""
    window = job.stale_ns / 1e9
    n = 0
    for m in sorted(INPUT_MEASUREMENTS):
        samples = samples_from_series(m, client.query(latest_query(m, window)), now_ns)
        n += len(samples)
        job.consume(samples)
    return n
