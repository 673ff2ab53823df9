"""Derived metrics for a sharded site: read the latest readings back from InfluxDB.

In one process (the demo, a single-shard site) the job consumes samples as the
collectors produce them.  With N collector shards no process sees every
sample, so the site-level job reads the newest readings of the last few
intervals from InfluxDB instead, feeds them to the same
:class:`~derived.job.DerivedMetrics`, and writes what it computes.

Per input measurement: its field and tag keys (``SHOW FIELD KEYS``/``SHOW TAG KEYS``), then
one raw ``SELECT <the wanted fields>, <device and component tags> FROM m WHERE time > <since>``; the
newest non-null value of each field of each series is kept here, which is what ``last()`` per
field would give.  Why not ``SELECT last(/…/) … GROUP BY *``: InfluxDB opens a cursor per
series and field for it; on a 1-hall slice (14,400 GPU series) that cost influxd 4.8 s of
CPU per query against 0.3 s for the raw rows, and the full site has 345,600 GPU series.

Each reading keeps its row's own time, so the job's staleness rule (``stale_s``) applies
as it does in one process, and a refresh after the first reads only the rows newer than
the previous refresh less :data:`LATE_S` (rows delivered late: a writer's batch under a
loaded InfluxDB), not the whole staleness window again: at 60 s polls that window is
three intervals of every series (≈1.6 M rows on the full site), and the job read them
all every interval.

A GPU node's GPUs are read as the ``gpu_node`` summary its poll wrote (collectors/gpu/node_summary.py):
43,200 series of the full site instead of 345,600 per-GPU ones, which cost influxd ≈12.5 s of
CPU per interval when idle and more than a minute under load.  The per-GPU rows are read
afterwards only for the nodes whose summary is past the hot threshold (how many GPUs are hot
depends on the job's ``gpu_hot_c``), over the whole staleness window, 200 nodes a query (a
node with no fresh summary has no fresh GPU rows either: both come from one poll, in one
batch; shards of an older version, writing none, leave their nodes out until upgraded);
where InfluxDB holds no summaries at all (readings written before they existed) every GPU's
rows are read, per hall.
"""
from __future__ import annotations

import re
import threading

from contract import cooling as C
from contract import gpu as G
from contract.sample import Sample
from contract.tags import DEVICE, HALL
from derived.cooling_loops import hot_nodes
from derived.job import INPUT_MEASUREMENTS, DerivedMetrics
from derived.power_chain import IDENTITY_TAGS
from sinks.influx_query import InfluxQuery, Series
from storage.influxql import ident, literal

__all__ = ["LATE_S", "NODES_PER_QUERY", "wanted_fields", "latest_query", "samples_from_rows", "refresh_from_influx"]

#: how late a row may reach InfluxDB after its sample's time and still be read by the next
#: refresh (the writers send every second; a loaded InfluxDB answered in more than 10 s)
LATE_S = 30.0


#: the fields the power chain reads (every ``*_w``), and beside them those the per-loop cooling
#: figures read: a CDU's temperatures, flow and states, a GPU node's summary of its GPUs, a GPU's
#: temperature and clock events (the full site's 345,600 GPU series, read only for hot nodes)
_POWER = re.compile(r"_w$")
_LOOP_FIELDS = {
    C.CDU: re.compile(r"_w$|_temp_c$|^flow_lpm$|^state$"),
    G.GPU: re.compile(rf"^({G.POWER_W}|{G.TEMP_C}|{G.CLOCK_EVENT_REASONS})$"),
    G.GPU_NODE: re.compile(rf"^({G.POWER_W}|{G.GPUS}|{G.TEMP_MAX_C}|{G.CLOCK_EVENT_REASONS}|{G.GPUS_THROTTLED})$"),
}
#: nodes whose per-GPU rows one query asks for (a WHERE of that many ``device = …`` terms)
NODES_PER_QUERY = 200


def wanted_fields(measurement: str, field_keys: list[str]) -> list[str]:
    """Which of a measurement's fields the derived job reads."""
    pattern = _LOOP_FIELDS.get(measurement, _POWER)
    return [f for f in field_keys if pattern.search(f)]


def latest_query(measurement: str, fields: list[str], tags: list[str], since_ns: int, hall: str | None = None,
                 devices: list[str] | None = None) -> str:
    """InfluxQL for the raw rows after ``since_ns``, the wanted fields and ``tags`` as columns; with
    ``hall``, only that hall's series (``""``: the series without a hall tag); with ``devices``,
    only theirs."""
    cols = ", ".join(ident(c) for c in [*fields, *tags])
    where = "" if hall is None else f" AND {ident(HALL)} = {literal(hall)}"
    if devices is not None:
        where += " AND (" + " OR ".join(f"{ident(DEVICE)} = {literal(d)}" for d in devices) + ")"
    return f"SELECT {cols} FROM {ident(measurement)} WHERE time > {int(since_ns)}{where}"


