"""A small SNMP v1/v2c agent: GET, GETNEXT and GETBULK over asyncio UDP.

BER from the project's one codec (``collectors/snmp/ber.py``, shared with the
trap receiver), hand-written on purpose: the twin must cost far less CPU than the
collectors polling it, and a full SNMP stack (pysnmp/pyasn1, or snmpsim on
top of it) costs tens of times more per varbind.  The OID table is
pre-encoded: each refresh turns values into BER once, so a request is a
bisect and a byte join.  Wrong communities get no answer, as real agents do.
"""
from __future__ import annotations

import asyncio
import bisect
import random
from typing import Callable

from collectors.snmp.ber import (END_OF_MIB, GET, GETBULK, GETNEXT, INTEGER, NO_SUCH_INSTANCE, OCTETS, OID,
                                 RESPONSE, decode_oid, encode_value, int_body, oid_body, read_tlv, tlv)

__all__ = ["OidTable", "SnmpAgent", "decode_message"]

def decode_message(data: bytes) -> tuple[int, bytes, int, int, int, int, list[tuple[int, ...]]]:
    """(version, community, pdu type, request id, field2, field3, OIDs) of a request."""
    tag, s, e = read_tlv(data, 0)
    if tag != 0x30:
        raise ValueError("not a SEQUENCE")
    t, a, b = read_tlv(data, s)
    version = int.from_bytes(data[a:b], "big", signed=True)
    t, a, b = read_tlv(data, b)
    community = data[a:b]
    pdu_tag, ps, pe = read_tlv(data, b)
    vals = []
    pos = ps
    for _ in range(3):
        t, a, b = read_tlv(data, pos)
        vals.append(int.from_bytes(data[a:b], "big", signed=True))
        pos = b
    t, vs, ve = read_tlv(data, pos)
    oids = []
    pos = vs
    while pos < ve:
        t, a, b = read_tlv(data, pos)
        t2, oa, ob = read_tlv(data, a)
        oids.append(decode_oid(data[oa:ob]))
        pos = b
    return version, community, pdu_tag, vals[0], vals[1], vals[2], oids


_ENCODED: dict[tuple[int, object], bytes] = {}


def _encode_cached(tag: int, value) -> bytes:
    """``encode_value`` memoised for small ints and short strings (indices, states, constants repeat)."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        key = (tag, value)
        enc = _ENCODED.get(key)
        if enc is None:
            enc = encode_value(tag, value)
            if len(_ENCODED) < 200_000:
                _ENCODED[key] = enc
        return enc
    return encode_value(tag, value)


class OidTable:
    """A sorted, pre-encoded OID -> value table, swapped atomically on refresh.

    Each entry is held as a complete BER varbind (``SEQUENCE {oid, value}``) so
    a GETBULK reply is one ``bytes.join``.  ``previous`` lets a refresh reuse
    the sorted OIDs and their encodings when the set of OIDs is unchanged (the
    usual case: only values move), so a rebuild only encodes values.
    """

    def __init__(self, values: dict[tuple[int, ...], tuple[int, object]], previous: "OidTable | None" = None) -> None:
        if previous is not None and len(previous.oids) == len(values) and previous.index.keys() == values.keys():
            self.oids, self.enc_oids, self.index = previous.oids, previous.enc_oids, previous.index
        else:
            self.oids = sorted(values)
            self.enc_oids = [tlv(OID, oid_body(o)) for o in self.oids]
            self.index = {o: i for i, o in enumerate(self.oids)}
        self.varbinds = [tlv(0x30, eo + _encode_cached(*values[o])) for o, eo in zip(self.oids, self.enc_oids)]

    def get(self, oid) -> bytes:
        i = self.index.get(oid)
        if i is None:
            return tlv(0x30, tlv(OID, oid_body(oid)) + bytes([NO_SUCH_INSTANCE, 0]))
        return self.varbinds[i]

    def next_index(self, oid) -> int:
        return bisect.bisect_right(self.oids, oid)

    def at(self, i: int, asked) -> bytes:
        if i >= len(self.oids):
            return tlv(0x30, tlv(OID, oid_body(asked)) + bytes([END_OF_MIB, 0]))
        return self.varbinds[i]


class SnmpAgent(asyncio.DatagramProtocol):
    """One device's agent.  ``behaviour()`` says 'ok', 'no_answer', 'slow' or 'garbage'."""

    def __init__(self, community: bytes, table: Callable[[], OidTable], behaviour: Callable[[], str] = lambda: "ok",
                 slow_s: float = 3.0) -> None:
        self.community = community
        self.table = table
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.requests += 1
        mode = self.behaviour()
        if mode == "no_answer":
            return
        if mode == "garbage":
            self.transport.sendto(bytes(random.getrandbits(8) for _ in range(48)), addr)
            return
        try:
            reply = self.respond(data)
        except (ValueError, IndexError):
            return  # malformed request: real agents drop it
        if reply is None:
            return
        if mode == "slow":
            asyncio.get_running_loop().call_later(self.slow_s, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    def respond(self, data: bytes) -> bytes | None:
        version, community, pdu, rid, f2, f3, oids = decode_message(data)
        if community != self.community or version not in (0, 1):
            return None
        table = self.table()
        binds: list[bytes] = []
        if pdu == GET:
            binds = [table.get(o) for o in oids]
        elif pdu == GETNEXT:
            binds = [table.at(table.next_index(o), o) for o in oids]
        elif pdu == GETBULK and version == 1:
            non_rep, max_rep = max(0, f2), max(0, min(f3, 200))
            for o in oids[:non_rep]:
                binds.append(table.at(table.next_index(o), o))
            reps = oids[non_rep:]
            cursors = [table.next_index(o) for o in reps]
            n = len(table.oids)
            if len(reps) == 1 and cursors[0] + max_rep <= n:
                # the common walk: one column, rows all present -> one slice
                binds.extend(table.varbinds[cursors[0]:cursors[0] + max_rep])
                max_rep = 0
            for _ in range(max_rep):
                for k, o in enumerate(reps):
                    binds.append(table.at(cursors[k], o))
                    cursors[k] += 1
                if all(c > len(table.oids) for c in cursors):
                    break
        else:
            return None
        varbinds = b"".join(binds)
        body = tlv(INTEGER, int_body(rid)) + tlv(INTEGER, b"\x00") + tlv(INTEGER, b"\x00") + tlv(0x30, varbinds)
        return tlv(0x30, tlv(INTEGER, int_body(version)) + tlv(OCTETS, community) + tlv(RESPONSE, body))
