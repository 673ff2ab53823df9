"""The twin's SNMP agent: the fast request path answers byte for byte as the generic decoder does.

Requests are built with the project's BER codec in every shape a poller (or a scanner) sends:
GET of rows and of missing OIDs (noSuchInstance), GETNEXT between and past rows, GETBULK walks
of one column that stop inside the table or run off its end (endOfMibView), max-repetitions 0,
negative, over the 200 cap, non-repeaters, several columns, v1 GETBULK, foreign communities,
request ids at every width and non-minimal encodings, long-form lengths, truncations.  Each
reply is compared with :meth:`SnmpAgent.respond_generic` (the whole-message decoder) and, for
what it means, decoded again and checked against the table's sorted OIDs and values; the
common shapes must really have taken the fast path, or the comparison would prove nothing.
Then the same over UDP: a reply per request, a wrong community dropped.
"""
from __future__ import annotations

import asyncio
import random

import pytest

from collectors.snmp.ber import (END_OF_MIB, GET, GETBULK, GETNEXT, INTEGER, NO_SUCH_INSTANCE, NULL, OCTETS, OID,
                                 RESPONSE, children, decode_oid, decode_value, int_body, oid_body, read_tlv, tlv)
from simulator.mibs import pdu_oids, ups_oids
from simulator.model import SiteModel
from simulator.snmp_agent import _GENERIC, OidTable, SnmpAgent

COMMUNITY = b"public"


def _request(pdu: int, oids: list[tuple[int, ...]], rid: int = 4242, f2: int = 0, f3: int = 0, version: int = 1,
             community: bytes = COMMUNITY, rid_body: bytes | None = None, oid_bodies: list[bytes] | None = None) -> bytes:
    bodies = oid_bodies if oid_bodies is not None else [oid_body(o) for o in oids]
    varbinds = b"".join(tlv(0x30, tlv(OID, b) + bytes([NULL, 0])) for b in bodies)
    body = (tlv(INTEGER, rid_body if rid_body is not None else int_body(rid)) + tlv(INTEGER, int_body(f2))
            + tlv(INTEGER, int_body(f3)) + tlv(0x30, varbinds))
    return tlv(0x30, tlv(INTEGER, int_body(version)) + tlv(OCTETS, community) + tlv(pdu, body))


def _decode_reply(reply: bytes) -> tuple[int, list[tuple[tuple[int, ...], int, object]]]:
    """(request id, [(oid, tag, value)]) of a Response, by the codec's generic readers."""
    _, s, e = read_tlv(reply, 0)
    version, community, pdu = children(reply, s, e)
    assert reply[community[1]:community[2]] == COMMUNITY and pdu[0] == RESPONSE
    rid, err, idx, vbl = children(reply, pdu[1], pdu[2])
    assert reply[err[1]:err[2]] == b"\x00" and reply[idx[1]:idx[2]] == b"\x00"
    out = []
    for _, a, b in children(reply, vbl[1], vbl[2]):
        (_, oa, ob), (tag, va, vb) = children(reply, a, b)
        out.append((decode_oid(reply[oa:ob]), tag, decode_value(tag, reply[va:vb])))
    return int.from_bytes(reply[rid[1]:rid[2]], "big", signed=True), out


@pytest.fixture(scope="module")
def tables(twin_site):
    model = SiteModel(twin_site, seed=5)
    model.step(1_780_000_000.0)
    pdu = next(d for d in twin_site.polled_devices() if d.kind == "pdu")
    ups = next(d for d in twin_site.polled_devices() if d.kind == "ups")
    return {"pdu": OidTable(pdu_oids(pdu.id, model.state[pdu.id], 32.0, 1234.5)),
            "ups": OidTable(ups_oids(ups.id, model.state[ups.id], 99.0))}


