"""Per-loop cooling figures from what the real producers write: the twin of the example site,
polled by the collectors, written through the InfluxDB writer, read back by the sharded
site's derived job; the expected values are computed here from the same rows in InfluxDB."""
from __future__ import annotations

import random
import time

import pytest

from contract import derived as D
from derived.cooling_loops import LoopThresholds, is_thermal_throttle, node_gpu_figures
from derived.from_influx import refresh_from_influx
from derived.job import DerivedMetrics
from inventory.loops import LoopIndex
from sinks.influx_query import InfluxQuery
from tests.derived.conftest import poll_example_site

pytestmark = pytest.mark.usefixtures("demo_secrets")


def _last(client: InfluxQuery, measurement: str, field: str, **where) -> dict[tuple, object]:
    """The newest value of ``field`` per series: tags tuple -> value."""
    cond = "".join(f" AND \"{k}\" = '{v}'" for k, v in where.items())
    out = {}
    for s in client.query(f'SELECT last("{field}") FROM "{measurement}" WHERE time > now() - 1h{cond} GROUP BY *'):
        for row in s.rows():
            out[tuple(sorted(s.tags.items()))] = row["last"]
    return out


def _loops(samples) -> dict[tuple[str, str], dict]:
    return {(s.tags["device"], s.tags["loop"]): s.fields for s in samples if s.measurement == D.COOLING_LOOP}


def test_loop_figures_match_the_cdu_and_gpu_rows_the_collectors_wrote(influx_server, influx_db):
    site, now = poll_example_site(influx_server, influx_db, time.time(), faults=[("gpu_overtemp", "h1-r01-k02-n3")])
    client = InfluxQuery(influx_server.url, influx_db)
    temps = _last(client, "gpu", "temp_c")
    hot = max(v for k, v in temps.items() if ("device", "h1-r01-k02-n3") in k)  # the GPU the fault heats
    threshold = hot - 0.5
    job = DerivedMetrics(site, loop_thresholds=LoopThresholds(gpu_hot_c=threshold))
    refresh_from_influx(job, client, now)
    computed = job.compute(now)
    loops = _loops(computed)
    index = LoopIndex(site)
    # one cooling_loop_node per GPU node, on its loop, with its hottest GPU as InfluxDB holds it
    per_node = {s.tags["node"]: s for s in computed if s.measurement == D.COOLING_LOOP_NODE}
    assert set(per_node) == {n.id for n in site.all_devices() if n.kind == "gpu_node"}
    for node, s in per_node.items():
        assert [(s.tags["device"], s.tags["loop"])] == index.loops_of(node)
        mine = [v for k, v in temps.items() if ("device", node) in k]
        assert s.fields[D.GPU_TEMP_MAX_C] == pytest.approx(max(mine)) and s.fields[D.GPUS] == len(mine)
    assert per_node["h1-r01-k02-n3"].fields[D.GPUS_HOT] >= 1
    assert set(loops) == set(index.loops()) == {("cdu-1", "1"), ("cdu-2", "1")}
    reasons = _last(client, "gpu", "clock_event_reasons")
    for key, fields in loops.items():
        cdu, loop = key
        sup = _last(client, "cdu", "supply_temp_c", device=cdu, side="secondary", loop=loop)
        ret = _last(client, "cdu", "return_temp_c", device=cdu, side="secondary", loop=loop)
        flow = _last(client, "cdu", "flow_lpm", device=cdu, side="secondary", loop=loop)
        prim = _last(client, "cdu", "supply_temp_c", device=cdu, side="primary")
        (sup,), (ret,), (flow,), (prim,) = sup.values(), ret.values(), flow.values(), prim.values()
        assert fields[D.DELTA_T_C] == pytest.approx(ret - sup, abs=1e-3) and fields[D.DELTA_T_C] > 0
        assert fields[D.LOOP_FLOW_LPM] == pytest.approx(flow)
        assert fields[D.APPROACH_C] == pytest.approx(sup - prim, abs=1e-3)
        nodes = {n.id for n in index.gpu_nodes_on(key)}
        gpu_w = _last(client, "gpu", "power_w")
        node_w = _last(client, "node", "power_w")
        # IT heat: each node's chassis power where its BMC reports one (the rack's n1), else its GPUs
        bmc_of = {d.labels["node"]: d.id for d in site.all_devices() if d.labels.get("node")}
        expected = 0.0
        for n in nodes:
            chassis = [v for k, v in node_w.items() if ("device", bmc_of.get(n, n)) in k and len(k) <= 8
                       and not any(t[0] in ("psu", "gpu", "fan", "sensor") for t in k)]
            expected += chassis[0] if chassis else sum(v for k, v in gpu_w.items() if ("device", n) in k)
        assert fields[D.IT_HEAT_W] == pytest.approx(expected, rel=1e-6) and expected > 10_000
        assert fields[D.FLOW_LPM_PER_KW] == pytest.approx(flow / (expected / 1000), rel=1e-3)
        on_loop = [k for k in temps if dict(k)["device"] in nodes]
        assert fields[D.GPUS] == len(on_loop) == 8 * len(nodes)
        assert fields[D.GPUS_HOT] == sum(1 for k in on_loop if temps[k] > threshold)
        assert fields[D.GPUS_HOT] >= (1 if key == ("cdu-1", "1") else 0)
        assert fields[D.GPUS_THROTTLED] == sum(is_thermal_throttle(v) for k, v in reasons.items()
                                               if dict(k)["device"] in nodes)
        assert fields[D.DEGRADED] is False and fields[D.DEGRADED_REASON] == ""


