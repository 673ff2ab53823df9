#!/usr/bin/env python3
"""Alert delivery to Alertmanager: fault → webhook latency, and engine CPU per alert sent.

1. Latency.  The example site's twin (every endpoint on loopback, polled every
   ``--interval`` s by the real collectors in this process), the rule engine with
   ``for_s: 0``, one real Alertmanager (``group_wait: 0s``, grouped by every label
   so each alert is its own group) and a webhook receiver.  Each round trips one
   PDU's breaker on the twin and times until the webhook has the firing
   notification for that PDU, then clears it and waits for the resolution.  The
   time includes the twin's refresh, up to one poll interval and Alertmanager's
   dispatch.  Peer, alternated with it: the same kind of alert POSTed straight to
   the same Alertmanager by a minimal client (Alertmanager's own share).
2. CPU per alert.  ``--alerts`` synthetic alerts fire and resolve through
   ``AlertRuntime`` (evaluation, outbox, sender thread, HTTP) into an Alertmanager
   whose only receiver is a null one; process CPU per alert sent.  Peer: a minimal
   client POSTing the same alerts (same labels, batches of 500) with urllib.
   Rounds alternate A B A B, bracketed by a CPU calibration; unstable rounds dropped.

    python bench/alert_delivery.py [--faults 20] [--alerts 2000] [--rounds 3] [--interval 1]

This machine is shared: absolute times drift with its load, the ratios are what to read.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.alertmanager_sender import AlertmanagerSettings  # noqa: E402
from alerts.runtime import AlertRuntime  # noqa: E402
from bench._common import calibrate, median, stable  # noqa: E402
from contract.alert_event import iso  # noqa: E402
from contract.sample import Sample  # noqa: E402
from testkit.alertmanager import AlertmanagerServer, WebhookReceiver  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_AM_CONF = """\
route:
  receiver: {receiver}
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
  - name: webhook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""
