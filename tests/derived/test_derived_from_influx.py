"""The sharded site's derived job reads InfluxDB and computes what the in-process job computes.

The readings are what the collectors decode from the twin of the example site, written through
the real InfluxDB writer (the demo's backfill drives one or two polls of every device).
"""
from __future__ import annotations

import time

import pytest

from contract import derived as D
from contract.sample import Sample
from derived.from_influx import refresh_from_influx
from derived.job import DerivedMetrics
from sinks.influx_query import InfluxQuery
from tests.derived.conftest import poll_example_site

pytestmark = pytest.mark.usefixtures("demo_secrets")


def _by_key(samples: list[Sample]) -> dict:
    return {s.key(): {k: v for k, v in s.fields.items()} for s in samples}


def _assert_same(expected: dict, got: dict) -> None:
    """The same samples with the same fields; sums equal up to the order they were added in."""
    assert got.keys() == expected.keys() and len(got) > 10
    for key, fields in expected.items():
        assert got[key].keys() == fields.keys(), key
        for name, value in fields.items():
            if isinstance(value, float):
                assert abs(got[key][name] - value) < 1e-6, (key, name)
            else:
                assert got[key][name] == value, (key, name)





def test_job_fed_from_influx_equals_job_fed_in_process(influx_server, influx_db):
    jobs: list[DerivedMetrics] = []

    def direct(site):
        jobs.append(DerivedMetrics(site))
        return jobs[-1].consume
    site, now = poll_example_site(influx_server, influx_db, time.time(), consumers=[direct])
    from_db = DerivedMetrics(site)
    n = refresh_from_influx(from_db, InfluxQuery(influx_server.url, influx_db), now)
    assert n > 50
    got = _by_key(from_db.compute(now))
    _assert_same(_by_key(jobs[0].compute(now)), got)
    pue = [f for k, f in got.items() if k[0] == "pue" and ("hall", "h1") not in k[1]]
    assert pue and all(1.0 < p["pue"] < 3.0 for p in pue if "pue" in p)


def test_old_readings_are_missing_not_reused(influx_server, influx_db):
    site, _ = poll_example_site(influx_server, influx_db, time.time() - 3600)  # an hour old: outside the window
    job = DerivedMetrics(site)
    assert refresh_from_influx(job, InfluxQuery(influx_server.url, influx_db), time.time_ns()) == 0


def test_a_refresh_after_the_first_reads_only_newer_rows_and_keeps_the_rest(influx_server, influx_db):
    """The job run by ``dcim derived run`` reads the whole staleness window once, then only the
    rows after the previous refresh (less ``LATE_S``): it must compute the same as a full read,
    from readings it kept, and the rows it did not read again must age by their own time."""
    site, now = poll_example_site(influx_server, influx_db, time.time())  # rounds at now-900 s and now
    client = InfluxQuery(influx_server.url, influx_db)
    full = DerivedMetrics(site, stale_s=3600)
    n_full = refresh_from_influx(full, client, now)
    assert n_full > 50
    # only the second round's rows: the newest of every series, the same computation
    tail = DerivedMetrics(site, stale_s=3600)
    assert refresh_from_influx(tail, client, now, since_ns=now - 450 * 10**9) == n_full
    _assert_same(_by_key(full.compute(now)), _by_key(tail.compute(now)))
    # nothing newer than the last refresh: what the job has is kept, not dropped
    assert refresh_from_influx(full, client, now, since_ns=now + 10**9) == 0
    _assert_same(_by_key(tail.compute(now)), _by_key(full.compute(now)))


def test_readings_read_back_keep_their_rows_time(influx_server, influx_db):
    """A reading from InfluxDB is as old as its row, not as the refresh that read it: refreshed
    500 s after the last poll with 600 s of staleness, the readings count for 100 s more."""
    site, now = poll_example_site(influx_server, influx_db, time.time())
    job = DerivedMetrics(site, stale_s=600)
    refreshed = now + 500 * 10**9
    assert refresh_from_influx(job, InfluxQuery(influx_server.url, influx_db), refreshed) > 50
    assert len(job.readings(refreshed)) > 50
    later = now + 601 * 10**9
    assert job.readings(later) == {}
    assert not [s for s in job.compute(later) if s.measurement == D.SITE_POWER and D.FACILITY_W in s.fields]


def test_a_gpu_whose_pod_changed_is_counted_once(influx_server, influx_db):
    """The twin's jobs change at a slot boundary; polled on both sides of one, every GPU has two
    series (one per pod), both fresh.  A GPU is one reading whatever runs on it: the in-process
    job and the one fed from InfluxDB keep 8 GPU groups (one per index, not one per pod) and
    count each GPU's newest power only, as a job that saw the second round alone does.  Every
    node counts as hot here (``gpu_hot_c`` 20 °C), so the job fed from InfluxDB reads every
    GPU's rows, not only the nodes' summaries."""
    from derived.cooling_loops import LoopThresholds
    from simulator.jobs import SLOT_S

    hot = LoopThresholds(gpu_hot_c=20.0)

    boundary = (int(time.time()) // SLOT_S) * SLOT_S
    if time.time() < boundary + 3600:
        boundary -= SLOT_S
    jobs: list[DerivedMetrics] = []

    def direct(site):
        jobs.append(DerivedMetrics(site, stale_s=3600, loop_thresholds=hot))
        return jobs[-1].consume
    site, now = poll_example_site(influx_server, influx_db, boundary + 450, consumers=[direct])
    client = InfluxQuery(influx_server.url, influx_db)
    pods = client.query('SELECT count("power_w") FROM "gpu" WHERE time > 0 GROUP BY "device", "gpu", "pod"')
    per_gpu: dict[tuple, set] = {}
    for s in pods:
        per_gpu.setdefault((s.tags["device"], s.tags["gpu"]), set()).add(s.tags.get("pod", ""))
    assert sum(len(p) > 1 for p in per_gpu.values()) > 50  # the pods did change between the rounds
    from_db = DerivedMetrics(site, stale_s=3600, loop_thresholds=hot)
    refresh_from_influx(from_db, client, now)
    second = DerivedMetrics(site, stale_s=3600, loop_thresholds=hot)
    refresh_from_influx(second, client, now, since_ns=now - 450 * 10**9)
    for job in (jobs[0], from_db):
        assert len([k for k in job._groups if k[0] == "gpu"]) == 8
        _assert_same(_by_key(second.compute(now)), _by_key(job.compute(now)))


def test_a_stopped_refresh_starts_no_further_query(influx_server, influx_db):
    """SIGTERM cannot interrupt the refresh's thread: it checks the stop before each query instead."""
    import threading

    site, now = poll_example_site(influx_server, influx_db, time.time())
    client = InfluxQuery(influx_server.url, influx_db)
    stop = threading.Event()
    stop.set()
    job = DerivedMetrics(site)
    assert refresh_from_influx(job, client, now, stop=stop) == 0 and job.series == 0
    assert refresh_from_influx(job, client, now, stop=threading.Event()) > 50 and job.series > 50
