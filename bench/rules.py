#!/usr/bin/env python3
"""Rule-engine throughput on one core, and threshold-crossing -> MQTT arrival latency.

1. Throughput: the shipped rule set (alerts/rules/site.yaml) over a replayed
   stream for a generated site of ~5,000 devices (PDUs, GPU nodes, UPSes; every
   device also yields its ``poll`` sample), a few per cent of values crossing
   thresholds so the state machine works too.  Peer, same run, same samples: a
   naive evaluator that scans every rule for every sample field (the same
   evaluation code, only the (measurement, field) index replaced by a scan).
   Rounds alternate A B A B, bracketed by a CPU calibration; unstable rounds
   are dropped.  Prints samples/s, rule evaluations/s and the ratio.
2. Latency: a real Mosquitto spawned with testkit, the runtime publishing
   through its outbox, a paho subscriber; each crossing is fed with
   ``consume`` and timed until its event arrives.  Prints median and p99.

    python bench/rules.py [--devices 5000] [--samples 200000] [--rounds 3] [--latency 300]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.evaluate import Engine  # noqa: E402
from alerts.rules import RuleSet, load_rules, load_rules_text  # noqa: E402
from alerts.suppression import Suppressor  # noqa: E402
from bench._common import calibrate, median, stable  # noqa: E402
from contract.sample import Sample  # noqa: E402
from inventory.loader import load_site_text  # noqa: E402
from inventory.topology import PowerGraph  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "rules" / "site.yaml"
T0 = 1_767_225_600 * 1_000_000_000


def make_site(n_devices: int):
    """A hall of racks, 2 PDUs (A/B from two UPSes) + 4 GPU nodes per rack: ~n_devices in all."""
    racks = max(1, n_devices // 6)
    out = ["site: {id: bench, name: Bench}", "halls:", "  - id: h1", "    devices:",
           "      - {id: ups-a, kind: ups}", "      - {id: ups-b, kind: ups}",
           "      - {id: chiller-1, kind: chiller}", "      - {id: cdu-1, kind: cdu, cooled_by: [chiller-1]}",
           "    rows:"]
    per_row = 40
    for r in range((racks + per_row - 1) // per_row):
        out += [f"      - id: r{r:03d}", "        racks:"]
        for k in range(per_row):
            idx = r * per_row + k
            if idx >= racks:
                break
            rid = f"r{r:03d}-k{k:02d}"
            out += [f"          - id: {rid}", "            devices:",
                    f"              - {{id: {rid}-pdu-a, kind: pdu, fed_by: [ups-a]}}",
                    f"              - {{id: {rid}-pdu-b, kind: pdu, fed_by: [ups-b]}}"]
            out += [f"              - {{id: {rid}-n{n}, kind: gpu_node, cooled_by: [cdu-1]}}" for n in range(4)]
    return load_site_text("\n".join(out) + "\n", "<bench site>")


def make_stream(site, n_samples: int, seed: int = 7) -> list[list[Sample]]:
    """Poll-shaped batches (one device's samples together), time advancing 10 s per sweep."""
    rnd = random.Random(seed)
    devices = [d for d in site.all_devices() if d.kind in ("pdu", "gpu_node", "ups")]
    hot_set = {d.id for d in devices if rnd.random() < 0.03}  # stay hot from the 2nd sweep: for_s elapses
    batches: list[list[Sample]] = []
    made = 0
    sweep = 0
    while made < n_samples:
        t = T0 + sweep * 10_000_000_000
        for d in devices:
            hot = (sweep >= 1 and d.id in hot_set) or rnd.random() < 0.005
            tags = {"site": "bench", "hall": "h1", "device": d.id}
            b: list[Sample] = []
            if d.kind == "pdu":
                for ph in ("1", "2", "3"):
                    b.append(Sample("pdu", {**tags, "phase": ph}, {"current_a": (27.0 if hot else 14.0) + rnd.random(),
                                                                  "voltage_v": 230.0 + rnd.random(), "power_w": 3200.0}, t))
                b.append(Sample("pdu", {**tags, "inlet": "1"}, {"power_w": 9600.0, "energy_kwh": 1000.0 + sweep}, t))
            elif d.kind == "gpu_node":
                for g in range(8):
                    b.append(Sample("gpu", {**tags, "gpu": str(g)}, {"temp_c": (90.0 if hot else 65.0) + rnd.random(),
                                                                   "util_pct": 95.0, "power_w": 650.0}, t))
            else:
                b.append(Sample("ups", {**tags, "stage": "output"}, {"state": "battery" if hot else "normal",
                                                                    "load_pct": 60.0}, t))
                b.append(Sample("ups", {**tags, "stage": "battery"}, {"charge_pct": 100.0, "runtime_s": 900.0}, t))
            b.append(Sample("poll", {**tags, "protocol": "snmp"}, {"ok": not hot, "duration_ms": 12.0, "error_kind": "",
                                                                   "error": "", "samples": len(b)}, t))
            batches.append(b)
            made += len(b)
            if made >= n_samples:
                break
        sweep += 1
    return batches


class NaiveEngine(Engine):
    """The peer: every rule checked against every sample field (no index)."""

    def observe(self, samples):
        events: list = []
        rules = self.rules.rules
        for s in samples:
            if self.started_ns is None:
                self.started_ns = s.time_ns
            for rule in rules:
                if rule.measurement != s.measurement:
                    continue
                if rule.kind in ("stale", "absent"):
                    self._mark_seen(rule, s, events)
                    continue
                for fname, value in s.fields.items():
                    if fname == rule.field:
                        self._eval(rule, s, value, events)
        if events:
            self._refresh_suppression(events)
        return events


def run_engine(cls, rules, site, batches) -> tuple[float, int, int, int, list]:
    """(CPU s, samples, full evaluations, events, the events' (rule, fingerprint, state) in order)."""
    eng = cls(rules, site, suppressor=Suppressor(PowerGraph(site), rules.by_name.get))
    n = sum(len(b) for b in batches)
    seen: list = []
    t = time.process_time()
    for b in batches:
        seen.extend(eng.observe(b))
    cpu = time.process_time() - t
    return cpu, n, eng.evaluations, len(seen), [(e["rule"], e["fingerprint"], e["state"]) for e in seen]


def per_row(rules, site) -> RuleSet:
    """site.yaml once per row (thresholds tuned per row, as large sites do): many rules per field."""

    out = []
    rows = sorted({d.row for d in site.all_devices() if d.row})
    for rule in rules.rules:
        if rule.kind in ("stale", "absent", "device_down"):
            out.append(rule)
            continue
        for row in rows:
            r = rule.model_copy(deep=True)
            r.name = f"{rule.name}.{row}"
            sel = r.select.model_copy() if r.select else None
            if sel is None:
                from alerts.rules import Select
                sel = Select()
            sel.row = row
            r.select = sel
            out.append(r)
    return RuleSet(out, source="per-row")


def throughput(args) -> None:
    site = make_site(args.devices)
    batches = make_stream(site, args.samples)
    n = sum(len(b) for b in batches)
    print(f"site: {len(site.all_devices())} devices; stream: {n} samples in {len(batches)} polls")
    base = load_rules(RULES)
    compare(args, site, batches, base, f"site.yaml ({len(base)} rules)")
    rows = per_row(base, site)
    compare(args, site, batches, rows, f"site.yaml per row ({len(rows)} rules)")


def compare(args, site, batches, rules, label: str) -> None:
    n = sum(len(b) for b in batches)
    print(f"-- {label}")
    ours, naive = [], []
    deadline = time.monotonic() + args.max_s
    for r in range(args.rounds):
        if time.monotonic() > deadline:
            print(f"  time bound reached after {r} rounds")
            break
        before = calibrate()
        a = run_engine(Engine, rules, site, batches)
        b = run_engine(NaiveEngine, rules, site, batches)
        after = calibrate()
        if a[4] != b[4]:  # same events, same order: the index and the fast path change nothing observable
            raise SystemExit(f"engines disagree: {a[3]} vs {b[3]} events")
        tag = "" if stable(before, after) else "  (unstable CPU: dropped)"
        print(f"  round {r + 1}: indexed {n / a[0]:,.0f} samples/s, naive {n / b[0]:,.0f} samples/s; "
              f"{b[2]:,} rule evaluations (naive count), {a[3]:,} events, identical{tag}")
        if not tag:
            ours.append(a[0])
            naive.append(b[0])
    if not ours:
        print("no stable round")
        return
    o, p = median(ours), median(naive)
    print(f"indexed: {n / o:,.0f} samples/s ({b[2] / o:,.0f} rule evaluations/s) on one core; "
          f"naive scan: {n / p:,.0f} samples/s; ratio indexed/naive: {p / o:.2f}x")


def latency(args) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from alerts.mqtt_publisher import MqttSettings
    from alerts.runtime import AlertRuntime
    from localservers.mosquitto import MosquittoServer

    rules = load_rules_text("rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n", "bench")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rules-"))
    broker = MosquittoServer(tmp / "broker").start()
    arrivals: dict[str, float] = {}
    got = threading.Condition()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    connected = threading.Event()

    def on_message(c, u, m):
        t = time.perf_counter()
        dev = json.loads(m.payload)["device"]
        with got:
            arrivals[dev] = t
            got.notify_all()

    sub.on_connect = lambda c, u, f, rc, p: (c.subscribe("dcim/bench/alerts/#", qos=1), connected.set())
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    connected.wait(10)
    time.sleep(0.2)
    rt = AlertRuntime(None, rules, state_dir=tmp / "state", mqtt=MqttSettings(port=broker.port, site="bench"))
    lat: list[float] = []

    async def go():
        await rt.start()
        deadline = time.monotonic() + 20
        while not rt.publisher.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop_at = time.monotonic() + args.max_s
        for i in range(args.latency):
            if time.monotonic() > stop_at:
                break
            dev = f"pdu-{i}"
            t = time.perf_counter()
            rt.consume([Sample("pdu", {"device": dev}, {"current_a": 30.0}, time.time_ns())])
            with got:
                got.wait_for(lambda: dev in arrivals, timeout=5)
            if dev in arrivals:
                lat.append(arrivals[dev] - t)
            await asyncio.sleep(0.002)
        await rt.stop()
    try:
        asyncio.run(go())
    finally:
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    if not lat:
        print("latency: no events arrived")
        return
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"crossing -> MQTT arrival (consume() to subscriber on_message, via sqlite outbox, QoS 1, loopback): "
          f"n={len(lat)} median {statistics.median(lat) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=int, default=300, help="crossings to time (0 = skip)")
    ap.add_argument("--max-s", type=float, default=15.0, help="time bound per part (rounds start only before it)")
    args = ap.parse_args()
    throughput(args)
    if args.latency:
        latency(args)


if __name__ == "__main__":
    main()
