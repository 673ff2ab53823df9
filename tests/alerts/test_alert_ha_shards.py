"""Two shards, two replicas each, as deployed: four ``dcim run --alerts`` processes.

Everything is real: the twin (every endpoint of the example site), the collectors in
each process, Mosquitto, two gossiping Alertmanagers and a webhook receiver.  With
two shards chiller-1 polls in one shard, while GPU nodes on its loop (through cdu-1)
poll in the other.  The chiller trips, then the GPUs on its loop overheat:

* one notification for the chiller's group, though four engines send to two
  Alertmanagers (replicas deduplicated by identical labels, peers by gossip);
* the GPU alerts of shard 0 reach Alertmanager marked ``suppressed="true"`` with
  the chiller's fingerprint (learnt from shard 1's retained state), and page nobody;
* ``kill -9`` of a replica of the chiller's shard and of one Alertmanager mid-incident: the
  chiller's resolution still reaches the webhook, and nothing pages twice.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from dcim.service import select_shard
from testkit.alertmanager import AlertmanagerServer, webhook_config
from localservers.mosquitto import MosquittoServer
from localservers.process import free_port
from localservers.site import load_relocated, write_site
from localservers.twin import TwinThread

ROOT = Path(__file__).resolve().parents[2]
COOLED_BY_CHILLER_1 = [f"h1-r01-k0{k}-n{n}" for k in (1, 2, 3) for n in (1, 2, 3, 4)]


def _wait(cond, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for name, p, log in procs:
            if p.poll() is not None and name != "killed":
                raise AssertionError(f"{name} exited {p.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_shards_two_replicas_kill_9(tmp_path, monkeypatch, webhook):
    env = {**os.environ, "DCIM_SNMP_COMMUNITY": "public", "DCIM_BMC_USER": "u", "DCIM_BMC_PASSWORD": "p",
           "PYTHONPATH": str(ROOT)}
    for k in ("DCIM_SNMP_COMMUNITY", "DCIM_BMC_USER", "DCIM_BMC_PASSWORD"):
        monkeypatch.setenv(k, env[k])
    site = load_relocated()
    for d in site.polled_devices():
        d.interval_s, d.timeout_s, d.retries = 1.0, 0.8, 0
    # shards hash the device's address, which the relocation to free ports picks: find where things land
    chiller_shard = next(i for i in (0, 1) if "chiller-1" in {d.id for d in select_shard(site, (i, 2))})
    other = {d.id for d in select_shard(site, (1 - chiller_shard, 2))}
    hot = [n for n in COOLED_BY_CHILLER_1 if n in other]
    assert hot, "no GPU node on chiller-1's loop polls in the other shard"
    write_site(site, tmp_path / "site.yaml")
    rules = tmp_path / "rules.yaml"
    rules.write_text(re.sub(r"for_s: \d+", "for_s: 1", (ROOT / "alerts" / "rules" / "site.yaml").read_text()))
    (tmp_path / "run.yaml").write_text(f"""site: site.yaml
influxdb:
  url: http://127.0.0.1:{free_port()}
  flush_interval_s: 1
alertmanager:
  resend_s: 1
log_level: warning
""")
    broker = MosquittoServer(tmp_path / "mosquitto").start()
    conf = webhook_config(webhook.url)
    am_a = AlertmanagerServer(tmp_path / "am-a", conf)
    am_b = AlertmanagerServer(tmp_path / "am-b", conf, peers=[am_a.cluster_address])
    am_a.peers = [am_b.cluster_address]
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        am_a.start()
        am_b.start()
        with TwinThread(site, refresh_s=0.5) as twin:
            for shard in (0, 1):
                for replica in ("a", "b"):
                    name = f"s{shard}{replica}"
                    log = tmp_path / f"{name}.log"
                    argv = [sys.executable, "-m", "dcim.cli", "run", "--config", str(tmp_path / "run.yaml"),
                            "--shard", f"{shard}/2", "--alerts", str(rules), "--state-dir", str(tmp_path / name),
                            "--mqtt", broker.url, "--engine-id", name,
                            "--alertmanager", am_a.url, "--alertmanager", am_b.url]
                    with open(log, "wb") as out:
                        procs.append((name, subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                                             start_new_session=True), log))

            def notified(alertname: str, status: str) -> list[dict]:
                return [n for n in webhook.notifications if n["status"] == status
                        and n["groupLabels"].get("alertname") == alertname]

            twin.call(twin.twin.inject, "chiller_trip", "chiller-1")
            _wait(lambda: notified("chiller-stopped", "firing"), 90, "the chiller's page", procs)
            chiller_fp = notified("chiller-stopped", "firing")[0]["alerts"][0]["labels"]["fingerprint"]
            for node in hot:
                twin.call(twin.twin.inject, "gpu_overtemp", node)

            def suppressed_gpus() -> set[str]:
                return {a["labels"]["device"] for a in am_b.alerts() if a["labels"]["alertname"] == "gpu-temp-high"
                        and a["labels"].get("suppressed_by_fp") == chiller_fp and a["status"]["state"] == "active"}
            _wait(lambda: suppressed_gpus() & set(hot), 60, "GPU alerts suppressed by the chiller", procs)
            assert all(a["labels"].get("suppressed") == "true" for a in am_b.alerts()
                       if a["labels"]["alertname"] == "gpu-temp-high" and a["status"]["state"] == "active")

            # mid-incident: one replica of the chiller's shard and one Alertmanager die hard
            victim_name = f"s{chiller_shard}a"
            victim = next(p for name, p, _ in procs if name == victim_name)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(10)
            procs = [(n if n != victim_name else "killed", p, log) for n, p, log in procs]
            am_a.kill()
            for node in hot:
                twin.call(twin.twin.clear, "gpu_overtemp", node)
            _wait(lambda: not [a for a in am_b.alerts() if a["labels"]["alertname"] == "gpu-temp-high"
                               and a["status"]["state"] == "active"], 60, "GPU alerts to resolve", procs)
            twin.call(twin.twin.clear, "chiller_trip", "chiller-1")
            _wait(lambda: notified("chiller-stopped", "resolved"), 60, "the chiller's resolution", procs)
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for _, p, _ in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        am_b.stop()
        am_a.stop()
        broker.stop()
    assert len(notified("chiller-stopped", "firing")) == 1, webhook.notifications
    assert not [a for a in webhook.alerts() if a["labels"].get("suppressed") == "true"]
    assert not notified("gpu-temp-high", "firing"), "a suppressed symptom paged"
