"""Sans-I/O SNMP notification decoding: datagram bytes -> :class:`Notification`.

v1 Trap-PDUs are translated to the v2 form at the edge (RFC 3584 §3.1: generic
traps 0-5 become ``snmpTraps.(generic+1)``, enterprise-specific ones
``enterprise.0.specific``) so trap definitions name one OID whatever the
version; the v1 ``agent-addr`` is kept because a v1 trap relayed by a proxy
names its real origin there.  v3 framing is split here too (header and
security parameters); authentication and privacy live in :mod:`.usm`.

Every malformed input raises :class:`~collectors.snmp.ber.BerError` (a
``ValueError``); nothing here touches a socket or a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from collectors.snmp.ber import (INFORM, INTEGER, IPADDRESS, OCTETS, OID, REPORT, RESPONSE, SEQUENCE, TIMETICKS,
                                 TRAP_V1, TRAP_V2, BerError, children, decode_int, decode_oid, decode_value,
                                 encode_value, int_body, oid_body, read_tlv, tlv)

__all__ = ["Notification", "V3Message", "decode_community", "decode_pdu", "split_v3", "encode_scoped_pdu",
           "encode_pdu", "encode_v2c_trap", "response_to", "decode_scoped_pdu", "SYS_UPTIME", "SNMP_TRAP_OID", "SNMP_TRAPS", "VarBind"]

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
SNMP_TRAP_ENTERPRISE = (1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0)
SNMP_TRAPS = (1, 3, 6, 1, 6, 3, 1, 1, 5)

#: (oid, ber tag, value) of one varbind; value as :func:`~collectors.snmp.ber.decode_value` gives it
VarBind = tuple[tuple[int, ...], int, object]


@dataclass(slots=True)
class Notification:
    """One decoded trap or inform, in the v2 shape whatever its version."""

    version: str  # "1", "2c", "3"
    pdu_type: int  # TRAP_V1 / TRAP_V2 / INFORM
    trap_oid: tuple[int, ...]
    uptime: int | None
    varbinds: list[VarBind]
    request_id: int = 0
    community: bytes = b""
    user: str = ""
    agent_addr: str = ""  # v1 only
    #: the raw PDU bytes (tag included) an inform's Response echoes
    pdu: bytes = b""
    context_engine_id: bytes = b""
    context_name: bytes = b""
    extra: dict = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        return self.pdu_type == INFORM


def _varbinds(buf: bytes, start: int, end: int) -> list[VarBind]:
    out: list[VarBind] = []
    for t, a, b in children(buf, start, end):
        if t != SEQUENCE:
            raise BerError("varbind is not a SEQUENCE")
        parts = children(buf, a, b)
        if len(parts) != 2 or parts[0][0] != OID:
            raise BerError("varbind is not {OID, value}")
        (_, oa, ob), (vt, va, vb) = parts
        out.append((decode_oid(buf[oa:ob]), vt, decode_value(vt, buf[va:vb])))
    return out


def decode_community(data: bytes) -> tuple[int, bytes, int, int]:
    """(version number, community, PDU start, PDU end) of a v1/v2c message; for v3 the community is b''."""
    tag, s, e = read_tlv(data, 0)
    if tag != SEQUENCE:
        raise BerError("not a SEQUENCE")
    if e != len(data):
        raise BerError("trailing bytes after the message")
    t, a, b = read_tlv(data, s, e)
    if t != INTEGER:
        raise BerError("version is not an INTEGER")
    version = decode_int(data[a:b])
    if version == 3:
        return version, b"", b, e
    t, ca, cb = read_tlv(data, b, e)
    if t != OCTETS:
        raise BerError("community is not an OCTET STRING")
    return version, bytes(data[ca:cb]), cb, e


def decode_pdu(buf: bytes, start: int, end: int, version: str) -> Notification:
    """The notification PDU at ``buf[start:end]`` (exactly one TLV)."""
    tag, a, b = read_tlv(buf, start, end)
    if b != end:
        raise BerError("trailing bytes after the PDU")
    parts = children(buf, a, b)
    if tag == TRAP_V1:
        if len(parts) != 6:
            raise BerError("v1 Trap-PDU needs 6 fields")
        (et, ea, eb), (at, aa, ab), (gt, ga, gb), (st, sa, sb), (tt, ta, tb), (vt, va, vb) = parts
        if et != OID or at != IPADDRESS or gt != INTEGER or st != INTEGER or tt != TIMETICKS or vt != SEQUENCE:
            raise BerError("v1 Trap-PDU field types")
        enterprise = decode_oid(buf[ea:eb])
        agent = decode_value(IPADDRESS, buf[aa:ab])
        generic, specific = decode_int(buf[ga:gb]), decode_int(buf[sa:sb])
        uptime = decode_value(TIMETICKS, buf[ta:tb])
        if 0 <= generic <= 5:
            trap_oid = SNMP_TRAPS + (generic + 1,)
        elif generic == 6:
            trap_oid = enterprise + (0, specific)
        else:
            raise BerError(f"v1 generic-trap {generic} out of range")
        binds = _varbinds(buf, va, vb)
        n = Notification("1", tag, trap_oid, uptime, binds, agent_addr=str(agent), pdu=bytes(buf[start:end]))
        n.extra = {"enterprise": enterprise, "generic": generic, "specific": specific}
        return n
    if tag in (TRAP_V2, INFORM, REPORT, RESPONSE):
        if len(parts) != 4 or parts[3][0] != SEQUENCE or any(p[0] != INTEGER for p in parts[:3]):
            raise BerError("PDU needs request-id, error-status, error-index, varbinds")
        rid = decode_int(buf[parts[0][1]:parts[0][2]])
        binds = _varbinds(buf, parts[3][1], parts[3][2])
        if tag in (REPORT, RESPONSE):
            return Notification(version, tag, (), None, binds, request_id=rid, pdu=bytes(buf[start:end]))
        uptime = None
        trap_oid: tuple[int, ...] = ()
        rest = binds
        # RFC 3416 §4.2.6: sysUpTime.0 then snmpTrapOID.0 first; tolerate agents that leave out sysUpTime
        if rest and rest[0][0] == SYS_UPTIME:
            uptime = rest[0][2] if isinstance(rest[0][2], int) else None
            rest = rest[1:]
        if rest and rest[0][0] == SNMP_TRAP_OID and isinstance(rest[0][2], tuple):
            trap_oid = rest[0][2]
            rest = rest[1:]
        else:
            raise BerError("notification without snmpTrapOID.0")
        return Notification(version, tag, trap_oid, uptime, rest, request_id=rid, pdu=bytes(buf[start:end]))
    raise BerError(f"PDU type {tag:#x} is not a notification")


def encode_pdu(tag: int, request_id: int, varbinds_body: bytes) -> bytes:
    body = tlv(INTEGER, int_body(request_id)) + b"\x02\x01\x00\x02\x01\x00" + tlv(SEQUENCE, varbinds_body)
    return tlv(tag, body)


def encode_v2c_trap(community: bytes, request_id: int, uptime_ticks: int, trap_oid: tuple[int, ...],
                    varbinds: list[VarBind] = ()) -> bytes:
    """A whole v2c SNMPv2-Trap message (RFC 3416 4.2.6): sysUpTime.0, snmpTrapOID.0, then ``varbinds``.

    The twin's agents send their traps with it; the decoder above reads it back.
    """
    def vb(oid: tuple[int, ...], tag: int, value: object) -> bytes:
        return tlv(SEQUENCE, tlv(OID, oid_body(oid)) + encode_value(tag, value))

    body = (vb(SYS_UPTIME, TIMETICKS, uptime_ticks) + vb(SNMP_TRAP_OID, OID, trap_oid)
            + b"".join(vb(o, t, v) for o, t, v in varbinds))
    return tlv(SEQUENCE, tlv(INTEGER, b"\x01") + tlv(OCTETS, community) + encode_pdu(TRAP_V2, request_id, body))


def response_to(n: Notification) -> bytes:
    """The Response-PDU acknowledging an inform: same request-id and varbinds (RFC 3416 §4.2.7)."""
    tag, a, b = read_tlv(n.pdu, 0)
    parts = children(n.pdu, a, b)
    vt, va, vb = parts[3]
    return encode_pdu(RESPONSE, n.request_id, n.pdu[va:vb])


def encode_scoped_pdu(context_engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    return tlv(SEQUENCE, tlv(OCTETS, context_engine_id) + tlv(OCTETS, context_name) + pdu)


@dataclass(slots=True)
class V3Message:
    """The parts of a v3 message before authentication and decryption (RFC 3412 §6, RFC 3414 §2.4)."""

    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth_params: bytes
    priv_params: bytes
    #: absolute offset of the authentication parameters' body in the datagram (zeroed to check the HMAC)
    auth_offset: int
    #: plaintext ScopedPDU (TLV bytes) or, with privacy, the encrypted octets
    data: bytes
    encrypted: bool

    @property
    def auth(self) -> bool:
        return bool(self.flags & 1)

    @property
    def priv(self) -> bool:
        return bool(self.flags & 2)

    @property
    def reportable(self) -> bool:
        return bool(self.flags & 4)


def split_v3(data: bytes, start: int, end: int) -> V3Message:
    """Header, security parameters and data of a v3 message (``start`` = after msgVersion)."""
    parts = children(data, start, end)
    if len(parts) != 3:
        raise BerError("v3 message needs header, security parameters and data")
    (ht, ha, hb), (st, sa, sb), (dt, da, db) = parts
    if ht != SEQUENCE or st != OCTETS:
        raise BerError("v3 header/security parameter types")
    hdr = children(data, ha, hb)
    if len(hdr) != 4 or hdr[2][0] != OCTETS or hdr[2][2] - hdr[2][1] != 1:
        raise BerError("v3 msgGlobalData")
    msg_id = decode_int(data[hdr[0][1]:hdr[0][2]])
    max_size = decode_int(data[hdr[1][1]:hdr[1][2]])
    flags = data[hdr[2][1]]
    model = decode_int(data[hdr[3][1]:hdr[3][2]])
    if model != 3:
        raise BerError(f"security model {model} is not USM (3)")
    ut, ua, ub = read_tlv(data, sa, sb)
    if ut != SEQUENCE or ub != sb:
        raise BerError("USM security parameters")
    usm = children(data, ua, ub)
    if len(usm) != 6 or [p[0] for p in usm] != [OCTETS, INTEGER, INTEGER, OCTETS, OCTETS, OCTETS]:
        raise BerError("USM security parameters need 6 fields")
    val = [bytes(data[a:b]) for _, a, b in usm]
    if dt == OCTETS:
        encrypted = True
    elif dt == SEQUENCE:
        encrypted = False
    else:
        raise BerError("v3 msgData is neither a ScopedPDU nor encrypted octets")
    return V3Message(msg_id, max_size, flags, val[0], decode_int(val[1]), decode_int(val[2]), val[3], val[4], val[5],
                     usm[4][1], bytes(data[da:db]) if encrypted else bytes(data[sb:db]),
                     encrypted)


def decode_scoped_pdu(buf: bytes) -> tuple[bytes, bytes, int, int]:
    """(contextEngineID, contextName, PDU start, PDU end) of a plaintext ScopedPDU.

    Decrypted CBC data may carry padding after the ScopedPDU: bytes after its end are ignored.
    """
    t, a, b = read_tlv(buf, 0)
    if t != SEQUENCE:
        raise BerError("ScopedPDU is not a SEQUENCE")
    et, ea, eb = read_tlv(buf, a, b)
    nt, na, nb = read_tlv(buf, eb, b)
    if et != OCTETS or nt != OCTETS:
        raise BerError("ScopedPDU context fields")
    return bytes(buf[ea:eb]), bytes(buf[na:nb]), nb, b
