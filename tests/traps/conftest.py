"""Helpers for the trap tests: net-snmp's own snmptrap/snmpinform as the senders, isolated config."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from collectors.base import Target
from inventory.secrets import SecretValue


@pytest.fixture()
def netsnmp_env(tmp_path) -> dict[str, str]:
    """Environment for snmptrap/snmpinform: no MIB loading, private persistent dir (v3 engine boots)."""
    for tool in ("snmptrap", "snmpinform"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: install Debian's snmp package (scripts/setup.sh does)")
    d = tmp_path / "netsnmp"
    d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNMP")}
    env.update({"SNMP_PERSISTENT_DIR": str(d), "SNMPCONFPATH": str(d), "MIBS": "", "MIBDIRS": str(d)})
    return env


def capture(env: dict[str, str], *args: str) -> bytes:
    """The datagram a net-snmp sender really puts on the wire: ``args`` are the tool and its options,
    the last one the trap's own arguments joined by ``|`` (the destination goes in between)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        port = sock.getsockname()[1]
        proc = subprocess.Popen([args[0], *args[1:-1], f"127.0.0.1:{port}", *args[-1].split("|")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data, _ = sock.recvfrom(65535)
        proc.kill()
        proc.wait()
        return data
    finally:
        sock.close()


async def send(env: dict[str, str], *args: str, timeout: float = 20.0) -> int:
    """Run one net-snmp sender to completion; its exit status (snmpinform: 0 only when acknowledged)."""
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), timeout)


def snmp_target(device_id: str, host: str, *, community: str | None = "trapc", user: str | None = None,
                auth: str | None = None, auth_key: str | None = None, priv: str | None = None,
                priv_key: str | None = None, tags: dict | None = None) -> Target:
    secrets = {}
    options: dict = {}
    if community:
        secrets["community"] = SecretValue(community)
    if user:
        options.update(version="3", user=user, auth_protocol=auth, priv_protocol=priv)
        secrets["auth_key"] = SecretValue(auth_key)
        if priv_key:
            secrets["priv_key"] = SecretValue(priv_key)
    return Target(device_id=device_id, protocol="snmp", host=host, port=161, kind="ups",
                  tags=tags or {"site": "t", "device": device_id}, options=options, secrets=secrets)


HERE = Path(__file__).parent