def test_a_leak_degrades_its_loop_only(influx_server, influx_db):
    site, now = poll_example_site(influx_server, influx_db, time.time(), faults=[("cdu_leak", "cdu-1")])
    client = InfluxQuery(influx_server.url, influx_db)
    assert set(_last(client, "cdu", "state", device="cdu-1", detector="1").values()) == {"leak"}
    job = DerivedMetrics(site)
    refresh_from_influx(job, client, now)
    loops = _loops(job.compute(now))
    assert loops[("cdu-1", "1")][D.DEGRADED] is True
    assert loops[("cdu-1", "1")][D.DEGRADED_REASON] == D.LEAK
    assert loops[("cdu-2", "1")][D.DEGRADED] is False and loops[("cdu-2", "1")][D.DEGRADED_REASON] == ""


def test_degraded_reasons_follow_the_design_point():
    """The decision alone (a pure function of readings): pump fault, low flow for the heat, high supply."""
    from contract.sample import Sample
    from derived.cooling_loops import LoopPlan, LoopReadings, loop_samples
    from inventory import load_site_text

    site = load_site_text("""
site: {id: s}
devices:
  - {id: ch, kind: chiller}
  - id: cdu
    kind: cdu
    cooled_by: [ch]
    loops: [{id: a, rated_kw: 100, design_flow_lpm: 150, design_supply_c: 30}, {id: b}]
  - {id: n1, kind: gpu_node, gpus: 1, cooled_by: ["cdu:a"]}
  - {id: n2, kind: gpu_node, gpus: 1, cooled_by: ["cdu:b"]}
""")
    t = 10**18
    readings = LoopReadings()

    def feed(meas, tags, fields):
        readings.consume(Sample(meas, {"device": tags.pop("device"), **tags}, fields, t))
    feed("cdu", {"device": "cdu", "side": "secondary", "loop": "a"}, {"supply_temp_c": 33.5, "return_temp_c": 40.0, "flow_lpm": 40.0})
    feed("cdu", {"device": "cdu", "side": "secondary", "loop": "b"}, {"supply_temp_c": 44.0, "return_temp_c": 50.0, "flow_lpm": 40.0})
    feed("cdu", {"device": "cdu", "pump": "1", "loop": "b"}, {"state": "fault"})
    feed("cdu", {"device": "cdu", "pump": "2"}, {"state": "running"})
    power = {"n1": 60_000.0, "n2": 60_000.0}
    out = {s.tags["loop"]: s.fields for s in loop_samples(LoopPlan(site), readings, power.get, t, t - 1)}
    # a: needs 0.5 × 1.5 L/min/kW × 60 kW = 45 L/min > 40: low; 33.5 °C > 30 + 3: high
    assert out["a"][D.DEGRADED_REASON] == "low_flow,high_supply_temp"
    # b: no design point: 0.5 × 1.43 × 60 = 42.9 > 40: low; 44 °C < 45; its own pump failed
    assert out["b"][D.DEGRADED_REASON] == "pump_failed,low_flow"
    assert out["b"][D.FLOW_LPM_PER_KW] == pytest.approx(40 / 60, rel=1e-3)
    stale = loop_samples(LoopPlan(site), readings, power.get, t, t + 1)  # every reading older than the window
    assert all(s.fields[D.GPUS] == 0 and D.DELTA_T_C not in s.fields for s in stale)


def test_in_process_job_computes_the_same_loop_figures(influx_server, influx_db):
    """The demo's job (fed samples as collected) and the sharded job (fed from InfluxDB) agree."""
    jobs: list[DerivedMetrics] = []

    def in_process(site):
        jobs.append(DerivedMetrics(site))
        return jobs[-1].consume

    site, now = poll_example_site(influx_server, influx_db, time.time(), consumers=[in_process],
                                  faults=[("cdu_leak", "cdu-2")], seed=7)
    [direct] = jobs
    from_db = DerivedMetrics(site)
    refresh_from_influx(from_db, InfluxQuery(influx_server.url, influx_db), now)
    a, b = _loops(direct.compute(now)), _loops(from_db.compute(now))
    assert a.keys() == b.keys() and len(a) == 2
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            assert b[key][name] == (pytest.approx(value) if isinstance(value, float) else value), (key, name)
    assert a[("cdu-2", "1")][D.DEGRADED_REASON] == D.LEAK and not a[("cdu-1", "1")][D.DEGRADED]


