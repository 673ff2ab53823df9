"""The trap receiver against net-snmp's snmptrap and snmpinform: v1, v2c, v3 authPriv, informs, refusals."""
from __future__ import annotations

import asyncio
import logging

from collectors.snmp.traps.listener import TrapListener, TrapSettings
from tests.traps.conftest import send, snmp_target
from testkit.wait import wait_until

UPS_ON_BATTERY = "1.3.6.1.2.1.33.2.1"
MINUTES_LEFT = "1.3.6.1.2.1.33.1.2.3.0"

TARGETS = [
    snmp_target("ups-v2", "127.0.0.1", community="trapc"),
    snmp_target("ups-v3", "127.0.0.2", community=None, user="ops", auth="SHA-256", auth_key="authpass-256",
                priv="AES", priv_key="privpass-aes"),
    snmp_target("ups-v3b", "127.0.0.3", community=None, user="noc", auth="SHA-512", auth_key="authpass-512",
                priv="AES-256", priv_key="privpass-aes256"),
    snmp_target("pdu-md5", "127.0.0.4", community=None, user="old", auth="MD5", auth_key="authpass-md5",
                priv="AES", priv_key="privpass-md5"),
    snmp_target("ats-an", "127.0.0.7", community=None, user="signer", auth="SHA-224", auth_key="authpass-224"),
]


async def _listen(got: list, **kw) -> TrapListener:
    listener = TrapListener(TARGETS, got.extend, settings=TrapSettings(host="127.0.0.1", port=0, **kw))
    return await listener.start()


def _domain(got, device):
    return [s for s in got if s.measurement == "ups" and s.tags["device"] == device]


def test_v1_v2c_traps_and_v2c_inform_become_samples(netsnmp_env):
    async def main():
        got: list = []
        lis = await _listen(got)
        dest = f"127.0.0.1:{lis.port}"
        try:
            # v1: APC upsOnBattery is enterprise apc (318), specific 5; agent-addr names the sender
            assert await send(netsnmp_env, "snmptrap", "-v1", "-c", "trapc", dest, "1.3.6.1.4.1.318", "127.0.0.1",
                              "6", "5", "", "1.3.6.1.4.1.318.2.3.3.0", "s", "UPS: On battery power") == 0
            assert await send(netsnmp_env, "snmptrap", "-v2c", "-c", "trapc", dest, "", UPS_ON_BATTERY,
                              MINUTES_LEFT, "i", "12") == 0
            # an inform is answered: snmpinform exits 0 only once it has our Response-PDU
            assert await send(netsnmp_env, "snmpinform", "-v2c", "-c", "trapc", "-t", "2", "-r", "1", dest, "",
                              UPS_ON_BATTERY) == 0
            assert await wait_until(lambda: len(_domain(got, "ups-v2")) == 3)
        finally:
            lis.close()
        v1, v2, inform = _domain(got, "ups-v2")
        assert v1.tags["stage"] == "output" and v1.fields["state"] == "battery"
        assert v1.fields["trap"] == "upsOnBattery" and v1.fields["message"] == "UPS: On battery power"
        assert v2.fields["trap"] == "upsTrapOnBattery" and v2.fields["runtime_s"] == 720.0
        assert inform.fields["trap"] == "upsTrapOnBattery"
        versions = [s.fields["version"] for s in got if s.measurement == "trap"]
        assert versions == ["1", "2c", "2c"]
        st = lis.receiver.stats
        assert st.accepted == 3 and st.informs_acked == 1

    asyncio.run(main())