def samples_from_rows(measurement: str, series: list[Series], fields: list[str], tags: list[str]) -> list[Sample]:
    """Each series' (tag set's) newest non-null value of each field, as ``last()`` would give it,
    stamped with its row's time: one Sample per series, or one per distinct time where its
    fields' newest values come from different rows.  Numbers only, and ``state`` as text (a
    device's vocabulary word)."""
    newest: dict[tuple, dict[str, tuple[object, int]]] = {}
    for s in series:
        col = {c: i for i, c in enumerate(s.columns)}
        t_i = col.get("time")
        if t_i is None:
            continue
        tag_i = [(t, col[t]) for t in tags if t in col]
        field_i = [(f, col[f]) for f in fields if f in col]
        for row in s.values:  # raw rows come in time order: a later row overwrites an earlier one
            key = tuple((t, row[i]) for t, i in tag_i if row[i] not in (None, ""))
            got = newest.get(key)
            if got is None:
                got = newest[key] = {}
            t = row[t_i]
            for f, i in field_i:
                v = row[i]
                if v is None:
                    continue
                if (isinstance(v, (int, float)) and not isinstance(v, bool)) or (f == "state" and isinstance(v, str)):
                    got[f] = (v, t)
    out: list[Sample] = []
    for key, got in newest.items():
        by_time: dict[int, dict[str, object]] = {}
        for f, (v, t) in got.items():
            by_time.setdefault(t, {})[f] = v
        out += [Sample(measurement, dict(key), fields, t) for t, fields in sorted(by_time.items())]
    return out


def _keys(client: InfluxQuery, measurement: str) -> tuple[list[str], list[str]]:
    """The measurement's field keys, and the tags the job tells series apart by: ``device`` and the
    component tags (``outlet``, ``gpu``, ``loop``…).  The identity tags (place, vendor, uuid…) follow
    from the device and are left out: each one is a column on every row."""
    fields, tags = client.query_multi(f"SHOW FIELD KEYS FROM {ident(measurement)}; SHOW TAG KEYS FROM {ident(measurement)}")
    return ([r["fieldKey"] for s in fields for r in s.rows()],
            [t for t in (r["tagKey"] for s in tags for r in s.rows()) if t == DEVICE or t not in IDENTITY_TAGS])


def refresh_from_influx(job: DerivedMetrics, client: InfluxQuery, now_ns: int, since_ns: int | None = None,
                        stop: threading.Event | None = None) -> int:
    """Feed ``job`` the readings InfluxDB holds from the last ``job.stale_ns`` before ``now_ns``,
    or only those after ``since_ns`` where that is later (the job keeps what earlier refreshes
    gave it); return how many samples that made (about one per series).

    ``stop`` set: no further query is started (the refresh runs in a thread, which SIGTERM
    cannot interrupt; on a loaded InfluxDB the whole read took over a minute, and the job's
    stop waited for it: 22 s)."""
    since = now_ns - job.stale_ns if since_ns is None else max(since_ns, now_ns - job.stale_ns)
    # one query per hall (and one for the devices outside any hall): on the full site the GPU
    # rows of one interval are 345,600 series, ≈12 s of influxd CPU and 5 s here even on an idle
    # machine; a query per hall is a 24th of that, of the memory its answer takes, and of the
    # work lost when one times out on a loaded InfluxDB
    halls = [h.id for h in job.site.halls] + [""]
    n = 0
    summaries = False
    # the per-GPU rows last: which nodes need them follows from their summaries (gpu_node)
    for m in sorted(INPUT_MEASUREMENTS, key=lambda m: (m == G.GPU, m)):
        field_keys, tags = _keys(client, m)
        fields = wanted_fields(m, field_keys)
        if not fields:
            continue
        if m == G.GPU and summaries:
            need = hot_nodes(job.loop_readings, now_ns - job.stale_ns, job.loop_thresholds.gpu_hot_c)
            # the whole staleness window of each: the job fed in process has every GPU's latest reading
            queries = [latest_query(m, fields, tags, now_ns - job.stale_ns, devices=need[i:i + NODES_PER_QUERY])
                       for i in range(0, len(need), NODES_PER_QUERY)]
        else:
            queries = [latest_query(m, fields, tags, since, hall) for hall in halls]
        summaries = summaries or m == G.GPU_NODE
        for q in queries:
            if stop is not None and stop.is_set():
                return n
            samples = samples_from_rows(m, client.query(q), fields, tags)
            n += len(samples)
            job.consume(samples)
    return n
