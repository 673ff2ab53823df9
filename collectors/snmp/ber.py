"""The project's one BER codec for SNMP (X.690 subset): TLVs, integers, OIDs, values.

Shared by the twin's agent (``simulator/snmp_agent.py``, which must cost far
less CPU than the collectors polling it) and the trap receiver
(``collectors/snmp/traps/``), so both speak the same bytes.  Hand-written on
purpose: pysnmp/pyasn1 costs tens of times more per varbind.  Pure functions on
bytes; every decoding error is a :class:`BerError` (a ``ValueError``) so a
receiver can count and drop a bad datagram with one ``except``.
"""
from __future__ import annotations

__all__ = [
    "BerError", "tlv", "length_octets", "read_tlv", "children", "int_body", "uint_body", "oid_body", "decode_oid", "parse_oid",
    "oid_text", "encode_value", "decode_value", "decode_int",
    "SEQUENCE", "INTEGER", "OCTETS", "NULL", "OID", "IPADDRESS", "COUNTER32", "GAUGE", "TIMETICKS", "OPAQUE",
    "COUNTER64", "NO_SUCH_OBJECT", "NO_SUCH_INSTANCE", "END_OF_MIB",
    "GET", "GETNEXT", "RESPONSE", "SET", "TRAP_V1", "GETBULK", "INFORM", "TRAP_V2", "REPORT",
]

SEQUENCE = 0x30
INTEGER, OCTETS, NULL, OID = 0x02, 0x04, 0x05, 0x06
IPADDRESS, COUNTER32, GAUGE, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB = 0x80, 0x81, 0x82
GET, GETNEXT, RESPONSE, SET, TRAP_V1, GETBULK, INFORM, TRAP_V2, REPORT = (
    0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8)


class BerError(ValueError):
    """Bytes that are not the BER an SNMP message needs (truncated, wrong tag, bad length)."""


def length_octets(n: int) -> bytes:
    """The BER length octets of a body of ``n`` bytes (short form below 128, else long form)."""
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + length_octets(len(body)) + body


def int_body(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)


def uint_body(v: int) -> bytes:
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    return b"\x00" + b if b[0] & 0x80 else b


def oid_body(oid: tuple[int, ...]) -> bytes:
    out = bytearray([oid[0] * 40 + oid[1]])
    for sub in oid[2:]:
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.append(0x80 | (sub & 0x7F))
            sub >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def parse_oid(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip(".").split("."))


def oid_text(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def encode_value(tag: int, value) -> bytes:
    if tag == INTEGER:
        return tlv(INTEGER, int_body(int(value)))
    if tag in (COUNTER32, GAUGE, TIMETICKS):
        return tlv(tag, uint_body(int(value) & 0xFFFFFFFF))
    if tag == COUNTER64:
        return tlv(tag, uint_body(int(value) & 0xFFFFFFFFFFFFFFFF))
    if tag in (OCTETS, OPAQUE):
        return tlv(tag, value if isinstance(value, bytes) else str(value).encode())
    if tag == OID:
        return tlv(OID, oid_body(value if isinstance(value, tuple) else parse_oid(value)))
    if tag == IPADDRESS:
        return tlv(IPADDRESS, value if isinstance(value, bytes) else bytes(int(p) for p in str(value).split(".")))
    if tag == NULL:
        return b"\x05\x00"
    raise ValueError(f"unsupported tag {tag:#x}")


def read_tlv(buf: bytes, i: int, end: int | None = None) -> tuple[int, int, int]:
    """(tag, body start, body end) of the TLV at ``i``, which must fit before ``end``."""
    limit = len(buf) if end is None else end
    if i + 2 > limit:
        raise BerError("truncated")
    tag = buf[i]
    n = buf[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise BerError("bad length")
        if j + k > limit:
            raise BerError("truncated")
        n = int.from_bytes(buf[j:j + k], "big")
        j += k
    if j + n > limit:
        raise BerError("truncated")
    return tag, j, j + n


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The TLVs that fill ``buf[start:end]`` exactly (a SEQUENCE's body)."""
    out = []
    pos = start
    while pos < end:
        t, a, b = read_tlv(buf, pos, end)
        out.append((t, a, b))
        pos = b
    return out


def decode_int(body: bytes) -> int:
    if not body:
        raise BerError("empty INTEGER")
    return int.from_bytes(body, "big", signed=True)


def decode_oid(body: bytes) -> tuple[int, ...]:
    if not body:
        raise BerError("empty OID")
    if body[-1] & 0x80:
        raise BerError("OID ends inside a sub-identifier")
    first = body[0]
    out = [first // 40, first % 40] if first < 80 else [2, first - 80]
    sub = 0
    for b in body[1:]:
        sub = (sub << 7) | (b & 0x7F)
        if not b & 0x80:
            out.append(sub)
            sub = 0
    return tuple(out)


def decode_value(tag: int, body: bytes):
    """A varbind value as Python: int, bytes, OID tuple, dotted IP text, or None (NULL, exceptions)."""
    if tag == INTEGER:
        return decode_int(body)
    if tag in (COUNTER32, GAUGE, TIMETICKS, COUNTER64):
        return int.from_bytes(body, "big") if body else 0
    if tag in (OCTETS, OPAQUE):
        return bytes(body)
    if tag == OID:
        return decode_oid(body)
    if tag == IPADDRESS:
        if len(body) != 4:
            raise BerError("IpAddress is not 4 bytes")
        return ".".join(str(b) for b in body)
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB):
        return None
    raise BerError(f"unknown value tag {tag:#x}")
