"""The sans-I/O parts on their own: USM key vectors, the decoder on datagrams net-snmp really sent,
trap definitions (file:line errors, v1 translation), storm limits; garbage fuzzed with hypothesis."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.snmp.ber import INFORM, TRAP_V1, TRAP_V2, BerError
from collectors.snmp.traps.definitions import TrapCatalog, default_catalog, load_trap_files
from collectors.snmp.traps.limiter import TrapLimiter
from collectors.snmp.traps.message import decode_community, decode_pdu
from collectors.snmp.traps.receiver import DeviceIndex, TrapReceiver
from collectors.snmp.traps.usm import UsmUser, localize, password_to_key
from inventory.errors import InventoryError
from tests.traps.conftest import capture, snmp_target


def test_rfc3414_key_localization_vectors():
    # RFC 3414 A.3.1 / A.3.2: passphrase "maplesyrup", engine ID 00..02
    engine = bytes.fromhex("000000000000000000000002")
    ku = password_to_key(b"maplesyrup", "md5")
    assert ku.hex() == "9faf3283884e92834ebc9847d8edd963"
    assert localize(ku, engine, "md5").hex() == "526f5eed9fcce26f8964c2930787d82b"
    ku = password_to_key(b"maplesyrup", "sha1")
    assert ku.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    assert localize(ku, engine, "sha1").hex() == "6695febc9288e36282235fc7151f128497b38f3f"


@pytest.fixture(scope="module")
def wire(tmp_path_factory):
    """Datagrams from snmptrap/snmpinform (v1, v2c, v2c inform, v3 authPriv trap)."""
    import os

    d = tmp_path_factory.mktemp("netsnmp")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNMP")}
    env.update({"SNMP_PERSISTENT_DIR": str(d), "SNMPCONFPATH": str(d), "MIBS": "", "MIBDIRS": str(d)})
    return {
        "v1": capture(env, "snmptrap", "-v1", "-c", "trapc",
                       "1.3.6.1.2.1.33.2|10.1.2.3|6|1||1.3.6.1.2.1.33.1.2.3.0|i|7"),
        "v2c": capture(env, "snmptrap", "-v2c", "-c", "trapc", "|1.3.6.1.4.1.318.0.9|1.3.6.1.4.1.318.2.3.3.0|s|back"),
        "inform": capture(env, "snmpinform", "-v2c", "-c", "trapc", "-r", "0", "|1.3.6.1.2.1.33.2.1"),
        "v3": capture(env, "snmptrap", "-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "authpass-256",
                       "-x", "AES", "-X", "privpass-aes", "-e", "8000000001020304", "|1.3.6.1.2.1.33.2.1"),
    }


def test_decoder_reads_what_net_snmp_sends(wire):
    v, community, s, e = decode_community(wire["v1"])
    n = decode_pdu(wire["v1"], s, e, "1")
    assert (v, community, n.pdu_type, n.agent_addr) == (0, b"trapc", TRAP_V1, "10.1.2.3")
    assert n.trap_oid == (1, 3, 6, 1, 2, 1, 33, 2, 0, 1)  # RFC 3584 v1 -> v2 translation
    assert n.varbinds == [((1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0), 2, 7)]
    _, _, s, e = decode_community(wire["v2c"])
    n = decode_pdu(wire["v2c"], s, e, "2c")
    assert n.pdu_type == TRAP_V2 and n.trap_oid == (1, 3, 6, 1, 4, 1, 318, 0, 9) and n.uptime is not None
    assert n.varbinds[0][2] == b"back"
    _, _, s, e = decode_community(wire["inform"])
    assert decode_pdu(wire["inform"], s, e, "2c").pdu_type == INFORM


def test_v1_trap_relayed_by_a_proxy_is_mapped_by_its_agent_addr(wire):
    index = DeviceIndex([snmp_target("ups-far", "10.1.2.3")])
    r = TrapReceiver(index, started_s=0.0).handle(wire["v1"], ("127.0.0.9", 162), 1.0)
    assert not r.refused and r.target.device_id == "ups-far"
    r = TrapReceiver(DeviceIndex([snmp_target("other", "10.9.9.9")]), started_s=0.0).handle(
        wire["v1"], ("127.0.0.9", 162), 1.0)
    assert r.refused == "unknown_sender" and "agent-addr 10.1.2.3" in r.detail


def test_v1_translated_ups_mib_trap_finds_its_definition(wire):
    cat = default_catalog()
    _, _, s, e = decode_community(wire["v1"])
    samples, d = cat.samples(decode_pdu(wire["v1"], s, e, "1"), {"device": "u"}, 1)
    assert d is not None and d.name == "upsTrapOnBattery"
    assert samples[1].fields == {"state": "battery", "state_raw": "upsTrapOnBattery", "runtime_s": 420.0,
                                 "trap": "upsTrapOnBattery"}


def test_v3_trap_authenticated_with_keys_of_the_senders_engine(wire):
    good = UsmUser.from_passphrases("ops", "SHA-256", "authpass-256", "AES", "privpass-aes")
    wrong = UsmUser.from_passphrases("ops", "SHA-256", "authpass-256", "AES", "not-the-key")
    addr = ("127.0.0.1", 5000)
    index = DeviceIndex([snmp_target("u", "127.0.0.1", community=None)])
    r = TrapReceiver(index, [good], started_s=time.time()).handle(wire["v3"], addr, time.time())
    assert not r.refused and r.notification.user == "ops" and r.notification.trap_oid[-1] == 1
    assert good.keys(bytes.fromhex("8000000001020304"))  # localized to the sender's engine ID, cached
    r = TrapReceiver(index, [wrong], started_s=time.time()).handle(wire["v3"], addr, time.time())
    assert r.refused == "decrypt" and r.notification is None


def test_trap_engine_ids_pin_which_engines_may_send_a_users_traps(wire):
    addr = ("127.0.0.1", 5000)
    index = DeviceIndex([snmp_target("u", "127.0.0.1", community=None)])
    for pinned, refused in ((b"\x80\x00\x00\x00\x01\x02\x03\x04", ""), (b"\x80\x00\x00\x00\x09\x09", "wrong_engine")):
        user = UsmUser.from_passphrases("ops", "SHA-256", "authpass-256", "AES", "privpass-aes",
                                        engine_ids=frozenset({pinned}))
        r = TrapReceiver(index, [user], started_s=0.0).handle(wire["v3"], addr, 1.0)
        assert r.refused == refused


def test_inventory_trap_engine_ids_reach_the_receiver(tmp_path):
    from collectors.snmp.traps.listener import usm_users
    from collectors.targets import build_targets
    from inventory.loader import load_site_text

    site = load_site_text("site: {id: t, name: T}\ncredentials:\n  v3: {version: 3, user: ops, auth_protocol: SHA256,"
                          " auth_key: {env: A}, priv_protocol: AES128, priv_key: {env: P},"
                          " trap_engine_ids: ['0x8000000001020304']}\ndevices:\n  - {id: u, kind: ups, protocol: snmp,"
                          " host: 127.0.0.1, credentials: v3}\n")
    targets, problems = build_targets(site, environ={"A": "authpass-256", "P": "privpass-aes"})
    (user,), errors = usm_users(targets)
    assert not problems and not errors and user.engine_ids == {bytes.fromhex("8000000001020304")}
    with pytest.raises(InventoryError) as exc:
        load_site_text("site: {id: t, name: T}\ncredentials:\n  v3: {version: 3, user: ops, trap_engine_ids: [zz]}\n")
    assert "trap_engine_ids" in str(exc.value) and "not hex" in str(exc.value)


def test_device_index_finds_ipv4_senders_on_a_dual_stack_socket_and_refuses_shared_addresses():
    index = DeviceIndex([snmp_target("a", "10.0.0.5"), snmp_target("b", "10.0.0.6"), snmp_target("c", "10.0.0.6")])
    assert index.lookup("::ffff:10.0.0.5")[0].device_id == "a"
    assert index.lookup("10.0.0.6") == (None, "ambiguous_sender")
    assert index.lookup("10.0.0.7") == (None, "unknown_sender")


def test_unknown_trap_is_kept_with_its_varbinds():
    cat = TrapCatalog([])
    from collectors.snmp.traps.message import Notification

    n = Notification("2c", TRAP_V2, (1, 3, 6, 1, 4, 1, 99, 0, 3), 5,
                     [((1, 3, 6, 1, 4, 1, 99, 1, 0), 4, b"leak zone 4"), ((1, 3, 6, 1, 4, 1, 99, 2, 0), 2, -3),
                      ((1, 3, 6, 1, 4, 1, 99, 3, 0), 4, b"\xff\x00")])
    (s,), d = cat.samples(n, {"device": "x"}, 7)
    assert d is None and s.measurement == "trap" and s.tags == {"device": "x", "trap": "1.3.6.1.4.1.99.0.3"}
    assert s.fields["1.3.6.1.4.1.99.1.0"] == "leak zone 4" and s.fields["1.3.6.1.4.1.99.2.0"] == -3.0
    assert s.fields["1.3.6.1.4.1.99.3.0"] == "ff00" and s.fields["known"] is False


def test_bad_definition_file_names_file_line_and_field(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\nmib: X-MIB\ntraps:\n  - name: t\n    oid: 1.3.6.x\n")
    with pytest.raises(InventoryError) as exc:
        load_trap_files(tmp_path)
    assert "x.yaml:5: traps[0].oid" in str(exc.value)
    (tmp_path / "x.yaml").write_text("name: x\nmib: X-MIB\ntraps:\n  - name: t\n    oid: 1.3.6.1\n"
                                     "    varbinds: [{oid: 1.3.6.1.2, tag: a, lookup: nope}]\n")
    with pytest.raises(InventoryError) as exc:
        load_trap_files(tmp_path)
    assert "lookup 'nope'" in str(exc.value)
    (tmp_path / "x.yaml").write_text("name: x\nmib: X-MIB\ntraps:\n  - name: t\n    oid: 1.3.6.1\n"
                                     "    measurement: ups\n    fields: {state: onBattery}\n    vocabulary: ups_output\n")
    with pytest.raises(InventoryError) as exc:
        load_trap_files(tmp_path)
    assert "x.yaml:4: traps[0]" in str(exc.value) and "'onBattery' is not in vocabulary ups_output" in str(exc.value)


def test_shipped_definitions_load_and_name_unique_oids():
    cat = default_catalog()
    assert len(cat.by_oid) == sum(len(f.traps) for f in cat.files) >= 10


def test_storm_limiter_counts_every_refusal_and_keeps_senders_apart():
    lim = TrapLimiter(rate_per_s=2, burst=5, max_senders=3)
    allowed = sum(lim.allow("ats", 100.0) for _ in range(1000))
    assert allowed == 5 and lim.limited == 995
    assert lim.allow("ups", 100.0)  # another sender still has its whole budget
    assert lim.allow("ats", 100.5)  # one token back after 0.5 s at 2/s
    assert lim.take_suppressed("ats") == 995 and lim.take_suppressed("ats") == 0
    for k in ("a", "b", "c", "d"):
        lim.allow(k, 101.0)
    assert len(lim) == 3  # bounded


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_garbage_never_raises_and_is_counted(data):
    rx = TrapReceiver(DeviceIndex([snmp_target("u", "127.0.0.1")]),
                      [UsmUser.from_passphrases("ops", "SHA", "authpass-1", "AES", "privpass-1")], started_s=0.0)
    r = rx.handle(data, ("127.0.0.1", 1), 10.0)
    assert r.refused or r.notification is not None
    assert rx.stats.received == 1 and rx.stats.accepted + sum(rx.stats.refused.values()) == 1


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["v1", "v2c", "inform", "v3"]), st.integers(0, 10_000), st.integers(0, 255),
       st.integers(0, 64))
def test_mutated_real_datagrams_never_raise(wire, which, pos, byte, cut):
    data = bytearray(wire[which])
    data[pos % len(data)] = byte
    data = bytes(data[:len(data) - cut % len(data)])
    rx = TrapReceiver(DeviceIndex([snmp_target("u", "127.0.0.1")]),
                      [UsmUser.from_passphrases("ops", "SHA-256", "authpass-256", "AES", "privpass-aes")],
                      started_s=0.0)
    r = rx.handle(data, ("127.0.0.1", 1), 10.0)
    assert r.refused or r.notification is not None
    if r.notification is not None and r.target is not None:  # what got through maps to samples, or says why not
        samples, _ = default_catalog().samples(r.notification, r.target.tags, 1)
        assert samples[0].measurement == "trap"


def test_ber_errors_are_value_errors():
    assert issubclass(BerError, ValueError)
