"""Energy attribution fed by the real producer: the twin's model (jobs scheduled on its GPUs) polled by the
real collectors, written through the real InfluxDB writer, then ``dcim report energy`` on what was written."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import math

import pytest

from dcim.cli import main
from reports.attribution import RESIDUAL_PDU, RESIDUAL_UPS, UNALLOCATED
from simulator.jobs import SLOT_S

H = 3600
START = 1_795_000_000 // SLOT_S * SLOT_S - 12 * H      # the end of one of the twin's job slots and the start of the next
HOURS = 24


@pytest.fixture(scope="module")
def written(influx_server, tmp_path_factory):
    from dcim.backfill import backfill
    from dcim.demo import DEMO_SECRETS
    from dcim.service import CollectionService
    from localservers.site import EXAMPLE_SITE, load_relocated, write_site
    from simulator.twin import Twin
    from sinks.influx_writer import InfluxConfig

    mp = pytest.MonkeyPatch()
    for k, v in DEMO_SECRETS.items():
        mp.setenv(k, v)
    site = load_relocated(EXAMPLE_SITE)
    db = "attrib_twin"
    influx_server.create_database(db)
    end = START + HOURS * H

    async def run() -> None:
        twin = Twin(site, seed=7, clock=lambda: START - H)
        await twin.start()
        service = CollectionService(site, InfluxConfig(url=influx_server.url, database=db, api="v1"))
        try:
            await service.start_writer()
            result = await backfill(twin, service, START - H, H, wall_clock=lambda: end + H)
            assert result.failed_polls == 0 and result.rounds >= HOURS + 2
            assert await service.writer.flush(60)
        finally:
            await service.stop()
            await twin.stop()
    asyncio.run(run())
    path = write_site(site, tmp_path_factory.mktemp("attrib_twin") / "site.yaml")
    yield influx_server, db, path, site
    mp.undo()


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def energy(written, by: str, tmp_path) -> dict:
    server, db, path, _ = written
    out = tmp_path / f"{by}.json"
    assert main(["report", "energy", "--site", str(path), "--influx", server.url, "--db", db,
                 "--from", _iso(START), "--to", _iso(START + HOURS * H), "--by", by, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_twin_history_adds_up_through_the_chain(written, tmp_path):
    rep = energy(written, "tenant", tmp_path)
    rows = {r["entity"]: r for r in rep["rows"]}
    # the rows are the measured UPS output, which is the PUE report's E_IT (the UPS meters)
    assert math.fsum(r["it_kwh"] for r in rep["rows"]) == pytest.approx(rep["measured_kwh"], rel=1e-9)
    assert rep["measured_kwh"] == pytest.approx(rep["e_it_kwh_pue"], rel=0.01)
    assert rep["measured_kwh"] > 24 * 100       # 24 nodes of ≈5-11 kW for a day
    # the twin's PDUs deliver what their outlets do, and UPSes what their PDUs do: small residuals
    for name in (RESIDUAL_PDU, RESIDUAL_UPS):
        assert abs(rows[name]["it_kwh"]) < 0.01 * rep["measured_kwh"], name
    # the tenants the example site lists ran jobs, some GPUs idled
    assert {"atlas", "noor", "uae-uni"} <= set(rows)
    assert rows[UNALLOCATED]["it_kwh"] > 0
    assert all(rows[t]["facility_kwh"] > rows[t]["it_kwh"] > 0 for t in ("atlas", "noor", "uae-uni"))
    assert all(rows[t]["co2_kg"] > 0 for t in ("atlas", "noor"))
    by_hall = energy(written, "hall", tmp_path)
    hall = {r["entity"]: r["it_kwh"] for r in by_hall["rows"]}
    workloads = math.fsum(r["it_kwh"] for r in rep["rows"] if r["kind"] in ("workload", "unallocated"))
    assert hall["h1"] == pytest.approx(workloads, rel=1e-9)     # every node's energy lands on one tenant or idle


def test_shared_nodes_split_between_two_jobs(written, tmp_path):
    """Some nodes run two jobs at once (half the GPUs each): both get a share of the node's outlet energy."""
    from simulator.jobs import gpu_labels, namespaces_for

    _, _, _, site = written
    nodes = [d for d in site.all_devices() if d.kind == "gpu_node"]
    shared = [d.id for d in nodes
              if len({w for w in gpu_labels(7, d.id, d.rack or "", d.gpus or 8, START + H, namespaces_for(site))}) == 2]
    assert shared, "the schedule shares some node in the first slot"
    rep = energy(written, "job", tmp_path)
    rows = {r["entity"]: r for r in rep["rows"]}
    assert len([r for r in rep["rows"] if r["kind"] == "workload"]) >= 10
    node = next(d for d in nodes if d.id == shared[0])
    pods = {dict(w)["namespace"] + "/" + dict(w)["pod"]
            for w in gpu_labels(7, node.id, node.rack or "", node.gpus or 8, START + H, namespaces_for(site))}
    assert len(pods) == 2 and pods <= set(rows), (pods, sorted(rows))
    for p in pods:   # half the GPUs each: each pod gets a good part of a ≈5-11 kW node for the slot's last 12 h
        assert rows[p]["nodes"] == 1 and rows[p]["it_kwh"] > 12 * 1.0, (p, rows[p])
    ns = energy(written, "namespace", tmp_path)
    assert any(r["nodes"] >= 2 for r in ns["rows"] if r["kind"] == "workload")


def test_per_namespace_energy_matches_the_twins_own_truth(written, tmp_path):
    """The twin's model knows each node's power and its GPUs' powers at every 15-min step: summing
    node power x each namespace's share of the GPU power over the period gives the energy the report
    must find from the counters the collectors read (to 0.5 %: it splits per hour, not per step, and
    the PDU outlet counters count tenths of a kWh)."""
    from collections import defaultdict

    from simulator.model import SiteModel

    _, _, _, site = written
    m = SiteModel(site, seed=7)
    truth: dict[str, float] = defaultdict(float)
    nodes = [d.id for d in site.all_devices() if d.kind == "gpu_node"]
    t = START - H
    while t <= START + HOURS * H:
        m.step(t)
        if t > START:                       # the step ending at t covers (t - 900, t]
            for n in nodes:
                s = m.state[n]
                gpu_w = sum(g.power_w for g in s.gpus)
                for g in s.gpus:
                    ns = dict(g.labels).get("namespace", UNALLOCATED)
                    truth[ns] += s.power_w * g.power_w / gpu_w * 900 / 3.6e6
        t += 900
    rep = energy(written, "namespace", tmp_path)
    rows = {r["entity"]: r["it_kwh"] for r in rep["rows"]}
    assert set(truth) <= set(rows)
    for ns, kwh in truth.items():
        assert rows[ns] == pytest.approx(kwh, rel=0.005), (ns, rows[ns], kwh)
