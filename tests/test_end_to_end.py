"""Foundation end to end: a real recorded PDU served by snmpsim -> scheduler -> writer -> influxd.

InfluxQL then reads back the values the recording holds, as LibreNMS reads
them from the same recording (../shared/testdata/snmp/*.sensors.csv).
"""
from __future__ import annotations

import asyncio
import csv
import math
import os
import re
from pathlib import Path

import pytest
import yaml

from dcim.service import CollectionService
from inventory import load_site_text
from sinks.influx_query import InfluxQuery
from sinks.influx_writer import InfluxConfig
from testkit.snmp import SnmpsimServer
from testkit.testdata import shared_testdata

RECORDING = "apc_ap8959eu3"
MAP = yaml.safe_load((Path(__file__).parent / "snmp" / "librenms_map.yaml").read_text())[RECORDING]

SITE = """
site: {{id: e2e}}
credentials:
  ro: {{version: 2c, community: {{env: E2E_COMMUNITY}}}}
defaults: {{credentials: {{snmp: ro}}, interval_s: 1, timeout_s: 2, retries: 1}}
devices:
  - {{id: ups-1, kind: ups}}
halls:
  - id: h1
    rows:
      - id: r1
        racks:
          - id: k1
            devices:
              - {{id: k1-pdu-a, kind: pdu, vendor: apc, model: AP8959EU3, fed_by: [ups-1],
                 protocol: snmp, host: 127.0.0.1, port: {port}}}
"""


@pytest.fixture(scope="module")
def pdu_agent():
    server = SnmpsimServer([shared_testdata() / "snmp" / f"{RECORDING}.snmprec"]).start()
    yield server
    server.stop()


def test_recorded_pdu_lands_in_influxdb_with_the_recorded_values(pdu_agent, influx_server, influx_db):
    os.environ["E2E_COMMUNITY"] = RECORDING
    site = load_site_text(SITE.format(port=pdu_agent.port), "e2e.yaml")

    async def run():
        service = CollectionService(site, InfluxConfig(url=influx_server.url, database=influx_db, flush_interval_s=0.2))
        assert service.problems == []
        await service.start()
        await asyncio.sleep(2.5)
        await service.stop()
        return service

    service = asyncio.run(run())
    assert service.scheduler.stats.ok >= 2 and service.scheduler.stats.failed == 0
    q = InfluxQuery(influx_server.url, influx_db)
    series = q.query('SELECT * FROM "pdu" WHERE time > now() - 1h GROUP BY *')
    assert series, "no pdu samples in InfluxDB"
    for s in series:  # inventory tags on every series
        assert (s.tags["site"], s.tags["hall"], s.tags["row"], s.tags["rack"], s.tags["device"]) == ("e2e", "h1", "r1", "k1", "k1-pdu-a")
        assert s.tags["vendor"] == "apc"
    rows = list(csv.DictReader(open(shared_testdata() / "snmp" / f"{RECORDING}.sensors.csv")))
    compared = 0
    for row in rows:
        rule = next((r for r in MAP["rules"] if re.fullmatch(r["oid"], row["sensor_oid"].lstrip("."))
                     and r.get("class", row["sensor_class"]) == row["sensor_class"]), None)
        assert rule is not None
        if "skip" in rule:
            continue
        m = re.fullmatch(rule["oid"], row["sensor_oid"].lstrip("."))
        tags = {k: m.expand(v) for k, v in rule["tags"].items()}
        want = float(row["librenms_poller_sensor_current"] or row["librenms_discovery_sensor_current"]) * float(rule.get("factor", 1))
        candidates = [s for s in series if all(s.tags.get(k) == v for k, v in tags.items()) and rule["field"] in s.columns]
        candidates.sort(key=lambda s: sum(1 for v in s.tags.values() if v))
        assert candidates, f"no series for {row['sensor_descr']} {tags}"
        values = [r[rule["field"]] for r in candidates[0].rows() if r[rule["field"]] is not None]
        assert len(values) >= 2  # one per poll
        assert all(math.isclose(v, want, rel_tol=1e-3, abs_tol=0.006) for v in values), (row["sensor_descr"], values, want)
        compared += 1
    assert compared >= 3
    polls = q.query('SELECT "ok", "duration_ms", "samples" FROM "poll" WHERE "device" = \'k1-pdu-a\'')[0].rows()
    assert len(polls) >= 2 and all(p["ok"] is True and p["samples"] > 10 for p in polls)
