"""The shipped production broker config, run for real: TLS, no anonymous access, password file, ACL."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.mqtt_publisher import MqttSettings
from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from contract.sample import Sample
from mqtt_helpers import Subscriber
from localservers.mosquitto import SHIPPED_CONF, MosquittoServer
from localservers.process import free_port, require_binary
from testkit.tls import make_tls

ENGINE_PW = "engine-Secret-7f3a"
OPS_PW = "ops-Secret-91bd"
ACL = """user dcim-engine
topic write dcim/+/alerts/#
topic write dcim/+/active/#
topic write dcim/+/engine/status
topic read dcim/+/commands/#
pattern read dcim/+/#
"""
RULES = load_rules_text("rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n", "t.yaml")


@pytest.fixture()
def production_broker(tmp_path):
    d = tmp_path / "broker"
    d.mkdir()
    tls = make_tls(d / "tls")
    passwd = d / "passwd"
    passwd.write_text("")
    tool = require_binary("mosquitto_passwd", "mosquitto")
    for user, pw in (("dcim-engine", ENGINE_PW), ("ops", OPS_PW)):
        subprocess.run([tool, "-b", str(passwd), user, pw], check=True, capture_output=True, timeout=10)
    (d / "acl").write_text(ACL)
    port = free_port()
    text = SHIPPED_CONF.read_text()
    subs = {
        r"^listener 8883$": f"listener {port} 127.0.0.1",
        r"^cafile .*$": f"cafile {tls.ca_cert}",
        r"^certfile .*$": f"certfile {tls.server_cert}",
        r"^keyfile .*$": f"keyfile {tls.server_key}",
        r"^password_file .*$": f"password_file {passwd}",
        r"^acl_file .*$": f"acl_file {d / 'acl'}",
        r"^persistence_location .*$": f"persistence_location {d}/",
    }
    for pat, rep in subs.items():
        text, n = re.subn(pat, rep, text, flags=re.M)
        assert n == 1, f"shipped config lost its {pat!r} line"
    text += "log_dest stdout\n" + ("user root\n" if os.geteuid() == 0 else "")
    broker = MosquittoServer(d, port=port, config_text=text).start()
    yield broker, tls
    broker.stop()


def _connack(port: int, ca: str, username: str | None, password: str | None) -> str:
    got: list[str] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{username}")
    c.tls_set(ca_certs=ca)
    if username:
        c.username_pw_set(username, password)
    c.on_connect = lambda cl, u, f, rc, p: (got.append(str(rc)), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return got[0] if got else "no CONNACK"


def test_shipped_config_refuses_anonymous_and_wrong_password(production_broker):
    broker, tls = production_broker
    assert _connack(broker.port, str(tls.ca_cert), None, None) != "Success"
    assert _connack(broker.port, str(tls.ca_cert), "ops", "wrong") != "Success"
    assert _connack(broker.port, str(tls.ca_cert), "ops", OPS_PW) == "Success"


def test_engine_publishes_over_tls_with_password_from_a_file(production_broker, tmp_path, monkeypatch, caplog):
    broker, tls = production_broker
    pw_file = tmp_path / "mqtt-password"
    pw_file.write_text(ENGINE_PW + "\n")
    pw_file.chmod(0o600)
    monkeypatch.setenv("DCIM_MQTT_USERNAME", "dcim-engine")
    monkeypatch.setenv("DCIM_MQTT_PASSWORD_FILE", str(pw_file))
    monkeypatch.setenv("DCIM_MQTT_CA", str(tls.ca_cert))
    sub = Subscriber(broker.port, "dcim/tetouan/alerts/#", client_id="ops-tail", username="ops", password=OPS_PW,
                     ca_file=str(tls.ca_cert)).start()
    settings = MqttSettings.from_env(f"127.0.0.1:{broker.port}", "tetouan")
    assert ENGINE_PW not in repr(settings)
    rt = AlertRuntime(None, RULES, state_dir=tmp_path / "st", mqtt=settings)
    caplog.set_level(logging.DEBUG)

    async def go():
        await rt.start()
        rt.consume([Sample("pdu", {"device": "pdu-tls"}, {"current_a": 30.0}, time.time_ns())])
        assert rt.publisher.drain(10), "not delivered over TLS"
        await rt.stop()
    asyncio.run(go())
    assert sub.wait_for(lambda s: len(s.events()) == 1)
    assert sub.events()[0]["device"] == "pdu-tls"
    sub.stop()
    assert ENGINE_PW not in caplog.text and ENGINE_PW not in broker.output()


def test_group_readable_password_file_is_refused_by_name(tmp_path, monkeypatch):
    pw_file = tmp_path / "pw"
    pw_file.write_text(ENGINE_PW)
    pw_file.chmod(0o644)
    monkeypatch.setenv("DCIM_MQTT_USERNAME", "dcim-engine")
    monkeypatch.setenv("DCIM_MQTT_PASSWORD_FILE", str(pw_file))
    from inventory.secrets import SecretError

    with pytest.raises(SecretError) as info:
        AlertRuntime(None, RULES, state_dir=tmp_path / "st", mqtt=MqttSettings.from_env("127.0.0.1:1", "s"))
    assert "chmod 600" in str(info.value) and ENGINE_PW not in str(info.value)
