"""Fixtures for the alert tests: a real Mosquitto per test (private dir, free port)."""
from __future__ import annotations

import pytest

from testkit.mosquitto import MosquittoServer


@pytest.fixture()
def mosquitto(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto").start()  # raises ServerStartError: fails loudly
    yield server
    server.stop()
