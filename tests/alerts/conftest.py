"""Fixtures for the alert tests: a real Mosquitto per test (private dir, free port)."""
from __future__ import annotations

import pytest

from localservers.mosquitto import MosquittoServer


@pytest.fixture()
def mosquitto(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto").start()  # raises ServerStartError: fails loudly
    yield server
    server.stop()


@pytest.fixture()
def webhook():
    """The receiver end of Alertmanager: records every notification it posts."""
    from testkit.alertmanager import WebhookReceiver

    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture()
def am_pair(tmp_path, webhook):
    """Two real Alertmanagers gossiping over loopback, both notifying ``webhook``."""
    from testkit.alertmanager import AlertmanagerServer, webhook_config

    conf = webhook_config(webhook.url)
    a = AlertmanagerServer(tmp_path / "am-a", conf)
    b = AlertmanagerServer(tmp_path / "am-b", conf, peers=[a.cluster_address])
    a.peers = [b.cluster_address]
    a.start()
    b.start()
    yield a, b
    b.stop()
    a.stop()
