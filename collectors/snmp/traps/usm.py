"""SNMPv3 User-based Security Model for a notification receiver (RFC 3414, 3826, 7860).

Pure functions and small classes over bytes; the receiver supplies the clock.
Passphrases are turned into keys once per user (RFC 3414 A.2: 1 MiB of
hashing), then localized per engine ID and cached (bounded): a trap is
authenticated with keys localized to the *sender's* engine ID, an inform (the
receiver is authoritative) with keys localized to the receiver's own.

Supported: HMAC-MD5-96, HMAC-SHA-96, HMAC-SHA-2 (224/256/384/512, RFC 7860),
AES-128 CFB (RFC 3826), AES-192/256 CFB (Blumenthal key extension, or Reeder
with ``key_expansion: reeder``).  DES is refused at start-up with a clear
message (broken since 1998; no shipped profile needs it).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.modes import CFB  # RFC 3826 names CFB; cryptography files it as decrepit
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from collectors.snmp.ber import INTEGER, OCTETS, SEQUENCE, int_body, tlv

__all__ = ["AUTH", "PRIV", "UsmUser", "UsmError", "password_to_key", "localize", "check_digest", "sign",
           "decrypt", "encrypt", "encode_v3"]

#: auth protocol -> (hashlib name, truncated MAC length)
AUTH = {"MD5": ("md5", 12), "SHA": ("sha1", 12), "SHA-224": ("sha224", 16), "SHA-256": ("sha256", 24),
        "SHA-384": ("sha384", 32), "SHA-512": ("sha512", 48)}
#: priv protocol -> AES key length
PRIV = {"AES": 16, "AES-192": 24, "AES-256": 32}
_LOCAL_CACHE = 4096  # localized key pairs kept per user (one per sending engine)


class UsmError(Exception):
    """A message USM refuses; ``kind`` is what the receiver counts."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def password_to_key(passphrase: bytes, hash_name: str) -> bytes:
    """RFC 3414 A.2: hash the passphrase repeated to 1,048,576 bytes."""
    if not passphrase:
        raise ValueError("empty passphrase")
    reps = 1_048_576 // len(passphrase) + 1
    h = hashlib.new(hash_name, memoryview(passphrase * reps)[:1_048_576])
    return h.digest()


def localize(ku: bytes, engine_id: bytes, hash_name: str) -> bytes:
    return hashlib.new(hash_name, ku + engine_id + ku).digest()


def _priv_key(ku_priv: bytes, engine_id: bytes, hash_name: str, size: int, expansion: str) -> bytes:
    key = localize(ku_priv, engine_id, hash_name)
    while len(key) < size:
        if expansion == "reeder":
            key += localize(password_to_key(key, hash_name), engine_id, hash_name)
        else:  # Blumenthal draft-04 §3.1.2.1
            key += hashlib.new(hash_name, key).digest()
    return key[:size]


@dataclass
class UsmUser:
    """One USM user's keys (never printed).  Built from an inventory credential set."""

    name: bytes
    auth: str | None
    priv: str | None
    ku_auth: bytes = b""
    ku_priv: bytes = b""
    expansion: str = "blumenthal"
    #: traps are accepted from these engine IDs only (empty: from any)
    engine_ids: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        self._local: dict[bytes, tuple[bytes, bytes]] = {}

    @classmethod
    def from_passphrases(cls, name: str, auth: str | None, auth_key: str | None, priv: str | None,
                         priv_key: str | None, expansion: str = "blumenthal",
                         engine_ids: frozenset[bytes] = frozenset()) -> "UsmUser":
        if auth is not None and auth not in AUTH:
            raise ValueError(f"user {name}: auth protocol {auth} not supported (known: {', '.join(AUTH)})")
        if priv is not None and priv not in PRIV:
            raise ValueError(f"user {name}: privacy protocol {priv} not supported by the trap receiver "
                             f"(known: {', '.join(PRIV)})")
        h = AUTH[auth][0] if auth else ""
        return cls(name.encode(), auth, priv,
                   password_to_key(auth_key.encode(), h) if auth and auth_key else b"",
                   password_to_key(priv_key.encode(), h) if priv and priv_key else b"", expansion,
                   frozenset(engine_ids))

    def __repr__(self) -> str:
        return f"UsmUser({self.name.decode(errors='replace')!r}, auth={self.auth}, priv={self.priv})"

    @property
    def level(self) -> int:
        """msgFlags bits this user needs: 0 noAuthNoPriv, 1 authNoPriv, 3 authPriv."""
        return (1 if self.auth else 0) | (2 if self.priv else 0)

    def keys(self, engine_id: bytes) -> tuple[bytes, bytes]:
        """(auth key, priv key) localized to ``engine_id``."""
        got = self._local.get(engine_id)
        if got is None:
            h = AUTH[self.auth][0] if self.auth else ""
            ak = localize(self.ku_auth, engine_id, h) if self.auth else b""
            pk = _priv_key(self.ku_priv, engine_id, h, PRIV[self.priv], self.expansion) if self.priv else b""
            got = (ak, pk)
            if len(self._local) >= _LOCAL_CACHE:
                self._local.pop(next(iter(self._local)))
            self._local[engine_id] = got
        return got


