"""A small SNMP v1/v2c agent: GET, GETNEXT and GETBULK over asyncio UDP.

BER from the project's one codec (``collectors/snmp/ber.py``, shared with the
trap receiver), hand-written on purpose: the twin must cost far less CPU than the
collectors polling it, and a full SNMP stack (pysnmp/pyasn1, or snmpsim on
top of it) costs tens of times more per varbind.  The OID table is
pre-encoded: each refresh turns the values that moved into BER once, so a
request is a lookup and a byte join.  The usual requests (a poller's GETBULK
of one column, GETs) are read in place, without decoding the message into
values (:meth:`SnmpAgent.respond`); anything else takes the whole-message
decoder, which answers those with the same bytes.  Wrong communities get no
answer, as real agents do.
"""
from __future__ import annotations

import asyncio
import bisect
import random
from typing import Callable

from collectors.snmp.ber import (END_OF_MIB, GET, GETBULK, GETNEXT, INTEGER, NO_SUCH_INSTANCE, OCTETS, OID,
                                 RESPONSE, decode_oid, encode_value, int_body, length_octets, oid_body,
                                 read_tlv, tlv)

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
_AFTER_LIMIT = 4096


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


_GENERIC = object()  # the fast path's answer for a request it leaves to the generic decoder
_LENGTHS = tuple(map(length_octets, range(4096)))  # BER length octets


def _length(n: int) -> bytes:
    """BER length octets of ``n`` (a table lookup below 4096: the sizes replies have)."""
    return _LENGTHS[n] if n < 4096 else length_octets(n)


def _span(data: bytes, i: int) -> tuple[int, int]:
    """(body start, body end) of the TLV at ``i`` with a one-, two- or three-byte length; IndexError
    past the data, and a length form the fast path does not read raises it too (the generic one does)."""
    n = data[i + 1]
    if n < 0x80:
        j = i + 2
    elif n == 0x81:
        n, j = data[i + 2], i + 3
    elif n == 0x82:
        n, j = (data[i + 2] << 8) | data[i + 3], i + 4
    else:
        raise IndexError("length form left to the generic decoder")
    if j + n > len(data):
        raise IndexError("truncated")
    return j, j + n


