from __future__ import annotations

import pytest

from localservers.site import load_relocated
from localservers.twin import TwinThread


@pytest.fixture(scope="module")
def twin_site():
    return load_relocated()


@pytest.fixture(scope="module")
def twin(twin_site):
    """The example site's twin on free ports, values frozen (refresh 1 h) so truth is stable."""
    with TwinThread(twin_site, slow_s=2.5) as t:
        yield t


@pytest.fixture(autouse=True)
def snmp_community(monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    monkeypatch.setenv("DCIM_BMC_USER", "monitor")
    monkeypatch.setenv("DCIM_BMC_PASSWORD", "not-a-real-password")
