"""SNMP test fixtures: snmpsim serving every recording, net-snmp snmpd with a v3 user."""
from __future__ import annotations

from pathlib import Path

import pytest

from testkit.snmp import SnmpdServer, SnmpsimServer, V3User
from testkit.testdata import shared_testdata

V3 = V3User("dcimv3", "SHA", "auth-key-1234", "AES", "priv-key-5678")
V3_SHA2_AES256 = V3User("dcimsha2", "SHA-256", "auth-key-sha2-9", "AES-256", "priv-key-aes256")
V3_AUTHNOPRIV = V3User("dcimauth", "SHA-512", "auth-only-key-42", None, None)


testdata_dir = shared_testdata


def recordings() -> list[Path]:
    recs = sorted((testdata_dir() / "snmp").glob("*.snmprec"))
    if not recs:
        raise RuntimeError(f"no .snmprec recordings under {testdata_dir() / 'snmp'}")
    return recs


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory):
    # its own /tmp dir: pytest tmp dirs are 0700 and snmpsim runs as nobody
    server = SnmpsimServer(recordings()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory):
    server = SnmpdServer(community="dcim-ro", users=[V3, V3_SHA2_AES256, V3_AUTHNOPRIV], workdir=tmp_path_factory.mktemp("snmpd")).start()
    yield server
    server.stop()
