"""A failed CDU pump is one alert naming the loop; the GPU alerts on that loop are suppressed by it.

Per-loop suppression on the real engine (a two-loop CDU: a node on loop 2 is not explained by
loop 1), the shipped rule-test file, and the whole chain fed by the twin: twin endpoints ->
collectors -> derived job (cooling_loop) -> rule engine (alerts/rules/site.yaml, for_s shortened)
-> MQTT, read back by a real subscriber.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from alerts.evaluate import Engine
from alerts.mqtt_publisher import MqttSettings
from alerts.rules import load_rules, load_rules_text
from alerts.runtime import AlertRuntime
from alerts.suppression import Suppressor
from contract.sample import Sample
from dcim.cli import main
from inventory import load_site_text
from inventory.loops import LoopIndex
from inventory.topology import PowerGraph

from tests.alerts.mqtt_helpers import Subscriber
from testkit.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "rules" / "site.yaml"
S = 10**9
T0 = 1_764_000_000 * S

TWO_LOOPS = """
site: {id: s}
devices:
  - {id: util, kind: utility}
  - {id: chiller-1, kind: chiller, fed_by: [util]}
  - id: cdu-1
    kind: cdu
    fed_by: [util]
    cooled_by: [chiller-1]
    loops: [{id: "1"}, {id: "2"}]
halls:
  - id: h1
    rows:
      - id: r1
        racks:
          - id: k1
            cooled_by: ["cdu-1:1"]
            devices: [{id: n1, kind: gpu_node, gpus: 8, fed_by: [util]}]
          - id: k2
            cooled_by: ["cdu-1:2"]
            devices: [{id: n2, kind: gpu_node, gpus: 8, fed_by: [util]}]
"""


def _published(sub: Subscriber) -> dict[str, dict]:
    """Each alert's latest state over MQTT: its last event or retained active state, by fingerprint."""
    out: dict[str, dict] = {}
    with sub.lock:
        for topic, payload, _ in sub.messages:
            if payload and ("/alerts/" in topic or "/active/" in topic):
                e = json.loads(payload)
                out[e["fingerprint"]] = e
    return out


def test_the_shipped_cooling_rule_tests_pass(capsys):
    assert main(["alerts", "test", str(ROOT / "alerts" / "rules" / "cooling_test.yaml")]) == 0
    assert "PASS (4 checks)" in capsys.readouterr().out


def _engine(site) -> Engine:
    rs = load_rules(RULES)
    return Engine(rs, site, suppressor=Suppressor(PowerGraph(site), rs.by_name.get))


def _gpu_hot(dev: str, t: int) -> list[Sample]:
    return [Sample("gpu", {"device": dev, "gpu": "0"}, {"temp_c": 95.0}, T0 + t * S)]


def test_a_loop_root_explains_its_own_nodes_only_and_the_unit_explains_all():
    site = load_site_text(TWO_LOOPS)
    eng = _engine(site)
    loop1 = Sample("cooling_loop", {"device": "cdu-1", "loop": "1", "site": "s", "hall": "h1"},
                   {"gpus_at_risk": 8, "degraded_reason": "pump_failed"}, T0)
    eng.observe([loop1])
    root = eng.observe([Sample("cooling_loop", loop1.tags, loop1.fields, T0 + 10 * S)])
    assert [e["rule"] for e in root] == ["cooling-loop-degraded"]
    assert root[0]["annotations"]["summary"] == ("cdu-1 loop 1 degraded (pump_failed): 8 GPU(s) on it hot or "
                                                 "thermally throttled; racks k1")
    for t in (20, 50):
        events = eng.observe(_gpu_hot("n1", t) + _gpu_hot("n2", t))
    by_dev = {e["device"]: e for e in events if e["rule"] == "gpu-temp-high"}
    assert by_dev["n1"]["suppressed_by"] == root[0]["fingerprint"]   # on loop 1
    assert by_dev["n2"]["suppressed_by"] == ""                       # loop 2 of the same CDU
    # a chiller stop fails the primary side of the unit: both loops' nodes are explained
    chiller = eng.observe([Sample("chiller", {"device": "chiller-1"}, {"running": False}, T0 + 60 * S)])
    eng.observe([Sample("chiller", {"device": "chiller-1"}, {"running": False}, T0 + 80 * S)])
    cut = {a.device: a.suppressed_by for a in eng.active() if a.rule == "gpu-temp-high"}
    chiller_fp = next(a.fingerprint for a in eng.active() if a.rule == "chiller-stopped")
    assert cut["n2"] == chiller_fp and chiller_fp in cut["n1"]
    assert chiller == [] or all(e["rule"] == "chiller-stopped" for e in chiller)


