"""The engine → real Alertmanagers (a gossiping pair) → a webhook receiver.

Counts notifications the receiver got, with deadlines; what Alertmanager holds is
read back from its API.  Samples are fed to the runtime as the collectors emit them.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import pytest

from alerts.alertmanager_sender import AlertmanagerSettings
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from inventory.loader import load_site
from testkit.alertmanager import SHIPPED_CONFIG, AlertmanagerServer
from localservers.process import require_binary

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "examples" / "tetouan.yaml"


@pytest.fixture(scope="module")
def site():
    return load_site(SITE)


@pytest.fixture()
def rules(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(re.sub(r"for_s: \d+", "for_s: 0", (ROOT / "alerts" / "rules" / "site.yaml").read_text()))
    return p


def chiller(running: bool) -> Sample:
    return Sample("chiller", {"device": "chiller-1"}, {"running": running}, time.time_ns())


def gpu(device: str, temp: float) -> Sample:
    return Sample("gpu", {"device": device, "gpu": "0"}, {"temp_c": temp}, time.time_ns())


def by_status(hook, alertname: str, status: str) -> list[dict]:
    return [a for a in hook.alerts(status) if a["labels"]["alertname"] == alertname]


async def tick_until(runtimes, cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rt in runtimes:
            await rt.tick()
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def runtime(site, rules, state_dir, am_pair, **kw) -> AlertRuntime:
    settings = AlertmanagerSettings(urls=[a.url for a in am_pair], resend_s=kw.pop("resend_s", 1.0),
                                    max_backoff_s=0.5, timeout_s=2)
    return AlertRuntime(site, rules, state_dir=state_dir, mqtt=None, alertmanager=settings, **kw)


def test_shipped_config_checks_and_routes(tmp_path):
    amtool = require_binary("amtool", "prometheus-alertmanager")
    out = subprocess.run([amtool, "check-config", str(SHIPPED_CONFIG)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr

    def route(*labels: str) -> str:
        r = subprocess.run([amtool, "config", "routes", "test", f"--config.file={SHIPPED_CONFIG}", *labels],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip()
    assert route("alertname=gpu-temp-high", "severity=critical", "suppressed=true") == "blackhole"
    assert route("alertname=ups-on-battery", "severity=critical", "team=power") == "pagerduty-power,pagerduty-noc"
    assert route("alertname=chiller-stopped", "severity=critical") == "pagerduty-noc"
    assert route("alertname=gpu-temp-high", "severity=major") == "slack-noc"
    assert route("alertname=meter-absent", "severity=warning") == "ticketing"
    # and the real server takes it as it is (its secret files are read only when notifying)
    am = AlertmanagerServer(tmp_path / "am", SHIPPED_CONFIG.read_text(), cluster=False).start()
    try:
        assert am.api("GET", "/api/v2/status")["config"]["original"].count("routing_key_file") == 3
    finally:
        am.stop()


def test_one_page_from_two_replicas_and_resolution(site, rules, tmp_path, am_pair, webhook):
    """Two replicas of a shard see the same samples: one notification, one resolution."""
    replicas = [runtime(site, rules, tmp_path / f"r{i}", am_pair, engine_id=f"r{i}") for i in range(2)]

    async def go() -> None:
        for rt in replicas:
            await rt.start()
        try:
            for rt in replicas:
                rt.consume([chiller(False)])
            assert await tick_until(replicas, lambda: by_status(webhook, "chiller-stopped", "firing"), 15)
            # let resends from both replicas reach both peers a few times: still one page
            posted = sum(p.posted for rt in replicas for p in rt.am.peers)
            assert await tick_until(replicas, lambda: sum(p.posted for rt in replicas for p in rt.am.peers)
                                    >= posted + 8, 15)
            for rt in replicas:
                rt.consume([chiller(True)])
            assert await tick_until(replicas, lambda: by_status(webhook, "chiller-stopped", "resolved"), 15)
        finally:
            for rt in replicas:
                await rt.stop()
    asyncio.run(go())
    firing = [n for n in webhook.notifications if n["status"] == "firing"]
    assert len(firing) == 1, firing
    assert firing[0]["groupLabels"] == {"alertname": "chiller-stopped", "site": "tetouan"}
    labels = firing[0]["alerts"][0]["labels"]
    assert labels["device"] == "chiller-1" and labels["severity"] == "critical"


def test_outage_of_both_alertmanagers_loses_nothing(site, rules, tmp_path, am_pair, webhook):
    """Both peers down while the chiller trips and recovers: after they return, both arrive."""
    rt = runtime(site, rules, tmp_path / "r", am_pair)

    async def go() -> None:
        await rt.start()
        try:
            for am in am_pair:
                am.stop()
            rt.consume([chiller(False)])
            assert await tick_until([rt], lambda: all(p.failures >= 3 for p in rt.am.peers), 20)
            for am in am_pair:
                am.start()
            assert await tick_until([rt], lambda: by_status(webhook, "chiller-stopped", "firing"), 20)
            for am in am_pair:
                am.stop()
            failures = [p.failures for p in rt.am.peers]
            rt.consume([chiller(True)])
            assert await tick_until([rt], lambda: all(p.failures >= f + 3 for p, f in zip(rt.am.peers, failures)), 20)
            assert not by_status(webhook, "chiller-stopped", "resolved")
            for am in am_pair:
                am.start()
            assert await tick_until([rt], lambda: by_status(webhook, "chiller-stopped", "resolved"), 20)
        finally:
            await rt.stop()
    asyncio.run(go())
    assert len([n for n in webhook.notifications if n["status"] == "firing"]) == 1, webhook.notifications


def test_restart_resends_without_second_page(site, rules, tmp_path, am_pair, webhook):
    async def go() -> None:
        first = runtime(site, rules, tmp_path / "r", am_pair)
        await first.start()
        first.consume([chiller(False)])
        assert await tick_until([first], lambda: by_status(webhook, "chiller-stopped", "firing"), 15)
        await first.stop()
        again = runtime(site, rules, tmp_path / "r", am_pair)
        assert [a.rule for a in again.active()] == ["chiller-stopped"]
        await again.start()
        try:
            # the restored alert is re-sent at once (same labels) and keeps being re-sent
            assert await tick_until([again], lambda: sum(p.posted for p in again.am.peers) >= 6, 15)
            again.consume([chiller(True)])
            assert await tick_until([again], lambda: by_status(webhook, "chiller-stopped", "resolved"), 15)
        finally:
            await again.stop()
    asyncio.run(go())
    assert len([n for n in webhook.notifications if n["status"] == "firing"]) == 1, webhook.notifications


def test_suppressed_symptom_is_marked_and_not_paged(site, rules, tmp_path, am_pair, webhook):
    """A node on the tripped chiller's loop: in Alertmanager, marked with the chiller's fingerprint; no page."""
    rt = runtime(site, rules, tmp_path / "r", am_pair)

    async def go() -> None:
        await rt.start()
        try:
            rt.consume([chiller(False)])
            rt.consume([gpu("h1-r01-k01-n2", 95.0)])
            root = next(a for a in rt.active() if a.rule == "chiller-stopped")
            node = next(a for a in rt.active() if a.rule == "gpu-temp-high")
            assert node.suppressed_by == root.fingerprint

            def in_am() -> list[dict]:
                return [a for a in am_pair[1].alerts() if a["labels"]["alertname"] == "gpu-temp-high"]
            assert await tick_until([rt], lambda: in_am() and by_status(webhook, "chiller-stopped", "firing"), 15)
            labels = in_am()[0]["labels"]
            assert labels["suppressed"] == "true" and labels["suppressed_by_fp"] == root.fingerprint
            assert in_am()[0]["annotations"]["suppressed_by"] == root.fingerprint
            # the chiller recovers, the node stays hot: now it is its own problem and pages
            rt.consume([chiller(True)])
            rt.consume([gpu("h1-r01-k01-n2", 95.0)])
            assert await tick_until([rt], lambda: by_status(webhook, "gpu-temp-high", "firing"), 15)
            paged = by_status(webhook, "gpu-temp-high", "firing")[0]["labels"]
            assert "suppressed" not in paged
            assert not [a for a in am_pair[0].alerts() if a["labels"].get("suppressed") == "true"
                        and a["status"]["state"] == "active"]
        finally:
            await rt.stop()
    asyncio.run(go())
    assert all("suppressed" not in a["labels"] for a in webhook.alerts("firing"))


def test_silence_and_ack_become_alertmanager_silences(site, rules, tmp_path, am_pair, webhook):
    rt = runtime(site, rules, tmp_path / "r", am_pair, engine_id="engine-0")

    async def go() -> None:
        await rt.start()
        try:
            s = rt.silence({"device": "chiller-*"}, duration_s=3600, author="amina", reason="chiller service")
            assert await tick_until([rt], lambda: len(am_pair[1].silences()) == 1, 15)
            sil = am_pair[1].silences()[0]
            assert sil["createdBy"] == "amina" and sil["comment"].startswith("chiller service")
            assert sil["matchers"] == [{"name": "device", "value": r"chiller\-.*", "isRegex": True, "isEqual": True}]
            rt.consume([chiller(False)])
            assert await tick_until([rt], lambda: [a for a in am_pair[0].alerts()
                                                   if a["status"]["state"] == "suppressed"
                                                   and a["status"]["silencedBy"]], 15)
            # an ack of another alert: a silence on its fingerprint, gone when it resolves
            rt.consume([gpu("h1-r02-k01-n3", 95.0)])
            node = next(a for a in rt.active() if a.rule == "gpu-temp-high")
            rt.ack(node.fingerprint, author="youssef", comment="on it")
            assert await tick_until([rt], lambda: len(am_pair[1].silences()) == 2, 15)
            rt.consume([gpu("h1-r02-k01-n3", 60.0)])
            assert await tick_until([rt], lambda: len(am_pair[1].silences()) == 1, 15)
            # silenced in Alertmanager: no notification for the chiller went out
            assert not by_status(webhook, "chiller-stopped", "firing")
            # the silence ends while the chiller is still stopped: now it pages
            rt.silences.expire(s.id, author="amina", now_ns=time.time_ns())
            assert await tick_until([rt], lambda: not am_pair[1].silences(), 15)
            assert await tick_until([rt], lambda: by_status(webhook, "chiller-stopped", "firing"), 15)
        finally:
            await rt.stop()
    asyncio.run(go())


def test_cli_silence_and_ack_by_state_dir_reach_alertmanager(site, rules, tmp_path, am_pair, webhook):
    """``dcim alerts silence|ack --state-dir``, the operator's one command: the running engine
    picks the file up and Alertmanager gets the silence; no second silence to make there."""
    import os
    import sys

    state = tmp_path / "r"
    rt = runtime(site, rules, state, am_pair, engine_id="engine-0")

    def cli(*argv: str) -> None:
        out = subprocess.run([sys.executable, "-m", "dcim.cli", "alerts", *argv, "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stdout + out.stderr

    async def go() -> None:
        await rt.start()
        try:
            rt.consume([gpu("h1-r02-k01-n3", 95.0)])
            node = next(a for a in rt.active() if a.rule == "gpu-temp-high")
            assert await tick_until([rt], lambda: by_status(webhook, "gpu-temp-high", "firing"), 15)
            await asyncio.get_running_loop().run_in_executor(
                None, cli, "silence", "--select", "hall=h1", "--duration", "30m", "--author", "amina",
                "--reason", "maintenance")
            await asyncio.get_running_loop().run_in_executor(None, cli, "ack", node.fingerprint, "--author", "youssef")
            assert await tick_until([rt], lambda: len(am_pair[0].silences()) == 2, 15)
            by_creator = {s["createdBy"]: s for s in am_pair[0].silences()}
            assert by_creator["amina"]["matchers"] == [{"name": "hall", "value": "h1", "isRegex": False,
                                                        "isEqual": True}]
            assert by_creator["youssef"]["matchers"][0] == {"name": "fingerprint", "value": node.fingerprint,
                                                           "isRegex": False, "isEqual": True}
        finally:
            await rt.stop()
    asyncio.run(go())


def test_tls_and_basic_auth_from_env_and_files(site, rules, tmp_path, webhook, caplog):
    """HTTPS with the site's CA and basic auth whose password comes from a 0600 file; a wrong
    password delivers nothing and never reaches a log line."""
    import logging

    from alerts.alertmanager_sender import AlertmanagerSettings
    from testkit.alertmanager import webhook_config
    from testkit.tls import make_tls

    tls = make_tls(tmp_path / "tls")
    am = AlertmanagerServer(tmp_path / "am", webhook_config(webhook.url), cluster=False, tls=tls,
                            basic_auth=("dcim-engine", "s3cret-pass")).start()
    good, bad = tmp_path / "good", tmp_path / "bad"
    for f, text in ((good, "s3cret-pass\n"), (bad, "wrong-pass-42\n")):
        f.write_text(text)
        f.chmod(0o600)

    def settings(pw_file: Path) -> AlertmanagerSettings:
        return AlertmanagerSettings.from_env([am.url], environ={
            "DCIM_ALERTMANAGER_USERNAME": "dcim-engine", "DCIM_ALERTMANAGER_PASSWORD_FILE": str(pw_file),
            "DCIM_ALERTMANAGER_CA": str(tls.ca_cert)}, resend_s=1, max_backoff_s=0.5)

    async def go() -> None:
        caplog.set_level(logging.DEBUG)
        refused = AlertRuntime(site, rules, state_dir=tmp_path / "refused", mqtt=None, alertmanager=settings(bad))
        await refused.start()
        refused.consume([chiller(False)])
        assert await tick_until([refused], lambda: refused.am.peers[0].failures >= 2, 15)
        await refused.stop(timeout=0.5)
        assert not am.alerts()
        ok = AlertRuntime(site, rules, state_dir=tmp_path / "ok", mqtt=None, alertmanager=settings(good))
        await ok.start()
        try:
            ok.consume([chiller(False)])
            assert await tick_until([ok], lambda: [a for a in am.alerts()
                                                   if a["labels"]["alertname"] == "chiller-stopped"], 15)
        finally:
            await ok.stop()
    try:
        asyncio.run(go())
    finally:
        am.stop()
    assert "401" in caplog.text  # the refusal is logged...
    assert "s3cret-pass" not in caplog.text and "wrong-pass-42" not in caplog.text  # ...the secrets are not


def test_a_batch_refused_as_invalid_does_not_block_the_rest(site, rules, tmp_path, am_pair, webhook):
    """A row Alertmanager answers 400 to (here: written by hand with an invalid label name) is
    dropped and counted; the row in the same batch and the alert behind it still go out."""
    import json as _json

    rt = runtime(site, rules, tmp_path / "r", am_pair)
    bad = {"labels": {"alertname": "x", "bad-label": "y"}, "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}
    good = {"labels": {"alertname": "hand-written", "site": "tetouan"}, "annotations": {},
            "startsAt": "2026-01-01T00:00:00Z"}
    for p in rt.am.peers:
        p.outbox.append([("bad", _json.dumps(bad).encode(), 0, False), ("good", _json.dumps(good).encode(), 0, False)])

    async def go() -> None:
        await rt.start()
        try:
            assert await tick_until([rt], lambda: all(p.rejected == 1 for p in rt.am.peers), 15)
            assert [a["labels"]["alertname"] for a in am_pair[0].alerts()] == ["hand-written"]
            rt.consume([chiller(False)])
            assert await tick_until([rt], lambda: by_status(webhook, "chiller-stopped", "firing"), 15)
        finally:
            await rt.stop()
    asyncio.run(go())
