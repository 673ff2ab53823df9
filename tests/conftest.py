"""Session-wide real servers.  Protocol areas add their own in tests/<area>/conftest.py.

A server that cannot start raises testkit.ServerStartError with its output:
the tests fail loudly, they never skip.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from testkit.influx import InfluxServer, V2WriteFront

REPO = Path(__file__).resolve().parent.parent
_db_counter = itertools.count(1)


def testdata_dir() -> Path:
    """``../shared/testdata`` beside the checkout: recordings of real devices (read-only)."""
    path = REPO.parent / "shared" / "testdata"
    if not path.is_dir():
        raise RuntimeError(f"real-device test data not found at {path}; it ships beside the checkout as ../shared/testdata")
    return path


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory) -> InfluxServer:
    server = InfluxServer(tmp_path_factory.mktemp("influxd")).start()
    yield server
    server.stop()


@pytest.fixture()
def influx_db(influx_server) -> str:
    """A fresh, empty database on the session's influxd."""
    name = f"t{next(_db_counter)}"
    influx_server.create_database(name)
    return name


@pytest.fixture()
def v2_front(influx_server) -> V2WriteFront:
    front = V2WriteFront(influx_server.port).start()
    yield front
    front.stop()