def test_a_hot_node_is_read_gpu_by_gpu_and_both_jobs_agree(influx_server, influx_db):
    """The sharded job reads the nodes' ``gpu_node`` summaries, and the per-GPU rows only of the
    nodes whose hottest GPU is past the threshold; it computes what the in-process job computes,
    which holds every GPU's readings: loop and node figures alike."""
    jobs: list[DerivedMetrics] = []
    hot_node = "h1-r01-k02-n3"

    def in_process(site):
        jobs.append(DerivedMetrics(site))
        return jobs[-1].consume

    site, now = poll_example_site(influx_server, influx_db, time.time(), consumers=[in_process],
                                  faults=[("gpu_overtemp", hot_node)], seed=7)
    [direct] = jobs
    client = InfluxQuery(influx_server.url, influx_db)
    # the threshold between the heated node's hottest GPU and every other node's, as InfluxDB holds them
    temps = _last(client, "gpu", "temp_c")
    hottest: dict[str, float] = {}
    for k, v in temps.items():
        hottest[dict(k)["device"]] = max(v, hottest.get(dict(k)["device"], v))
    cooler = max(t for n, t in hottest.items() if n != hot_node)
    assert hottest[hot_node] > cooler + 1
    threshold = [LoopThresholds(gpu_hot_c=(cooler + hottest[hot_node]) / 2)]
    direct.loop_thresholds = threshold[0]
    from_db = DerivedMetrics(site, loop_thresholds=threshold[0])
    refresh_from_influx(from_db, client, now)
    assert set(from_db.loop_readings.gpus) == {hot_node}  # the only node whose GPUs were read one by one
    assert len(from_db.loop_readings.nodes) == len(direct.loop_readings.gpus) > 10
    a, b = direct.compute(now), from_db.compute(now)

    def loop_figures(samples):
        return {(s.measurement, tuple(sorted(s.tags.items()))): s.fields for s in samples
                if s.measurement in (D.COOLING_LOOP, D.COOLING_LOOP_NODE)}
    fa, fb = loop_figures(a), loop_figures(b)
    assert fa.keys() == fb.keys() and len(fa) > 10
    for key in fa:
        assert fa[key].keys() == fb[key].keys(), key
        for name, value in fa[key].items():
            assert fb[key][name] == (pytest.approx(value) if isinstance(value, float) else value), (key, name)
    [node] = [f for (m, tags), f in fb.items() if m == D.COOLING_LOOP_NODE and ("node", hot_node) in tags]
    assert node[D.GPUS_HOT] >= 1 and node[D.GPU_TEMP_MAX_C] > threshold[0].gpu_hot_c
    assert all(f[D.GPUS_HOT] == 0 for (m, tags), f in fb.items() if m == D.COOLING_LOOP_NODE
               and ("node", hot_node) not in tags)


def _figures_gpu_by_gpu(slots, oldest_ns: int, hot_c: float):
    """The per-node figures the plain way, one GPU at a time (what the fast path must equal)."""
    gpus = hot = throttled = reasons_or = at_risk = 0
    hottest = None
    for temp, t_temp, reasons, t_reasons in slots:
        temp = temp if t_temp >= oldest_ns else None
        reasons = reasons if t_reasons >= oldest_ns else None
        if temp is None and reasons is None:
            continue
        gpus += 1
        is_hot, is_throttled = temp is not None and temp > hot_c, is_thermal_throttle(reasons)
        hot, throttled, at_risk = hot + is_hot, throttled + is_throttled, at_risk + (is_hot or is_throttled)
        if temp is not None and (hottest is None or temp > hottest):
            hottest = temp
        reasons_or |= reasons or 0
    return gpus, hot, throttled, reasons_or, hottest, at_risk


def test_node_gpu_figures_equal_a_step_per_gpu():
    """Healthy nodes take a fast path over whole columns; hot, throttled (SW 0x20, HW 0x40; power
    brake 0x80 is not thermal), stale and half-reported GPUs take the step per GPU: all must agree."""
    rng = random.Random(30134)
    oldest, hot_c = 1_000, 85.0
    paths = {"fast": 0, "slow": 0}
    for case in range(5_000):
        slots = []
        for _ in range(rng.choice((1, 4, 8))):
            never = rng.random() < 0.05
            slots.append([None if never else rng.choice((40.0, 60.5, 85.0, 85.5, 91.0)),
                          0 if never else rng.choice((999, 1_000, 2_000, 2_000, 2_000)),
                          rng.choice((None, 0, 0, 0, 0x1, 0x4, 0x20, 0x40, 0x80, 0x84, 0x61)),
                          rng.choice((0, 1_500, 2_000, 2_000))])
            if slots[-1][2] is None:
                slots[-1][3] = 0  # a reason never reported has no time (how LoopReadings starts a slot)
        got = node_gpu_figures(slots, oldest, hot_c)
        assert got == _figures_gpu_by_gpu(slots, oldest, hot_c), (case, slots)
        healthy = all(t >= oldest and tr >= oldest and temp <= hot_c and not is_thermal_throttle(r)
                      for temp, t, r, tr in slots if temp is not None and r is not None) and all(
            temp is not None and r is not None for temp, _, r, _ in slots)
        paths["fast" if healthy else "slow"] += 1
    assert paths["fast"] > 100 and paths["slow"] > 100, paths  # both paths were exercised