class OidTable:
    """A sorted, pre-encoded OID -> value table, swapped atomically on refresh.

    Each entry is held as a complete BER varbind (``SEQUENCE {oid, value}``) so
    a GETBULK reply is one ``bytes.join``.  ``previous`` lets a refresh reuse
    the sorted OIDs and their encodings when the set of OIDs is unchanged (the
    usual case: only values move), so a rebuild only encodes values.
    """

    def __init__(self, values: dict[tuple[int, ...], tuple[int, object]], previous: "OidTable | None" = None) -> None:
        given = list(values)
        vals = list(values.values())
        if previous is not None and given == previous.given:
            # the same OIDs in the same order as last time (a MIB builder's usual output): compared
            # as lists, no OID hashed; the sorted order and every lookup are the previous table's
            self.given, self.order, self.oids, self.enc_oids = previous.given, previous.order, previous.oids, previous.enc_oids
            self.index, self.by_body, self.after = previous.index, previous.by_body, previous.after
            self.exceptions = previous.exceptions
            self.values = [vals[j] for j in self.order]
            # a value that did not move keeps its varbind (names, indices, states, ratings: most of a table)
            self.varbinds = [vb if v == ov and type(v[1]) is type(ov[1]) else tlv(0x30, eo + _encode_cached(*v))
                             for v, ov, vb, eo in zip(self.values, previous.values, previous.varbinds, self.enc_oids)]
            return
        self.given = given
        #: sorted position -> position in ``values`` (as given)
        self.order = sorted(range(len(given)), key=given.__getitem__)
        self.oids = [given[j] for j in self.order]
        self.enc_oids = [tlv(OID, oid_body(o)) for o in self.oids]
        self.index = {o: i for i, o in enumerate(self.oids)}
        #: an OID's BER body (as a request carries it) -> its row: a request's OID is found without decoding it
        self.by_body = {oid_body(o): i for i, o in enumerate(self.oids)}
        #: BER body of an OID that is not a row (a walk's column) -> the row after it, as they are asked
        self.after: dict[bytes, int] = {}
        #: (noSuchInstance or endOfMibView, BER body of the asked OID) -> the varbind saying so
        self.exceptions: dict[tuple[int, bytes], bytes] = {}
        self.values = [vals[j] for j in self.order]
        self.varbinds = [tlv(0x30, eo + _encode_cached(*v)) for v, eo in zip(self.values, self.enc_oids)]

    def get(self, oid) -> bytes:
        i = self.index.get(oid)
        if i is None:
            return tlv(0x30, tlv(OID, oid_body(oid)) + bytes([NO_SUCH_INSTANCE, 0]))
        return self.varbinds[i]

    def next_index(self, oid) -> int:
        return bisect.bisect_right(self.oids, oid)

    def next_of_body(self, body: bytes) -> int:
        """``next_index`` of the OID whose BER body is ``body`` (raises BerError on a bad one)."""
        i = self.by_body.get(body)
        if i is not None:
            return i + 1
        i = self.after.get(body)
        if i is None:
            i = bisect.bisect_right(self.oids, decode_oid(body))
            if len(self.after) < _AFTER_LIMIT:  # bounded: a scanner asking random OIDs cannot grow it
                self.after[body] = i
        return i

    def at(self, i: int, asked) -> bytes:
        if i >= len(self.oids):
            return tlv(0x30, tlv(OID, oid_body(asked)) + bytes([END_OF_MIB, 0]))
        return self.varbinds[i]

    def get_of_body(self, body: bytes) -> bytes:
        """:meth:`get` of the OID whose BER body is ``body`` (raises BerError on a bad one)."""
        i = self.by_body.get(body)
        if i is not None:
            return self.varbinds[i]
        vb = self.exceptions.get((NO_SUCH_INSTANCE, body))
        if vb is None:
            oid = decode_oid(body)
            i = self.index.get(oid)
            if i is not None:  # a row, in a non-minimal encoding
                return self.varbinds[i]
            vb = self._remember(NO_SUCH_INSTANCE, body, oid)
        return vb

    def end_of_body(self, body: bytes) -> bytes:
        """The endOfMibView varbind for the OID whose BER body is ``body``, as :meth:`at` writes it."""
        vb = self.exceptions.get((END_OF_MIB, body))
        return vb if vb is not None else self._remember(END_OF_MIB, body, decode_oid(body))

    def _remember(self, tag: int, body: bytes, oid: tuple[int, ...]) -> bytes:
        """An exception varbind, remembered by the asked OID's body: pollers ask the same ones every
        poll (a profile's columns past the table's end, objects this device does not have)."""
        vb = tlv(0x30, tlv(OID, oid_body(oid)) + bytes([tag, 0]))
        if len(self.exceptions) < _AFTER_LIMIT:  # bounded, as ``after`` is
            self.exceptions[(tag, body)] = vb
        return vb


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
        # what every request for us starts with, and every reply too: version, then community
        self._v2c = tlv(INTEGER, int_body(1)) + tlv(OCTETS, community)
        self._v1 = tlv(INTEGER, int_body(0)) + tlv(OCTETS, community)

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
        """The reply to one datagram, or None (not for us, or not a request we answer).

        The common shapes (GET and GETNEXT of any OIDs, GETBULK of one column without
        non-repeaters; short BER lengths, this agent's community, a minimally encoded request id)
        are read in place: the request's OIDs are looked up by their BER bodies, and the reply is
        the pre-encoded version/community prefix, the request's own request-id bytes and the
        table's varbinds, joined once.  Anything else goes through :meth:`respond_generic`, which
        gives the same bytes for the common shapes (tests/simulator/test_snmp_wire.py).
        """
        try:
            reply = self._respond_fast(data)
        except IndexError:  # shorter than its lengths say: the generic decoder raises the error
            reply = _GENERIC
        return self.respond_generic(data) if reply is _GENERIC else reply

    def _respond_fast(self, data: bytes):
        if data[0] != 0x30:
            return _GENERIC
        p, end = _span(data, 0)
        if end != len(data):
            return _GENERIC
        if data.startswith(self._v2c, p):
            prefix = self._v2c
        elif data.startswith(self._v1, p):
            prefix = self._v1
        else:
            return _GENERIC  # another community or version: decoded (and dropped) the long way
        p += len(prefix)
        pdu = data[p]
        q, pe = _span(data, p)
        if pe != end or data[q] != INTEGER:
            return _GENERIC
        rl = data[q + 1]
        if rl & 0x80 or rl == 0:
            return _GENERIC  # the reply re-encodes the id minimally: copy only what is already so
        a = q + 2
        b = a + rl
        if rl > 1 and ((data[a] == 0 and data[a + 1] < 0x80) or (data[a] == 0xFF and data[a + 1] >= 0x80)):
            return _GENERIC
        rid = data[q:b]
        if data[b] != INTEGER or data[b + 1] != 1 or data[b + 3] != INTEGER or data[b + 4] != 1 or data[b + 6] != 0x30:
            return _GENERIC
        f2, f3 = data[b + 2], data[b + 5]
        vs, ve = _span(data, b + 6)
        if ve != end:
            return _GENERIC
        bodies = []
        x = vs
        while x < ve:  # each varbind: SEQUENCE {OID, value}; lengths read inline when short (always, in practice)
            n = data[x + 1]
            if data[x] != 0x30 or n & 0x80:
                return _GENERIC
            vb = x + 2 + n
            n = data[x + 3]
            if data[x + 2] != OID or n & 0x80 or x + 4 + n > vb:
                return _GENERIC
            bodies.append(data[x + 4:x + 4 + n])
            x = vb
        if x != ve:
            return _GENERIC
        table = self.table()
        varbinds = table.varbinds
        n = len(varbinds)
        if pdu == GET:
            by_body, get = table.by_body.get, table.get_of_body
            binds = [varbinds[i] if (i := by_body(body)) is not None else get(body) for body in bodies]
        elif pdu == GETNEXT:
            binds = []
            for body in bodies:
                i = table.next_of_body(body)
                binds.append(varbinds[i] if i < n else table.end_of_body(body))
        elif pdu == GETBULK and prefix is self._v2c:
            if f2 != 0 or len(bodies) != 1:
                return _GENERIC
            max_rep = 0 if f3 & 0x80 else min(f3, 200)
            c = table.next_of_body(bodies[0])
            if c + max_rep <= n:
                binds = varbinds[c:c + max_rep]
            else:  # the walk runs off the end: the rows left, then endOfMibView
                binds = varbinds[c:]
                binds.append(table.end_of_body(bodies[0]))
        else:
            return None
        vbs = b"".join(binds)
        inner = len(rid) + 7 + len(vbs)
        inner += len(_length(len(vbs)))
        outer = len(prefix) + 1 + len(_length(inner)) + inner
        return b"".join((b"\x30", _length(outer), prefix, b"\xa2", _length(inner), rid, b"\x02\x01\x00\x02\x01\x00\x30",
                         _length(len(vbs)), vbs))

    def respond_generic(self, data: bytes) -> bytes | None:
        """Any v1/v2c request, decoded whole: the reference the fast path must equal, and its fallback."""
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