def _cases(table: OidTable, rng: random.Random) -> list[tuple[str, bytes]]:
    oids = table.oids
    columns = sorted({o[:-1] for o in oids})
    last = oids[-1]
    cases = [
        ("get one row", _request(GET, [oids[3]])),
        ("get sysObjectID and uptime", _request(GET, [(1, 3, 6, 1, 2, 1, 1, 2, 0), (1, 3, 6, 1, 2, 1, 1, 3, 0)])),
        ("get a missing OID", _request(GET, [(1, 3, 6, 1, 4, 1, 99999, 1, 0)])),
        ("get rows and missing mixed", _request(GET, [oids[0], (1, 3, 6, 1, 9), oids[-1], oids[0] + (7,)])),
        ("get many rows", _request(GET, rng.sample(oids, 40))),  # long-form lengths
        ("getnext between rows", _request(GETNEXT, [columns[2], oids[10], oids[10][:-1] + (oids[10][-1] + 1000,)])),
        ("getnext past the end", _request(GETNEXT, [last])),
        ("getnext from the root", _request(GETNEXT, [(1, 3)])),
        ("bulk walk of a column", _request(GETBULK, [columns[len(columns) // 2]], f3=25)),
        ("bulk from a row", _request(GETBULK, [oids[5]], f3=10)),
        ("bulk running off the end", _request(GETBULK, [oids[-3]], f3=25)),
        ("bulk from past the end", _request(GETBULK, [last + (1,)], f3=5)),
        ("bulk max-repetitions 0", _request(GETBULK, [oids[0]], f3=0)),
        ("bulk max-repetitions 1", _request(GETBULK, [oids[0]], f3=1)),
        ("bulk over the 200 cap", _request(GETBULK, [(1, 3)], f3=255)),
        ("bulk negative max-repetitions", _request(GETBULK, [(1, 3)], f3=-3)),
        ("bulk with a non-repeater", _request(GETBULK, [(1, 3, 6, 1, 2, 1, 1, 3), columns[-1]], f2=1, f3=4)),
        ("bulk of two columns", _request(GETBULK, [columns[0], columns[-2]], f3=6)),
        ("bulk with negative non-repeaters", _request(GETBULK, [columns[0]], f2=-1, f3=3)),
        ("v1 get", _request(GET, [oids[1]], version=0)),
        ("v1 getnext", _request(GETNEXT, [oids[1]], version=0)),
        ("v1 getbulk is not answered", _request(GETBULK, [oids[1]], f3=5, version=0)),
        ("wrong community", _request(GETBULK, [columns[0]], f3=25, community=b"private")),
        ("v3 version number", _request(GET, [oids[1]], version=3)),
        ("set is not answered", _request(0xA3, [oids[1]])),
        ("non-minimal request id", _request(GET, [oids[1]], rid_body=b"\x00\x00\x05")),
        ("empty request id", _request(GET, [oids[1]], rid_body=b"")),
        ("non-canonical OID encoding", _request(GET, [], oid_bodies=[oid_body(oids[2])[:-1] + b"\x80" + oid_body(oids[2])[-1:]])),
        ("non-canonical OID getnext", _request(GETNEXT, [], oid_bodies=[b"\x2b\x80\x06\x01"])),
        ("non-canonical missing OID", _request(GET, [], oid_bodies=[b"\x2b\x80\x06\x09\x09"])),
        ("non-canonical bulk past the end", _request(GETBULK, [], f3=3, oid_bodies=[b"\x2b\x80\x07"])),
    ]
    for rid in (0, 1, 127, 128, 255, 256, -1, -128, -129, 2**31 - 1, -2**31, rng.randrange(-2**31, 2**31)):
        cases.append((f"request id {rid}", _request(GETBULK, [columns[1]], rid=rid, f3=25)))
    for k in range(60):  # random walks and gets over the table
        o = rng.choice(oids)
        cut = o[:rng.randrange(6, len(o) + 1)]
        cases.append((f"random {k}", _request(rng.choice([GET, GETNEXT, GETBULK]), [cut], rid=rng.randrange(2**31),
                                              f3=rng.choice([1, 10, 25, 50]))))
    return cases


COMMON = {"get one row", "get sysObjectID and uptime", "get a missing OID", "get rows and missing mixed", "get many rows",
          "getnext between rows", "getnext past the end", "bulk walk of a column", "bulk from a row",
          "bulk running off the end", "bulk from past the end", "bulk max-repetitions 0", "bulk negative max-repetitions",
          "v1 get", "v1 getnext"}


@pytest.mark.parametrize("kind", ["pdu", "ups"])
def test_fast_path_replies_equal_the_generic_decoders_byte_for_byte(tables, kind):
    table = tables[kind]
    agent = SnmpAgent(COMMUNITY, lambda: table)
    fast_taken = set()
    cases = _cases(table, random.Random(kind))
    for name, req in cases + cases:  # twice: the second time from what the table remembered (misses, ends)
        assert agent.respond(req) == agent.respond_generic(req), name
        if agent._respond_fast(req) is not _GENERIC:
            fast_taken.add(name)
    assert COMMON <= fast_taken, COMMON - fast_taken
    assert any(n.startswith("request id") for n in fast_taken)


def test_replies_mean_what_snmp_says(tables):
    """Decoded again: GETBULK returns the next rows in OID order, then endOfMibView; GET a row's value
    or noSuchInstance; the request id echoed; a wrong community or a v1 GETBULK gets nothing."""
    table = tables["pdu"]
    agent = SnmpAgent(COMMUNITY, lambda: table)
    oids, values = table.oids, dict(zip(table.oids, table.values))
    column = oids[40][:-1]
    rid, binds = _decode_reply(agent.respond(_request(GETBULK, [column], rid=-77, f3=25)))
    following = [o for o in oids if o > column][:25]
    assert rid == -77 and [b[0] for b in binds] == following
    for o, tag, value in binds:
        want_tag, want = values[o]
        assert tag == want_tag and value == (want.encode() if isinstance(want, str) else want)
    _, binds = _decode_reply(agent.respond(_request(GETBULK, [oids[-2]], f3=25)))
    assert [(o, t) for o, t, _ in binds] == [(oids[-1], values[oids[-1]][0]), (oids[-2], END_OF_MIB)]
    _, binds = _decode_reply(agent.respond(_request(GET, [oids[7], (1, 3, 6, 1, 4, 1, 318, 9, 9)])))
    assert binds[0][:2] == (oids[7], values[oids[7]][0])
    assert binds[1] == ((1, 3, 6, 1, 4, 1, 318, 9, 9), NO_SUCH_INSTANCE, None)
    assert agent.respond(_request(GETBULK, [column], f3=25, community=b"Public")) is None
    assert agent.respond(_request(GETBULK, [column], f3=25, version=0)) is None


def test_truncated_and_garbled_datagrams_fail_as_the_generic_decoder_does(tables):
    table = tables["pdu"]
    agent = SnmpAgent(COMMUNITY, lambda: table)
    req = _request(GETBULK, [table.oids[0][:-1]], f3=25)
    for cut in range(len(req)):
        for data in (req[:cut], req[:cut] + b"\xff" * 3):
            outcomes = []
            for respond in (agent.respond, agent.respond_generic):
                try:
                    outcomes.append(("reply", respond(data)))
                except (ValueError, IndexError):
                    outcomes.append(("dropped", None))  # datagram_received drops exactly these
            assert outcomes[0] == outcomes[1], (cut, data)


def test_a_rebuilt_table_equals_one_built_from_scratch(twin_site):
    """Steps of the model: the table reusing the previous one's OIDs and unchanged varbinds is the
    table built afresh, including a value whose type changes (a name that becomes a number)."""
    model = SiteModel(twin_site, seed=9)
    pdu = next(d for d in twin_site.polled_devices() if d.kind == "pdu")
    t = 1_780_000_000.0
    previous = None
    changed = 0
    for k in range(6):
        model.step(t + 60 * k)
        values = pdu_oids(pdu.id, model.state[pdu.id], 32.0, 100.0 + k)
        if k == 4:
            some = next(o for o, (tag, _) in values.items() if tag == OCTETS)
            values[some] = (OCTETS, 5)
        if k == 5:
            values[some] = (OCTETS, 5.0)  # equal to 5, but another text
        table = OidTable(values, previous)
        fresh = OidTable(values)
        assert table.oids == fresh.oids and table.varbinds == fresh.varbinds, k
        if previous is not None:
            assert table.by_body is previous.by_body  # the OID set was reused, not rebuilt
            changed += sum(a != b for a, b in zip(table.varbinds, previous.varbinds))
        previous = table
    assert changed  # values did move between steps


def test_over_udp_each_request_gets_its_reply_and_a_wrong_community_none(tables):
    table = tables["pdu"]
    column = table.oids[30][:-1]

    async def go():
        loop = asyncio.get_running_loop()
        agent = SnmpAgent(COMMUNITY, lambda: table)
        transport, _ = await loop.create_datagram_endpoint(lambda: agent, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        got: asyncio.Queue = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.put_nowait(data)
        client, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
        try:
            foreign = _request(GETBULK, [column], rid=1, f3=25, community=b"private")
            ours = [_request(GETBULK, [column], rid=2, f3=25), _request(GET, [table.oids[0]], rid=3)]
            for data in (foreign, *ours):  # one socket, in order: the foreign one is read first
                client.sendto(data)
            replies = [await asyncio.wait_for(got.get(), 5) for _ in ours]
            assert replies == [agent.respond_generic(d) for d in ours]
            assert [_decode_reply(r)[0] for r in replies] == [2, 3]
            assert agent.requests == 3 and got.empty()  # the foreign request was read, and not answered
        finally:
            client.close()
            transport.close()
    asyncio.run(asyncio.wait_for(go(), 30))
