"""The sharded site's derived job reads InfluxDB and computes what the in-process job computes.

The readings are what the collectors decode from the twin of the example site, written through
the real InfluxDB writer (the demo's backfill drives one or two polls of every device).
"""
from __future__ import annotations

import time

import pytest

from contract.sample import Sample
from derived.from_influx import refresh_from_influx
from derived.job import DerivedMetrics
from sinks.influx_query import InfluxQuery
from tests.derived.conftest import poll_example_site

pytestmark = pytest.mark.usefixtures("demo_secrets")


def _by_key(samples: list[Sample]) -> dict:
    return {s.key(): {k: v for k, v in s.fields.items()} for s in samples}





def test_job_fed_from_influx_equals_job_fed_in_process(influx_server, influx_db):
    jobs: list[DerivedMetrics] = []

    def direct(site):
        jobs.append(DerivedMetrics(site))
        return jobs[-1].consume
    site, now = poll_example_site(influx_server, influx_db, time.time(), consumers=[direct])
    from_db = DerivedMetrics(site)
    n = refresh_from_influx(from_db, InfluxQuery(influx_server.url, influx_db), now)
    assert n > 50
    expected, got = _by_key(jobs[0].compute(now)), _by_key(from_db.compute(now))
    assert got.keys() == expected.keys() and len(got) > 10
    for key, fields in expected.items():
        for name, value in fields.items():
            if isinstance(value, float):
                assert abs(got[key][name] - value) < 1e-6, (key, name)
            else:
                assert got[key][name] == value, (key, name)
    pue = [f for k, f in got.items() if k[0] == "pue" and ("hall", "h1") not in k[1]]
    assert pue and all(1.0 < p["pue"] < 3.0 for p in pue if "pue" in p)


def test_old_readings_are_missing_not_reused(influx_server, influx_db):
    site, _ = poll_example_site(influx_server, influx_db, time.time() - 3600)  # an hour old: outside the window
    job = DerivedMetrics(site)
    assert refresh_from_influx(job, InfluxQuery(influx_server.url, influx_db), time.time_ns()) == 0
