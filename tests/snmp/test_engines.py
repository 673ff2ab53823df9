"""Engines against a real net-snmp snmpd (v3 authPriv, wrong keys, timeouts) and snmpsim (walks of a recording)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from collectors.base import PollError, Target
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.engine import ENGINES, SnmpEngineError, make_engine
from inventory.secrets import SecretValue
from tests.snmp.conftest import V3, V3_AUTHNOPRIV, V3_SHA2_AES256
from testkit.testdata import shared_testdata


def v3_target(port, engine, auth_key=V3.auth_key, priv_key=V3.priv_key, **opts):
    return Target("v3dev", "snmp", "127.0.0.1", port, timeout_s=1.0, retries=0,
                  options={"engine": engine, "version": "3", "user": V3.name, "auth_protocol": "SHA",
                           "priv_protocol": "AES", **opts},
                  secrets={"auth_key": SecretValue(auth_key), "priv_key": SecretValue(priv_key)})


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_v3_authpriv_get_and_walk(snmpd, engine):
    async def go():
        e = make_engine(engine)
        try:
            t = v3_target(snmpd.port, engine)
            (oid, sysoid), (_, loc) = await e.get(t, ["1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.6.0"])
            rows = await e.walk(t, "1.3.6.1.2.1.1")
            return sysoid, loc, rows
        finally:
            await e.close()
    sysoid, loc, rows = run(go())
    assert sysoid.startswith("1.3.6.1.4.1.8072.3.2")   # net-snmp's own sysObjectID
    assert loc == b"test-lab"
    assert ("1.3.6.1.2.1.1.6.0", b"test-lab") in rows
    assert all(o.startswith("1.3.6.1.2.1.1.") for o, _ in rows)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_v3_wrong_auth_key_is_an_auth_error(snmpd, engine):
    async def go():
        c = SnmpCollector()
        try:
            await c.poll(v3_target(snmpd.port, engine, auth_key="not-the-key-999"))
        finally:
            await c.close()
    with pytest.raises(PollError) as ei:
        run(go())
    assert ei.value.kind == "auth"
    assert "authentication failed" in ei.value.message
    assert "not-the-key-999" not in ei.value.message


RECORDING = "apc_ap8959eu3"  # every SNMP type: INTEGER, OCTET STRING (text and hex), OID, IpAddress, Counter32/64, Gauge, TimeTicks


@pytest.mark.parametrize("engine", list(ENGINES))
def test_v2c_walk_matches_between_engines(snmpsim, engine):
    """Both engines walk a static recording to the same (oid, value) list, one row per recorded OID.

    A recording, not snmpd: a live agent's counters (ifInOctets) move between two walks.
    """
    async def go(name):
        e = make_engine(name)
        try:
            t = Target("d", "snmp", "127.0.0.1", snmpsim.port, secrets={"community": SecretValue(RECORDING)})
            return await e.walk(t, "1.3.6", 10)
        finally:
            await e.close()
    recorded = [line.split("|", 1)[0] for line in (shared_testdata() / "snmp" / f"{RECORDING}.snmprec").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    rows = run(go(engine))
    ref = run(go("pysnmp"))
    assert [oid for oid, _ in rows] == recorded
    assert rows == ref


async def _live_beside_dead(dead_call, live_call, error: type[Exception]):
    """(live result, whether the dead call was still pending then, the dead call's error).

    The dead call goes on the wire first; order, not a stopwatch, says whether the live
    one had to wait for it."""
    dead_task = asyncio.ensure_future(dead_call)
    await asyncio.sleep(0)
    live_res = await live_call()
    dead_pending = not dead_task.done()
    with pytest.raises(error) as ei:
        await dead_task
    return live_res, dead_pending, ei.value


@pytest.mark.parametrize("engine", list(ENGINES))
def test_silent_agent_times_out_without_stalling_others(snmpd, engine):
    """A port nobody answers on gives 'timeout' while a live agent polled at the same time answers."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))   # bound and silent: packets vanish, no ICMP
    try:
        async def go():
            e = make_engine(engine)
            try:
                slow = Target("dead", "snmp", "127.0.0.1", dead.getsockname()[1], timeout_s=4.0, retries=0,
                              secrets={"community": SecretValue("x")})
                live = Target("live", "snmp", "127.0.0.1", snmpd.port, secrets={"community": SecretValue("dcim-ro")})
                return await _live_beside_dead(e.get(slow, ["1.3.6.1.2.1.1.2.0"]),
                                               lambda: e.get(live, ["1.3.6.1.2.1.1.2.0"]), SnmpEngineError)
            finally:
                await e.close()
        live_res, dead_pending, err = run(go())
        assert live_res[0][1].startswith("1.3.6.1.4.1.8072")
        assert dead_pending
        assert err.kind == "timeout"
    finally:
        dead.close()


def test_unknown_engine_is_config_error():
    with pytest.raises(SnmpEngineError) as ei:
        make_engine("nope")
    assert ei.value.kind == "config"


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("user", [V3_SHA2_AES256, V3_AUTHNOPRIV], ids=["sha256-aes256", "sha512-authnopriv"])
def test_v3_sha2_levels(snmpd, engine, user):
    opts = {"engine": engine, "version": "3", "user": user.name, "auth_protocol": user.auth_protocol}
    secrets = {"auth_key": SecretValue(user.auth_key)}
    if user.priv_protocol:
        opts["priv_protocol"] = user.priv_protocol
        secrets["priv_key"] = SecretValue(user.priv_key)

    async def go():
        e = make_engine(engine)
        try:
            t = Target("v3", "snmp", "127.0.0.1", snmpd.port, timeout_s=1.0, retries=0, options=opts, secrets=secrets)
            return await e.get(t, ["1.3.6.1.2.1.1.6.0"])
        finally:
            await e.close()
    assert run(go()) == [("1.3.6.1.2.1.1.6.0", b"test-lab")]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_silent_agent_holds_a_poll_slot_only_where_devices_share_a_socket(snmpsim, engine):
    """SnmpCollector(max_in_flight=1): a dead device's poll in flight.  gufo (a socket per device)
    polls the live PDU meanwhile: a cap would make it wait inside its own deadline.  pysnmp (one
    shared socket) keeps the cap, so the live poll waits for the dead one."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    try:
        async def go():
            c = SnmpCollector(engine=engine, max_in_flight=1)
            try:
                slow = Target("dead", "snmp", "127.0.0.1", dead.getsockname()[1], profile="apc-rpdu2",
                              timeout_s=1.5, retries=0, secrets={"community": SecretValue("x")})
                live = Target("live", "snmp", "127.0.0.1", snmpsim.port, profile="apc-rpdu2", timeout_s=3.0,
                              retries=0, secrets={"community": SecretValue(RECORDING)})
                return await _live_beside_dead(c.poll(slow), lambda: c.poll(live), PollError)
            finally:
                await c.close()
        samples, dead_pending, err = run(go())
        assert samples and err.kind == "timeout"
        assert dead_pending is (not ENGINES[engine].shared_socket)
    finally:
        dead.close()
