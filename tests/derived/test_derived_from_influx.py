"""The sharded site's derived job reads InfluxDB and computes what the in-process job computes."""
from __future__ import annotations

import time
import urllib.request

from contract.sample import Sample
from derived.from_influx import refresh_from_influx
from derived.job import DerivedMetrics
from sinks.influx_query import InfluxQuery
from sinks.lineprotocol import sample_line

from test_derived_power_chain import _samples  # noqa: E402  (same directory)


def _write(influx_server, db: str, samples: list[Sample]) -> None:
    body = "\n".join(sample_line(s) for s in samples).encode()
    req = urllib.request.Request(f"{influx_server.url}/write?db={db}&precision=ns", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204


def _by_key(samples: list[Sample]) -> dict:
    return {s.key(): {k: v for k, v in s.fields.items()} for s in samples}


def test_job_fed_from_influx_equals_job_fed_in_process(site, influx_server, influx_db):
    now = time.time_ns()
    written = _samples(now - 2 * 10**9)
    _write(influx_server, influx_db, written)
    direct = DerivedMetrics(site)
    direct.consume(written)
    from_db = DerivedMetrics(site)
    n = refresh_from_influx(from_db, InfluxQuery(influx_server.url, influx_db), now)
    assert n > 10
    expected, got = _by_key(direct.compute(now)), _by_key(from_db.compute(now))
    assert got.keys() == expected.keys()
    for key, fields in expected.items():
        for name, value in fields.items():
            if isinstance(value, float):
                assert abs(got[key][name] - value) < 1e-6, (key, name)
            else:
                assert got[key][name] == value, (key, name)
    pue = [f for k, f in got.items() if k[0] == "pue" and ("hall", "h1") not in k[1]]
    assert pue and all(0 < p["pue"] < 5 for p in pue if "pue" in p)


def test_old_readings_are_missing_not_reused(site, influx_server, influx_db):
    now = time.time_ns()
    _write(influx_server, influx_db, _samples(now - 3600 * 10**9))  # an hour old: outside the window
    job = DerivedMetrics(site)
    assert refresh_from_influx(job, InfluxQuery(influx_server.url, influx_db), now) == 0