def test_v3_authpriv_traps_and_informs_many_users(netsnmp_env):
    async def main():
        got: list = []
        lis = await _listen(got)
        dest = f"127.0.0.1:{lis.port}"
        try:
            v3 = ["-v3", "-l", "authPriv"]
            ops = v3 + ["-u", "ops", "-a", "SHA-256", "-A", "authpass-256", "-x", "AES", "-X", "privpass-aes"]
            noc = v3 + ["-u", "noc", "-a", "SHA-512", "-A", "authpass-512", "-x", "AES-256", "-X", "privpass-aes256"]
            old = v3 + ["-u", "old", "-a", "MD5", "-A", "authpass-md5", "-x", "AES", "-X", "privpass-md5"]
            # traps: keys localized to each sender's own engine ID (the sender is authoritative)
            assert await send(netsnmp_env, "snmptrap", *ops, "--clientaddr=127.0.0.2", dest, "", UPS_ON_BATTERY,
                              MINUTES_LEFT, "i", "9") == 0
            assert await send(netsnmp_env, "snmptrap", *noc, "--clientaddr=127.0.0.3", dest, "", UPS_ON_BATTERY) == 0
            assert await send(netsnmp_env, "snmptrap", *old, "--clientaddr=127.0.0.4", dest, "", UPS_ON_BATTERY) == 0
            # authNoPriv (SHA-224): signed, not encrypted
            assert await send(netsnmp_env, "snmptrap", "-v3", "-l", "authNoPriv", "-u", "signer", "-a", "SHA-224",
                              "-A", "authpass-224", "--clientaddr=127.0.0.7", dest, "", UPS_ON_BATTERY) == 0
            # informs: engine-ID discovery (Report), then the inform, acknowledged (exit 0)
            for args, src in ((ops, "127.0.0.2"), (noc, "127.0.0.3")):
                assert await send(netsnmp_env, "snmpinform", *args, f"--clientaddr={src}", "-t", "2", "-r", "1",
                                  dest, "", UPS_ON_BATTERY) == 0
            assert await wait_until(lambda: len([s for s in got if s.measurement == "ups"]) == 6)
        finally:
            lis.close()
        assert [s.fields["runtime_s"] for s in _domain(got, "ups-v3") if "runtime_s" in s.fields] == [540.0]
        assert len(_domain(got, "ups-v3")) == 2 and len(_domain(got, "ups-v3b")) == 2
        assert len(_domain(got, "pdu-md5")) == 1 and len(_domain(got, "ats-an")) == 1
        st = lis.receiver.stats
        assert st.informs_acked == 2
        assert st.refused["unknown_engine"] == 2  # one discovery per inform exchange
        assert sum(v for k, v in st.refused.items() if k != "unknown_engine") == 0

    asyncio.run(main())


def test_wrong_keys_and_communities_are_refused_counted_and_logged_once(netsnmp_env, caplog):
    async def main():
        got: list = []
        lis = await _listen(got)
        dest = f"127.0.0.1:{lis.port}"
        try:
            v3 = ["-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "--clientaddr=127.0.0.2"]
            bad_auth = v3 + ["-A", "not-the-key", "-x", "AES", "-X", "privpass-aes"]
            bad_priv = v3 + ["-A", "authpass-256", "-x", "AES", "-X", "not-the-key"]
            assert await send(netsnmp_env, "snmptrap", *bad_auth, dest, "", UPS_ON_BATTERY) == 0
            assert await send(netsnmp_env, "snmptrap", *bad_priv, dest, "", UPS_ON_BATTERY) == 0
            # an inform with a wrong key is never acknowledged: snmpinform gives up (non-zero)
            assert await send(netsnmp_env, "snmpinform", *bad_auth, "-t", "0.3", "-r", "0", dest, "",
                              UPS_ON_BATTERY) != 0
            assert await send(netsnmp_env, "snmptrap", "-v3", "-l", "authPriv", "-u", "mallory", "-a", "SHA-256",
                              "-A", "whatever-1", "-x", "AES", "-X", "whatever-2", "--clientaddr=127.0.0.2", dest, "",
                              UPS_ON_BATTERY) == 0
            for _ in range(3):
                assert await send(netsnmp_env, "snmptrap", "-v2c", "-c", "guess", dest, "", UPS_ON_BATTERY) == 0
            # a sender the inventory does not know
            assert await send(netsnmp_env, "snmptrap", "-v2c", "-c", "trapc", "--clientaddr=127.0.0.99", dest, "",
                              UPS_ON_BATTERY) == 0
            st = lis.receiver.stats
            assert await wait_until(lambda: sum(st.refused.values()) - st.refused["unknown_engine"] >= 8)
        finally:
            lis.close()
        assert st.refused["wrong_digest"] == 2 and st.refused["decrypt"] == 1
        assert st.refused["unknown_user"] == 1 and st.refused["bad_community"] == 3
        assert st.refused["unknown_sender"] == 1
        assert st.accepted == 0 and not got
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        # once per sender: 127.0.0.2 (v3 failures), 127.0.0.1 (communities), 127.0.0.99 (unknown)
        assert sorted(r.getMessage().split()[2] for r in refusals) == ["127.0.0.1", "127.0.0.2", "127.0.0.99"]
        assert not any("not-the-key" in r.getMessage() or "trapc" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger="dcim.traps")
    asyncio.run(main())


def test_extra_trap_community_is_accepted_and_never_printed(netsnmp_env):
    from inventory.secrets import SecretValue

    async def main():
        got: list = []
        settings = TrapSettings(host="127.0.0.1", port=0, communities=[SecretValue("site-traps")])
        assert "site-traps" not in repr(settings)
        lis = await TrapListener(TARGETS, got.extend, settings=settings).start()
        try:
            assert await send(netsnmp_env, "snmptrap", "-v2c", "-c", "site-traps", f"127.0.0.1:{lis.port}", "",
                              UPS_ON_BATTERY) == 0
            assert await wait_until(lambda: len(_domain(got, "ups-v2")) == 1)
        finally:
            lis.close()

    asyncio.run(main())
