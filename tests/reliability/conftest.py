"""A small steady load: several inventory devices polling a recorded APC PDU in snmpsim."""
from __future__ import annotations

import pytest

from testkit.snmp import SnmpsimServer
from testkit.testdata import shared_testdata

RECORDING = "apc_ap8959eu3"


def site_yaml(port: int, devices: int = 4, interval: float = 0.5) -> str:
    lines = [
        "site: {id: rel}",
        "credentials:",
        "  ro: {version: 2c, community: {env: REL_COMMUNITY}}",
        f"defaults: {{credentials: {{snmp: ro}}, interval_s: {interval}, timeout_s: 1, retries: 0}}",
        "devices:",
        "  - {id: ups-1, kind: ups}",
    ]
    for i in range(devices):
        # one agent, one endpoint per device (pdu_agent answers on 127.0.0.1 … 127.0.0.4)
        lines.append(f"  - {{id: pdu-{i}, kind: pdu, fed_by: [ups-1], protocol: snmp, host: 127.0.0.{i + 1}, port: {port}}}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="package")
def pdu_agent():
    server = SnmpsimServer([shared_testdata() / "snmp" / f"{RECORDING}.snmprec"], hosts=4).start()
    yield server
    server.stop()
