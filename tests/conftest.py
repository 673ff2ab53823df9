"""Session-wide real servers.  Protocol areas add their own in tests/<area>/conftest.py.

A server that cannot start raises localservers.ServerStartError with its output:
the tests fail loudly, they never skip.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from localservers.influx import InfluxServer, V2WriteFront
from testkit.testdata import shared_testdata

REPO = Path(__file__).resolve().parent.parent
_db_counter = itertools.count(1)


testdata_dir = shared_testdata  # ../shared/testdata: recordings of real devices (read-only)


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory) -> InfluxServer:
    server = InfluxServer(tmp_path_factory.mktemp("influxd")).start()
    yield server
    server.stop()


@pytest.fixture()
def own_influx(tmp_path_factory):
    """(server, database) of the test's own influxd, for tests that stop and restart it.

    An outage test must never take the session's server down with it: if the
    restart failed (its port taken meanwhile, say), every later test would fail.
    """
    server = InfluxServer(tmp_path_factory.mktemp("influxd-own")).start()
    server.create_database("own")
    yield server, "own"
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