_CPU_RULES = """\
rules:
  - name: bench-high
    measurement: bench
    field: v
    op: '>'
    threshold: 1
    severity: major
"""


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def _post(url: str, alerts: list[dict]) -> None:
    req = urllib.request.Request(url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def latency(args, work: Path) -> None:
    from dcim.service import CollectionService
    from localservers.site import load_relocated
    from localservers.twin import TwinThread
    import os

    os.environ.setdefault("DCIM_SNMP_COMMUNITY", "public")
    os.environ.setdefault("DCIM_BMC_USER", "u")
    os.environ.setdefault("DCIM_BMC_PASSWORD", "p")
    site = load_relocated()
    for d in site.polled_devices():
        d.interval_s, d.timeout_s, d.retries = args.interval, 0.8, 0
    pdus = [d.id for d in site.polled_devices() if d.kind == "pdu"]
    rules = work / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 0", (ROOT / "alerts" / "rules" / "site.yaml").read_text()))
    hook = WebhookReceiver().start()
    am = AlertmanagerServer(work / "am-lat", _AM_CONF.format(receiver="webhook", url=hook.url), cluster=False).start()

    def arrived(device: str, status: str, after: float):
        return lambda _notes: hook.first_arrival(device, status, after) is not None
    engine_ms: list[float] = []
    direct_ms: list[float] = []
    with TwinThread(site, refresh_s=0.2) as twin:
        async def run() -> None:
            service = CollectionService(site, None)
            rt = AlertRuntime(site, rules, state_dir=work / "lat-state", mqtt=None,
                              alertmanager=AlertmanagerSettings(urls=[am.url], resend_s=60))
            service.add_consumer(rt.consume)
            await rt.start()
            await service.start()
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    await rt.tick()
                    await asyncio.sleep(0.1)
            task = asyncio.create_task(ticker())
            loop = asyncio.get_running_loop()
            try:
                await asyncio.sleep(3 * args.interval)  # a healthy baseline first
                for i in range(args.faults):
                    pdu = pdus[i % len(pdus)]
                    t0 = time.time()
                    twin.call(twin.twin.inject, "pdu_breaker_trip", pdu)
                    ok = await loop.run_in_executor(None, hook.wait_for, arrived(pdu, "firing", t0), 30)
                    if ok:
                        engine_ms.append((hook.first_arrival(pdu, "firing", t0) - t0) * 1000)
                    t1 = time.time()
                    twin.call(twin.twin.clear, "pdu_breaker_trip", pdu)
                    await loop.run_in_executor(None, hook.wait_for, arrived(pdu, "resolved", t1), 30)
                    # the peer: the same kind of alert, straight to Alertmanager
                    name = f"bench-direct-{i}"
                    t2 = time.time()
                    await loop.run_in_executor(None, _post, am.url, [{"labels": {"alertname": "pdu-output-dead",
                                                                                 "device": name, "site": "bench"},
                                                                      "annotations": {"summary": "direct"},
                                                                      "startsAt": iso(time.time_ns())}])
                    if await loop.run_in_executor(None, hook.wait_for, arrived(name, "firing", t2), 30):
                        direct_ms.append((hook.first_arrival(name, "firing", t2) - t2) * 1000)
            finally:
                stop.set()
                await task
                await service.stop()
                await rt.stop()
        asyncio.run(run())
    am.stop()
    hook.stop()
    print(f"fault -> webhook (twin poll every {args.interval:g} s, {len(engine_ms)}/{args.faults} arrived): "
          f"p50 {median(engine_ms):.0f} ms, p99 {_pct(engine_ms, 0.99):.0f} ms")
    print(f"direct POST -> webhook (peer, {len(direct_ms)}): p50 {median(direct_ms):.0f} ms, "
          f"p99 {_pct(direct_ms, 0.99):.0f} ms; ratio p50 {median(engine_ms) / max(median(direct_ms), 1e-9):.1f}x")


def cpu(args, work: Path) -> None:
    am = AlertmanagerServer(work / "am-cpu", _AM_CONF.format(receiver='"null"', url="http://127.0.0.1:9/"),
                            cluster=False).start()
    rules = work / "cpu-rules.yaml"
    rules.write_text(_CPU_RULES)
    n = args.alerts
    engine_us: list[float] = []
    peer_us: list[float] = []
    try:
        for rnd in range(args.rounds):
            for side in ("engine", "peer"):
                before = calibrate()
                t = time.process_time()
                if side == "engine":
                    _engine_round(work / f"cpu-state-{rnd}", rules, am.url, n, rnd)
                else:
                    _peer_round(am.url, n, rnd)
                used = time.process_time() - t
                after = calibrate()
                if not stable(before, after):
                    print(f"round {rnd} {side}: calibration moved {before:.3f}s -> {after:.3f}s, dropped")
                    continue
                (engine_us if side == "engine" else peer_us).append(used / (2 * n) * 1e6)
    finally:
        am.stop()
    e, p = median(engine_us), median(peer_us)
    print(f"CPU per alert sent (firing + resolved, {2 * n} per round, rounds kept {len(engine_us)}/{len(peer_us)}): "
          f"engine {e:.0f} us (evaluate + outbox + sender + HTTP), minimal client {p:.0f} us; ratio {e / p:.2f}x")


def _engine_round(state: Path, rules: Path, url: str, n: int, rnd: int) -> None:
    rt = AlertRuntime(None, rules, state_dir=state, mqtt=None,
                      alertmanager=AlertmanagerSettings(urls=[url], resend_s=3600))

    async def go() -> None:
        await rt.start()
        for v in (5.0, 0.0):  # fire every series, then resolve every one
            rt.consume([Sample("bench", {"device": f"dev-{rnd}-{i:05d}"}, {"v": v}, time.time_ns())
                        for i in range(n)])
            await rt.tick()
            rt.am.drain(60)
        await rt.stop()
    asyncio.run(go())


def _peer_round(url: str, n: int, rnd: int) -> None:
    starts = iso(time.time_ns())
    for ends in (None, iso(time.time_ns())):
        batch = []
        for i in range(n):
            a = {"labels": {"alertname": "bench-peer", "device": f"peer-{rnd}-{i:05d}", "severity": "major"},
                 "annotations": {"summary": f"peer-{rnd}-{i:05d} high"}, "startsAt": starts,
                 "endsAt": ends or iso(time.time_ns() + 240 * 10**9)}
            batch.append(a)
            if len(batch) == 500:
                _post(url, batch)
                batch = []
        if batch:
            _post(url, batch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faults", type=int, default=20, help="fault injections timed (default 20)")
    ap.add_argument("--alerts", type=int, default=2000, help="alerts per CPU round (default 2000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0, help="twin poll interval, s")
    args = ap.parse_args()
    if not (1 <= args.faults <= 500 and 1 <= args.alerts <= 50_000 and 1 <= args.rounds <= 20):
        ap.error("bounds: --faults 1..500, --alerts 1..50000, --rounds 1..20")
    with tempfile.TemporaryDirectory(prefix="bench-am-") as d:
        cpu(args, Path(d))
        latency(args, Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