def test_a_primary_side_root_with_a_loop_tag_fails_the_whole_unit():
    site = load_site_text(TWO_LOOPS)
    rs = load_rules_text("""
rules:
  - {name: primary-lost, measurement: cdu, field: flow_lpm, op: '<', threshold: 10, explains: [cooling]}
  - {name: gpu-hot, measurement: gpu, field: temp_c, threshold: 87}
""", "t.yaml")
    eng = Engine(rs, site, suppressor=Suppressor(PowerGraph(site), rs.by_name.get))
    (root,) = eng.observe([Sample("cdu", {"device": "cdu-1", "side": "primary", "loop": "1"}, {"flow_lpm": 0.0}, T0)])
    events = eng.observe(_gpu_hot("n1", 1) + _gpu_hot("n2", 1))
    assert {e["device"]: e["suppressed_by"] for e in events} == {"n1": root["fingerprint"], "n2": root["fingerprint"]}


def test_a_pump_failure_on_the_twin_is_one_loop_alert_and_its_gpu_alerts_are_suppressed(tmp_path, monkeypatch,
                                                                                         mosquitto):
    from dcim.service import CollectionService
    from derived.job import DerivedMetrics
    from localservers.site import load_relocated
    from localservers.twin import TwinThread

    for k, v in {"DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "u", "DCIM_BMC_PASSWORD": "p"}.items():
        monkeypatch.setenv(k, v)
    rules = tmp_path / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 1", RULES.read_text()))
    site = load_relocated()
    for d in site.polled_devices():
        d.interval_s, d.timeout_s, d.retries = 1.0, 0.5, 0
    index = LoopIndex(site)
    on_loop = {n.id for n in index.gpu_nodes_on(("cdu-1", "1"))}
    elsewhere = {n.id for n in index.gpu_nodes_on(("cdu-2", "1"))}
    sub = Subscriber(mosquitto.port, "dcim/tetouan/#").start()
    events: list[dict] = []

    def firing() -> dict[str, dict]:
        state: dict[str, dict] = {}
        for e in events:
            state[e["fingerprint"]] = e
        return {fp: e for fp, e in state.items() if e["state"] == "firing"}

    with TwinThread(site, refresh_s=0.5) as twin:
        async def run():
            service = CollectionService(site, None)
            derived = DerivedMetrics(site)
            runtime = AlertRuntime(site, rules, state_dir=tmp_path / "state",
                                   mqtt=MqttSettings(port=mosquitto.port, site="tetouan"))
            runtime.add_listener(lambda e: events.append(e))
            service.add_consumer(derived.consume)
            service.add_consumer(runtime.consume)
            await runtime.start()
            await service.start()

            async def ticker():
                while True:
                    derived.tick(1.0, runtime.consume)   # as dcim run --derived --alerts does
                    await runtime.tick()
                    await asyncio.sleep(0.25)
            tick_task = asyncio.create_task(ticker())
            try:
                await asyncio.sleep(3)  # healthy first: no loop alert
                assert not [e for e in firing().values() if e["rule"] == "cooling-loop-degraded"]
                twin.call(twin.twin.inject, "cdu_pump_fail", "cdu-1")

                def loop_alert_and_gpu_symptoms() -> bool:
                    f = firing().values()
                    return (any(e["rule"] == "cooling-loop-degraded" for e in f)
                            and any(e["rule"] == "gpu-temp-high" and e["device"] in on_loop for e in f))
                assert await wait_until(loop_alert_and_gpu_symptoms, 60, 0.25), sorted(
                    (e["rule"], e["device"]) for e in firing().values())
                await asyncio.sleep(2)  # let every GPU of the loop cross its `for`
                now = firing().values()
                loops = [e for e in now if e["rule"] == "cooling-loop-degraded"]
                assert [(e["device"], e["series"]["loop"], e["severity"]) for e in loops] == [("cdu-1", "1", "critical")]
                assert loops[0]["suppressed_by"] == ""
                summary = loops[0]["annotations"]["summary"]
                assert summary.startswith("cdu-1 loop 1 degraded (pump_failed") and "GPU(s) on it" in summary
                gpu = [e for e in now if e["rule"] in ("gpu-temp-high", "gpu-thermal-throttle")]
                assert gpu and all(e["device"] in on_loop for e in gpu)      # cdu-2's loop stays cool
                # the engine's state: every GPU alert of the loop is explained by the loop alert
                active = {a.fingerprint: a for a in runtime.active()}
                assert all(loops[0]["fingerprint"] in active[e["fingerprint"]].suppressed_by.split(",") for e in gpu)
                # over MQTT: the loop alert, and each GPU alert's latest state (event or retained
                # active state republished when its suppression changed) names the loop alert
                assert sub.wait_for(lambda _: all(
                    loops[0]["fingerprint"] in _published(sub).get(e["fingerprint"], {}).get("suppressed_by", "")
                    for e in gpu) and loops[0]["fingerprint"] in _published(sub), 30)
                unsuppressed_crit = [a for a in active.values() if a.severity == "critical" and not a.suppressed_by]
                assert [a.rule for a in unsuppressed_crit] == ["cooling-loop-degraded"]
                assert not elsewhere & {a.device for a in active.values()
                                        if a.rule in ("gpu-temp-high", "gpu-thermal-throttle")}
            finally:
                tick_task.cancel()
                await service.stop()
                await runtime.stop()
        asyncio.run(run())
    sub.stop()


def test_any_bits_matches_thermal_clock_events_only():
    """``op: any_bits`` on clock_event_reasons: 0x20/0x40 (thermal) fire, 0x80 (power brake) and 0x4
    (power cap) do not; a threshold that is not a positive integer, or a clear:, is refused."""
    import pytest

    from alerts.rules import RuleError

    rs = load_rules_text("""
rules:
  - {name: hot-clocks, measurement: gpu, field: clock_event_reasons, op: any_bits, threshold: 96}
""", "t.yaml")
    eng = Engine(rs, None)
    fired = {}
    for i, reasons in enumerate([0, 4, 128, 32, 64, 96, 0x1E0, 96.0, 96.5]):
        ev = eng.observe([Sample("gpu", {"device": f"n{i}", "gpu": "0"}, {"clock_event_reasons": reasons}, T0)])
        fired[reasons] = bool(ev)
    assert fired == {0: False, 4: False, 128: False, 32: True, 64: True, 96: True, 0x1E0: True, 96.5: False}
    for bad in ("threshold: 0", "threshold: 1.5", "threshold: 96, clear: 32"):
        with pytest.raises(RuleError, match="any_bits|clear"):
            load_rules_text(f"rules:\n  - {{name: x, measurement: gpu, field: f, op: any_bits, {bad}}}\n", "t.yaml")


def test_the_derived_job_engine_suppresses_the_shards_gpu_alerts_over_mqtt(tmp_path, mosquitto):
    """A sharded site: the loop alert is the site-level derived job's (``dcim derived run --alerts``),
    the GPU alerts a collector shard's, and the shard polls the CDU itself, yet believes the
    derived engine's loop root (it never sees ``cooling_loop``) and publishes its GPU alerts suppressed."""
    from derived.job import DerivedMetrics

    site = load_site_text(TWO_LOOPS)
    rules = tmp_path / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 0", RULES.read_text()))
    sub = Subscriber(mosquitto.port, "dcim/s/#", client_id="check").start()
    now = time.time_ns()
    # what the collectors write: loop 1's pump failed, every GPU of both racks hot
    collected = [Sample("cdu", {"device": "cdu-1", "pump": "1", "loop": "1"}, {"state": "fault"}, now)]
    collected += [Sample("gpu", {"device": n, "gpu": str(g)}, {"temp_c": 95.0}, now) for n in ("n1", "n2")
                  for g in range(8)]

    async def go() -> None:
        # the derived job's engine as dcim derived run wires it: every device, derived rules its own
        derived_rt = AlertRuntime(site, rules, state_dir=tmp_path / "derived", evaluates_derived=True,
                                  mqtt=MqttSettings(port=mosquitto.port, site="s", client_id="derived",
                                                    share_roots=True))
        # one collector shard holding every device, the CDU included, as dcim run --shard wires it
        shard_rt = AlertRuntime(site, rules, state_dir=tmp_path / "shard",
                                local_devices=["cdu-1", "chiller-1", "util", "n1", "n2"],
                                mqtt=MqttSettings(port=mosquitto.port, site="s", client_id="shard-0",
                                                  share_roots=True))
        job = DerivedMetrics(site)
        job.consume(collected)
        await derived_rt.start()
        await shard_rt.start()
        try:
            shard_rt.consume([s for s in collected if s.measurement == "gpu"])
            derived_rt.consume(job.compute(now))
            deadline = time.monotonic() + 30
            gpu: list = []
            loop_fp = ""
            while time.monotonic() < deadline:
                for rt in (derived_rt, shard_rt):
                    await rt.tick()
                loops = [a for a in derived_rt.active() if a.rule == "cooling-loop-degraded"]
                gpu = [a for a in shard_rt.active() if a.rule == "gpu-temp-high"]
                loop_fp = loops[0].fingerprint if loops else ""
                if loop_fp and any(a.device == "n1" and a.suppressed_by == loop_fp for a in gpu):
                    break
                await asyncio.sleep(0.1)
            assert [(a.device, a.series.get("loop")) for a in derived_rt.active()
                    if a.rule == "cooling-loop-degraded"] == [("cdu-1", "1")]
            assert not [a for a in shard_rt.active() if a.rule.startswith("cooling-loop")]  # not the shard's
            by_dev = {a.device: a.suppressed_by for a in gpu}
            assert set(by_dev) == {"n1", "n2"}
            assert by_dev["n1"] == loop_fp       # on loop 1: explained by the derived engine's loop alert
            assert by_dev["n2"] == ""            # loop 2 of the same CDU is healthy
            n1 = {a.fingerprint for a in gpu if a.device == "n1"}
            assert sub.wait_for(lambda _: loop_fp in _published(sub) and all(
                _published(sub).get(fp, {}).get("suppressed_by") == loop_fp for fp in n1), 30), _published(sub)
        finally:
            await shard_rt.stop()
            await derived_rt.stop()
    try:
        asyncio.run(go())
    finally:
        sub.stop()




def test_a_leak_is_critical_and_names_the_racks_for_a_cdu_detector_and_a_rack_detector():
    text = TWO_LOOPS.replace("""            devices: [{id: n2, kind: gpu_node, gpus: 8, fed_by: [util]}]""",
                             """            devices:
              - {id: n2, kind: gpu_node, gpus: 8, fed_by: [util]}
              - {id: k2-thermal, kind: env_sensor}""")
    assert "k2-thermal" in text
    site = load_site_text(text)
    eng = _engine(site)
    dry = [Sample("cdu", {"device": "cdu-1", "detector": "1", "loop": "2"}, {"state": "dry"}, T0),
           Sample("cdu", {"device": "cdu-1", "detector": "tray"}, {"state": "dry"}, T0),
           Sample("cdu", {"device": "k2-thermal", "detector": "rope1", "loop": "1"}, {"state": "dry"}, T0)]
    assert eng.observe(dry) == []
    wet = [Sample(s.measurement, s.tags, {"state": "leak"}, T0 + 10 * S) for s in dry]
    events = {(e["device"], e["series"]["detector"]): e for e in eng.observe(wet)}
    assert {k: (e["rule"], e["severity"]) for k, e in events.items()} == {
        ("cdu-1", "1"): ("leak-detected", "critical"), ("cdu-1", "tray"): ("leak-detected", "critical"),
        ("k2-thermal", "rope1"): ("rack-leak-detected", "critical")}
    summary = {k: e["annotations"]["summary"] for k, e in events.items()}
    assert summary[("cdu-1", "1")] == "LEAK at cdu-1 detector 1: racks k2"          # loop 2 cools rack k2
    assert summary[("cdu-1", "tray")] == "LEAK at cdu-1 detector tray: racks k1,k2"  # no loop: the unit's racks
    assert summary[("k2-thermal", "rope1")] == "LEAK in rack k2 at k2-thermal detector rope1"