def sign(whole: bytes, auth_offset: int, auth: str, key: bytes) -> bytes:
    """The MAC of ``whole`` with its authentication parameters zeroed (RFC 3414 §6.3.1, RFC 7860)."""
    name, n = AUTH[auth]
    zeroed = whole[:auth_offset] + bytes(n) + whole[auth_offset + n:]
    return hmac.new(key, zeroed, name).digest()[:n]


def check_digest(whole: bytes, auth_offset: int, received: bytes, auth: str, key: bytes) -> bool:
    if len(received) != AUTH[auth][1]:
        return False
    return hmac.compare_digest(sign(whole, auth_offset, auth, key), received)


def _aes(key: bytes, boots: int, time_: int, salt: bytes):
    if len(salt) != 8:
        raise UsmError("decrypt", "AES privacy parameters are not 8 bytes")
    iv = boots.to_bytes(4, "big") + time_.to_bytes(4, "big") + salt
    return Cipher(algorithms.AES(key), CFB(iv))


def decrypt(data: bytes, key: bytes, boots: int, time_: int, salt: bytes) -> bytes:
    """RFC 3826 §3.1.4: AES in 128-bit CFB mode, IV = boots || time || salt."""
    d = _aes(key, boots, time_, salt).decryptor()
    return d.update(data) + d.finalize()


def encrypt(data: bytes, key: bytes, boots: int, time_: int, salt: bytes) -> bytes:
    e = _aes(key, boots, time_, salt).encryptor()
    return e.update(data) + e.finalize()


def encode_v3(msg_id: int, max_size: int, flags: int, engine_id: bytes, boots: int, time_: int, user: UsmUser | None,
              scoped_pdu: bytes, salt: bytes = b"") -> bytes:
    """A whole v3 message carrying ``scoped_pdu``, encrypted and signed as ``flags`` ask."""
    auth_key, priv_key = user.keys(engine_id) if user is not None and flags & 1 else (b"", b"")
    priv_params = b""
    data = scoped_pdu
    if flags & 2 and user is not None:
        priv_params = salt
        data = tlv(OCTETS, encrypt(scoped_pdu, priv_key, boots, time_, salt))
    mac_len = AUTH[user.auth][1] if flags & 1 and user is not None and user.auth else 0
    name = user.name if user is not None else b""
    usm_head = (tlv(OCTETS, engine_id) + tlv(INTEGER, int_body(boots)) + tlv(INTEGER, int_body(time_))
                + tlv(OCTETS, name))
    usm = tlv(SEQUENCE, usm_head + tlv(OCTETS, bytes(mac_len)) + tlv(OCTETS, priv_params))
    header = tlv(SEQUENCE, tlv(INTEGER, int_body(msg_id)) + tlv(INTEGER, int_body(max_size))
                 + tlv(OCTETS, bytes([flags])) + b"\x02\x01\x03")
    body = b"\x02\x01\x03" + header + tlv(OCTETS, usm) + data
    whole = tlv(SEQUENCE, body)
    if not mac_len:
        return whole
    # the MAC placeholder is the last mac_len bytes before the privacy parameters' TLV, within usm
    priv_tlv = tlv(OCTETS, priv_params)
    usm_end = whole.index(usm) + len(usm)
    offset = usm_end - len(priv_tlv) - mac_len
    mac = sign(whole, offset, user.auth, auth_key)  # type: ignore[arg-type]
    return whole[:offset] + mac + whole[offset + mac_len:]
