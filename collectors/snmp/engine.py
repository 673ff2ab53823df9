"""SNMP transport behind a small async interface, with two interchangeable engines.

Why two: pysnmp 7 is the complete, well-known implementation (and the SNMPv3
reference) but spends ~6 ms of CPU per 100-varbind poll in pyasn1; gufo-snmp
encodes/decodes BER in Rust and measured ~20x cheaper here (see
``bench/snmp_poll.py``).  Profiles and decoders only see ``(oid, value)`` pairs,
so the engines are interchangeable and a test demands identical samples.

Values are normalised the same way by both engines:

- INTEGER, Counter32/64, Gauge32, TimeTicks, Unsigned32 -> ``int``
- OCTET STRING, Opaque -> ``bytes``
- OBJECT IDENTIFIER -> ``str`` (dotted, no leading dot); IpAddress -> ``str``
- noSuchObject / noSuchInstance / endOfMibView -> ``None``

OIDs are dotted strings without a leading dot.  Errors are :class:`SnmpEngineError`
whose ``kind`` is one of the collector error kinds (timeout, auth, protocol,
device, config, unreachable).
"""
from __future__ import annotations

import abc
import asyncio
import socket
from itertools import islice, repeat, takewhile
from operator import eq, itemgetter
from typing import Any, Sequence, Union

from collectors.base import Target

__all__ = [
    "Value", "VarBind", "SnmpEngineError", "Engine", "PysnmpEngine", "GufoEngine",
    "ENGINES", "DEFAULT_ENGINE", "make_engine", "V3Credentials", "v3_credentials",
]

_first = itemgetter(0)

Value = Union[int, bytes, str, float, None]
VarBind = tuple[str, Value]

#: Receive buffer asked of the kernel for engine sockets: with 50 requests in
#: flight a busy process overflowed the default (~208 KiB) and lost replies.
RECV_BUFFER = 4 * 1024 * 1024

#: Most varbinds in one GET: keeps request and reply well under a 1500-byte MTU
#: for typical OIDs and below agents' tooBig limits.
MAX_GET_VARBINDS = 40

#: Loop guard for agents whose walks never end.
MAX_WALK_VARBINDS = 100_000

#: The engine used when ``target.options['engine']`` is not set (chosen by
#: measurement: bench/snmp_poll.py).
DEFAULT_ENGINE = "gufo"


def _codec_panic(exc: BaseException) -> bool:
    """A Rust codec's panic (pyo3 ``PanicException``, a BaseException) on a malformed reply.

    gufo-snmp 0.13 panics on some garbage datagrams (index out of bounds in its
    BER header reader) instead of raising; a lying agent must give a protocol
    error, not escape ``except Exception`` and take the poll down with it.
    """
    return type(exc).__name__ == "PanicException"


class SnmpEngineError(Exception):
    """A request that failed; ``kind`` maps directly onto a PollError kind."""

    def __init__(self, kind: str, message: str, partial: list[VarBind] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.partial = partial or []


# --------------------------------------------------------------------------- v3

_AUTH_NAMES = {"MD5": "MD5", "SHA": "SHA", "SHA1": "SHA", "SHA-1": "SHA", "SHA224": "SHA-224",
               "SHA-224": "SHA-224", "SHA256": "SHA-256", "SHA-256": "SHA-256", "SHA384": "SHA-384",
               "SHA-384": "SHA-384", "SHA512": "SHA-512", "SHA-512": "SHA-512"}
_PRIV_NAMES = {"DES": "DES", "AES": "AES", "AES128": "AES", "AES-128": "AES", "AES192": "AES-192",
               "AES-192": "AES-192", "AES256": "AES-256", "AES-256": "AES-256"}


class V3Credentials:
    """Resolved SNMPv3 USM parameters.  Keys never appear in repr."""

    __slots__ = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "key_expansion")

    def __init__(self, user: str, auth_protocol: str | None, auth_key: str | None,
                 priv_protocol: str | None, priv_key: str | None, key_expansion: str = "blumenthal") -> None:
        self.user = user
        self.auth_protocol = auth_protocol
        self.auth_key = auth_key
        self.priv_protocol = priv_protocol
        self.priv_key = priv_key
        self.key_expansion = key_expansion

    @property
    def level(self) -> str:
        if self.priv_protocol:
            return "authPriv"
        return "authNoPriv" if self.auth_protocol else "noAuthNoPriv"

    def cache_key(self) -> tuple:
        return (self.user, self.auth_protocol, self.auth_key, self.priv_protocol, self.priv_key, self.key_expansion)

    def __repr__(self) -> str:
        return f"V3Credentials(user={self.user!r}, level={self.level}, auth={self.auth_protocol}, priv={self.priv_protocol})"


def _timeout_hint(target: Target) -> str:
    if str(target.options.get("version", "")).lstrip("v") == "3" or target.options.get("user"):
        return " (on SNMPv3 a wrong privacy key or unknown engine also looks like this)"
    return " (or wrong community: agents do not answer those)"


def snmp_version(target: Target) -> str:
    v = str(target.options.get("version", "3" if target.options.get("user") else "2c")).lower().lstrip("v")
    if v not in ("1", "2c", "3"):
        raise SnmpEngineError("config", f"{target.device_id}: unsupported SNMP version {v!r} (use 1, 2c or 3)")
    return v


def v3_credentials(target: Target) -> V3Credentials:
    """Read USM settings from ``target.options`` and keys from ``target.secrets``."""
    opts = target.options
    user = opts.get("user")
    if not user:
        raise SnmpEngineError("config", f"{target.device_id}: SNMPv3 needs options.user")
    auth = opts.get("auth_protocol")
    priv = opts.get("priv_protocol")
    auth_n = _AUTH_NAMES.get(str(auth).upper()) if auth else None
    priv_n = _PRIV_NAMES.get(str(priv).upper()) if priv else None
    if auth and not auth_n:
        raise SnmpEngineError("config", f"{target.device_id}: unknown auth_protocol {auth!r} "
                                        f"(known: {', '.join(sorted(set(_AUTH_NAMES.values())))})")
    if priv and not priv_n:
        raise SnmpEngineError("config", f"{target.device_id}: unknown priv_protocol {priv!r} "
                                        f"(known: {', '.join(sorted(set(_PRIV_NAMES.values())))})")
    if priv_n and not auth_n:
        raise SnmpEngineError("config", f"{target.device_id}: priv_protocol needs auth_protocol (USM has no noAuthPriv)")
    auth_key = target.secret("auth_key") if auth_n else None
    priv_key = target.secret("priv_key") if priv_n else None
    if auth_n and not auth_key:
        raise SnmpEngineError("config", f"{target.device_id}: auth_protocol {auth_n} set but secret auth_key missing")
    if priv_n and not priv_key:
        raise SnmpEngineError("config", f"{target.device_id}: priv_protocol {priv_n} set but secret priv_key missing")
    return V3Credentials(str(user), auth_n, auth_key, priv_n, priv_key,
                         str(opts.get("key_expansion", "blumenthal")).lower())


def _chunks(seq: Sequence[str], n: int):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


def _in_subtree(oid: str, root: str) -> bool:
    return oid.startswith(root) and (len(oid) == len(root) or oid[len(root)] == ".")


class Engine(abc.ABC):
    """get / walk over one shared transport for many devices."""

    name: str = ""
    #: every device's datagrams go through one socket, whose receive buffer a burst of
    #: replies can overflow: the collector caps this engine's polls in flight
    shared_socket: bool = True

    @abc.abstractmethod
    async def get(self, target: Target, oids: Sequence[str]) -> list[VarBind]:
        """One value per requested OID, in order; ``None`` where the agent has none."""

    @abc.abstractmethod
    async def walk(self, target: Target, root: str, max_repetitions: int = 25) -> list[VarBind]:
        """All ``(oid, value)`` under ``root`` in lexicographic order (GETBULK on v2c/v3)."""

    async def close(self) -> None:
        """Release sockets."""


# ----------------------------------------------------------------------- pysnmp

def _counting_targets(hl: Any, heard: dict[tuple[str, int], int]) -> tuple[type, type]:
    """pysnmp's UDP/UDP6 transport targets whose transport counts datagrams per source in ``heard``."""
    from pysnmp.carrier.asyncio.dgram import udp, udp6

    def counting(base: type) -> type:
        class Counting(base):  # type: ignore[misc, valid-type]
            def datagram_received(self, datagram, transportAddress):
                key = (str(transportAddress[0]), int(transportAddress[1]))
                if len(heard) < 100_000 or key in heard:
                    heard[key] = heard.get(key, 0) + 1
                super().datagram_received(datagram, transportAddress)
        return Counting

    class Udp(hl.UdpTransportTarget):
        PROTO_TRANSPORT = counting(udp.UdpAsyncioTransport)

    class Udp6(hl.Udp6TransportTarget):
        PROTO_TRANSPORT = counting(udp6.Udp6AsyncioTransport)

    return Udp, Udp6


class PysnmpEngine(Engine):
    """pysnmp 7 (asyncio): v1/v2c/v3 with every USM auth/priv protocol it ships."""

    name = "pysnmp"

    def __init__(self) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hl  # imported lazily: costly

        self._hl = hl
        self._snmp_engine = hl.SnmpEngine()
        self._transports: dict[tuple, Any] = {}
        #: datagrams received per source (host, port): pysnmp drops what it cannot decode and then
        #: reports a timeout; a reply that came but never decoded is garbage (``protocol``), not silence
        self._heard: dict[tuple[str, int], int] = {}
        self._targets = _counting_targets(hl, self._heard)
        self._auth: dict[tuple, Any] = {}
        self._context = hl.ContextData()
        self._rcvbuf_done = False

    def _auth_data(self, target: Target) -> Any:
        hl = self._hl
        version = snmp_version(target)
        if version in ("1", "2c"):
            community = target.secret("community", "public")
            key = (version, community)
            if key not in self._auth:
                self._auth[key] = hl.CommunityData(community, mpModel=0 if version == "1" else 1)
            return self._auth[key]
        cred = v3_credentials(target)
        key = ("3",) + cred.cache_key()
        if key not in self._auth:
            auth_proto = {
                None: hl.usmNoAuthProtocol, "MD5": hl.usmHMACMD5AuthProtocol, "SHA": hl.usmHMACSHAAuthProtocol,
                "SHA-224": hl.usmHMAC128SHA224AuthProtocol, "SHA-256": hl.usmHMAC192SHA256AuthProtocol,
                "SHA-384": hl.usmHMAC256SHA384AuthProtocol, "SHA-512": hl.usmHMAC384SHA512AuthProtocol,
            }[cred.auth_protocol]
            blumenthal = cred.key_expansion != "reeder"
            priv_proto = {
                None: hl.usmNoPrivProtocol, "DES": hl.usmDESPrivProtocol, "AES": hl.usmAesCfb128Protocol,
                "AES-192": hl.usmAesBlumenthalCfb192Protocol if blumenthal else hl.usmAesCfb192Protocol,
                "AES-256": hl.usmAesBlumenthalCfb256Protocol if blumenthal else hl.usmAesCfb256Protocol,
            }[cred.priv_protocol]
            self._auth[key] = hl.UsmUserData(cred.user, authKey=cred.auth_key, privKey=cred.priv_key,
                                             authProtocol=auth_proto, privProtocol=priv_proto)
        return self._auth[key]

    async def _transport(self, target: Target) -> Any:
        key = (target.host, target.port or 161, target.timeout_s, target.retries)
        t = self._transports.get(key)
        if t is None:
            cls = self._targets[1] if ":" in target.host else self._targets[0]
            try:
                t = await cls.create((target.host, target.port or 161), timeout=target.timeout_s, retries=target.retries)
            except Exception as exc:  # resolution failure
                raise SnmpEngineError("unreachable", f"{target.address()}: cannot resolve host: {exc}") from None
            self._transports[key] = t
        return t

    def _size_buffer(self) -> None:
        """Enlarge the shared socket's receive buffer once it exists."""
        if self._rcvbuf_done:
            return
        disp = self._snmp_engine.transport_dispatcher
        transports = getattr(disp, "_AbstractTransportDispatcher__transports", {}) if disp else {}
        for tr in transports.values():
            sock = tr.transport.get_extra_info("socket") if getattr(tr, "transport", None) else None
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
                except OSError:
                    pass
                self._rcvbuf_done = True

    def _convert(self, value: Any) -> Value:
        from pyasn1.type import univ
        from pysnmp.proto import rfc1902, rfc1905

        if isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView, univ.Null)):
            return None
        if isinstance(value, rfc1902.IpAddress):
            return ".".join(str(b) for b in value.asOctets())
        if isinstance(value, univ.ObjectIdentifier):
            return ".".join(str(p) for p in value)
        if isinstance(value, univ.OctetString):
            return value.asOctets()
        if isinstance(value, univ.Integer):
            return int(value)
        return None

    def _heard_from(self, target: Target) -> int:
        return self._heard.get((target.host, target.port or 161), 0)

    def _raise_for(self, target: Target, err_ind: Any, err_stat: Any, err_idx: Any, what: str,
                   heard_before: int | None = None) -> None:
        if err_ind:
            text = str(err_ind)
            low = text.lower()
            came = self._heard_from(target) - heard_before if heard_before is not None else 0
            if came > 0 and ("timeout" in low or "no snmp response" in low):
                raise SnmpEngineError("protocol", f"{target.address()}: {came} datagram(s) came back for {what} "
                                                  "but none was a valid SNMP reply (garbage)")
            if "timeout" in low or "no snmp response" in low:
                raise SnmpEngineError("timeout", f"{target.address()}: no reply to {what} within "
                                                 f"{target.timeout_s:g}s x {target.retries + 1} tries{_timeout_hint(target)}")
            if any(w in low for w in ("digest", "wrong digest", "wrongdigest", "unknown user", "unknownusername",
                                      "decryption", "authentication", "unsupported security level",
                                      "unknown security name", "usmstats")):
                raise SnmpEngineError("auth", f"{target.address()}: SNMPv3 authentication failed ({text}); "
                                              f"check user, auth/priv protocol and keys")
            raise SnmpEngineError("protocol", f"{target.address()}: {what} failed: {text}")
        if err_stat and int(err_stat):
            raise SnmpEngineError("device", f"{target.address()}: agent answered {what} with error "
                                            f"{err_stat.prettyPrint()} at varbind {int(err_idx)}")

    async def get(self, target: Target, oids: Sequence[str]) -> list[VarBind]:
        hl = self._hl
        auth = self._auth_data(target)
        transport = await self._transport(target)
        out: list[VarBind] = []
        for chunk in _chunks(list(oids), MAX_GET_VARBINDS):
            vbs = [hl.ObjectType(hl.ObjectIdentity(o)) for o in chunk]
            heard = self._heard_from(target)
            err_ind, err_stat, err_idx, res = await hl.get_cmd(
                self._snmp_engine, auth, transport, self._context, *vbs, lookupMib=False)
            self._size_buffer()
            self._raise_for(target, err_ind, err_stat, err_idx, "GET", heard)
            if len(res) != len(chunk):
                raise SnmpEngineError("protocol", f"{target.address()}: GET reply has {len(res)} varbinds for "
                                                  f"{len(chunk)} requested")
            for o, (_, v) in zip(chunk, res):
                out.append((o, self._convert(v)))
        return out

    async def walk(self, target: Target, root: str, max_repetitions: int = 25) -> list[VarBind]:
        hl = self._hl
        auth = self._auth_data(target)
        transport = await self._transport(target)
        version = snmp_version(target)
        out: list[VarBind] = []
        current = root
        last = _oid_tuple(root)
        while True:
            ot = hl.ObjectType(hl.ObjectIdentity(current))
            heard = self._heard_from(target)
            if version == "1":
                err_ind, err_stat, err_idx, res = await hl.next_cmd(
                    self._snmp_engine, auth, transport, self._context, ot, lookupMib=False)
                rows = list(res)
            else:
                err_ind, err_stat, err_idx, res = await hl.bulk_cmd(
                    self._snmp_engine, auth, transport, self._context, 0, max_repetitions, ot, lookupMib=False)
                rows = list(res)
            self._size_buffer()
            if version == "1" and err_stat and str(err_stat.prettyPrint()) == "noSuchName":
                return out
            try:
                self._raise_for(target, err_ind, err_stat, err_idx, f"GETBULK {current}", heard)
            except SnmpEngineError as exc:
                exc.partial = out
                raise
            if not rows:
                return out
            for name, value in rows:
                oid = ".".join(str(p) for p in name)
                v = self._convert(value)
                if v is None:  # endOfMibView: the agent's MIB ends here
                    return out
                if not _in_subtree(oid, root):
                    return out
                tup = _oid_tuple(oid)
                if tup <= last:
                    raise SnmpEngineError("protocol", f"{target.address()}: walk of {root} not increasing at {oid}",
                                          partial=out)
                last = tup
                out.append((oid, v))
            current = out[-1][0] if out else root

    async def close(self) -> None:
        try:
            self._snmp_engine.close_dispatcher()
        except Exception:
            pass


# ------------------------------------------------------------------------- gufo

def _raise_fd_limit() -> None:
    """One socket per device: thousands of devices need more than the default 1024 fds."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError):
        pass


class GufoEngine(Engine):
    """gufo-snmp 0.13: Rust BER codec, one UDP socket per device, v1/v2c/v3.

    gufo's v3 supports MD5/SHA-1/SHA-2 auth and DES/AES-128/192/256 privacy.
    It has no retries of its own, so ``target.retries`` is honoured here.
    """

    name = "gufo"
    shared_socket = False  # a socket per device: its replies cannot crowd out another device's

    def __init__(self) -> None:
        import gufo.snmp as gs  # noqa: F401

        _raise_fd_limit()

        self._gs = gs
        from gufo.snmp.aio.client import SnmpSession

        self._Session = SnmpSession
        self._sessions: dict[tuple, Any] = {}
        self._locks: dict[tuple, asyncio.Lock] = {}

    def _user(self, cred: V3Credentials) -> Any:
        gs = self._gs
        auth_cls = {None: None, "MD5": gs.Md5Key, "SHA": gs.Sha1Key, "SHA-224": gs.Sha224Key,
                    "SHA-256": gs.Sha256Key, "SHA-384": gs.Sha384Key, "SHA-512": gs.Sha512Key}[cred.auth_protocol]
        priv_cls = {None: None, "DES": gs.DesKey, "AES": gs.Aes128Key, "AES-192": gs.Aes192Key,
                    "AES-256": gs.Aes256Key}[cred.priv_protocol]
        expansion = gs.KeyExpansion.Reeder if cred.key_expansion == "reeder" else gs.KeyExpansion.Blumenthal
        return gs.User(cred.user,
                       auth_key=auth_cls(cred.auth_key.encode()) if auth_cls else None,
                       priv_key=priv_cls(cred.priv_key.encode()) if priv_cls else None,
                       key_expansion=expansion)

    async def _session(self, target: Target) -> tuple[tuple, Any]:
        version = snmp_version(target)
        host, port = target.host, target.port or 161
        if version == "3":
            cred = v3_credentials(target)
            key = (host, port, "3", cred.cache_key(), target.timeout_s)
        else:
            community = target.secret("community", "public")
            key = (host, port, version, community, target.timeout_s)
        sess = self._sessions.get(key)
        if sess is not None:
            return key, sess
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            sess = self._sessions.get(key)
            if sess is not None:
                return key, sess
            gs = self._gs
            try:
                if version == "3":
                    sess = self._Session(host, port, user=self._user(cred), version=gs.SnmpVersion.v3,
                                         timeout=target.timeout_s, recv_buffer=RECV_BUFFER)
                    await self._with_retries(target, sess.refresh, "engine discovery")
                else:
                    sess = self._Session(host, port, community=community,
                                         version=gs.SnmpVersion.v1 if version == "1" else gs.SnmpVersion.v2c,
                                         timeout=target.timeout_s, recv_buffer=RECV_BUFFER)
            except SnmpEngineError:
                raise
            except OSError as exc:
                raise SnmpEngineError("unreachable", f"{target.address()}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise SnmpEngineError("config", f"{target.address()}: {exc}") from None
            self._sessions[key] = sess
            return key, sess

    def _map_error(self, target: Target, exc: BaseException, what: str) -> SnmpEngineError:
        gs = self._gs
        if isinstance(exc, SnmpEngineError):
            return exc
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return SnmpEngineError("timeout", f"{target.address()}: no reply to {what} within "
                                              f"{target.timeout_s:g}s x {target.retries + 1} tries{_timeout_hint(target)}")
        if isinstance(exc, gs.SnmpAuthError):
            return SnmpEngineError("auth", f"{target.address()}: SNMPv3 authentication failed ({exc or 'wrong digest'}); "
                                           f"check user, auth/priv protocol and keys")
        if isinstance(exc, gs.SnmpDecodeError):
            return SnmpEngineError("protocol", f"{target.address()}: undecodable reply to {what}: {exc}")
        if isinstance(exc, gs.SnmpError):
            return SnmpEngineError("device", f"{target.address()}: agent answered {what} with error: {exc}")
        if isinstance(exc, ConnectionRefusedError):
            return SnmpEngineError("unreachable", f"{target.address()}: port unreachable (ICMP)")
        if isinstance(exc, OSError):
            return SnmpEngineError("unreachable", f"{target.address()}: {exc.strerror or exc}")
        return SnmpEngineError("protocol", f"{target.address()}: {what} failed: {type(exc).__name__}: {exc}")

    async def _with_retries(self, target: Target, fn, what: str):
        attempts = max(1, int(target.retries) + 1)
        for i in range(attempts):
            try:
                return await fn()
            except StopAsyncIteration:
                raise
            except (TimeoutError, asyncio.TimeoutError) as exc:
                if i + 1 == attempts:
                    raise self._map_error(target, exc, what) from None
            except Exception as exc:  # noqa: BLE001 - mapped to a PollError kind
                raise self._map_error(target, exc, what) from None
            except BaseException as exc:
                if not _codec_panic(exc):
                    raise
                raise SnmpEngineError("protocol", f"{target.address()}: undecodable reply to {what}") from None

    def _drop(self, key: tuple) -> None:
        """Forget a session after a timeout: its socket may hold a stale late reply."""
        self._sessions.pop(key, None)

    async def get(self, target: Target, oids: Sequence[str]) -> list[VarBind]:
        key, sess = await self._session(target)
        out: list[VarBind] = []
        try:
            for chunk in _chunks(list(oids), MAX_GET_VARBINDS):
                res = await self._with_retries(target, lambda c=chunk: sess.get_many(c), "GET")
                for o in chunk:
                    out.append((o, res.get(o)))
        except SnmpEngineError as exc:
            if exc.kind in ("timeout", "protocol"):
                self._drop(key)
            raise
        except asyncio.CancelledError:   # the scheduler's deadline: a late reply may follow
            self._drop(key)
            raise
        return out

    async def walk(self, target: Target, root: str, max_repetitions: int = 25) -> list[VarBind]:
        key, sess = await self._session(target)
        out: list[VarBind] = []
        version = snmp_version(target)
        prefix = root + "."
        attempts = max(1, int(target.retries) + 1)
        start = root
        last = root
        for attempt in range(attempts):
            it = sess.getnext(start) if version == "1" else sess.getbulk(start, max_repetitions)
            try:
                # The hot loop: plain string checks (the codec yields ordered OIDs;
                # a repeat means a looping agent, the cap bounds any other cycle).
                async for batch in _batches(it):
                    whole = _in_order(batch, prefix, last)
                    if whole is not None:  # the usual reply: checked in C, taken as a slice
                        if whole:
                            out += batch[:whole]
                            last = batch[whole - 1][0]
                        if whole < len(batch):
                            return out
                        if len(out) > MAX_WALK_VARBINDS:
                            raise SnmpEngineError("protocol", f"{target.address()}: walk of {root} exceeds "
                                                              f"{MAX_WALK_VARBINDS} varbinds (looping agent?)",
                                                  partial=out)
                        continue
                    for oid, value in batch:
                        if not oid.startswith(prefix):
                            return out
                        if oid == last:
                            raise SnmpEngineError("protocol", f"{target.address()}: walk of {root} repeats {oid}",
                                                  partial=out)
                        last = oid
                        out.append((oid, value))
                    if len(out) > MAX_WALK_VARBINDS:
                        raise SnmpEngineError("protocol", f"{target.address()}: walk of {root} exceeds "
                                                          f"{MAX_WALK_VARBINDS} varbinds (looping agent?)", partial=out)
                return out
            except (TimeoutError, asyncio.TimeoutError) as exc:
                if attempt + 1 == attempts:
                    self._drop(key)
                    err = self._map_error(target, exc, f"GETBULK {root}")
                    err.partial = out
                    raise err from None
                start = last          # resume after the last row received
            except SnmpEngineError:
                raise
            except asyncio.CancelledError:
                self._drop(key)
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a PollError kind
                err = self._map_error(target, exc, f"GETBULK {root}")
                err.partial = out
                raise err from None
            except BaseException as exc:
                if not _codec_panic(exc):
                    raise
                self._drop(key)
                raise SnmpEngineError("protocol", f"{target.address()}: undecodable reply to GETBULK {root}",
                                      partial=out) from None
        return out

    async def close(self) -> None:
        self._sessions.clear()


def _in_order(batch: Sequence[tuple[str, Any]], prefix: str, last: str) -> int | None:
    """How many leading varbinds of a reply are inside the walked subtree, when no OID in them
    repeats its predecessor (or ``last``, the walk's previous one); None when one does (the
    caller then goes varbind by varbind, which names the repeat)."""
    if not batch:
        return 0
    oids = list(map(_first, batch))
    inside = len(list(takewhile(bool, map(str.startswith, oids, repeat(prefix)))))
    head = oids[:inside]
    if head and (head[0] == last or any(map(eq, head, islice(head, 1, None)))):
        return None
    return inside


async def _batches(it: Any):
    """The varbinds of a gufo walk, one GETBULK reply at a time.

    Why: gufo's ``GetBulkIter.__anext__`` hands out one varbind per call (three closures
    and a ``list.pop(0)`` each); at 100 varbinds a poll that was a quarter of the
    collector's CPU per PDU (bench/snmp_poll.py).  Its reply list is taken whole
    instead, through the iterator's own send/receive calls, and ends where the
    iterator would stop (an empty reply, or the end-of-view marker ``None``).  An
    iterator without those attributes (another gufo version, GETNEXT) is read one
    varbind at a time as before.
    """
    session, sock, ctx = (getattr(it, a, None) for a in ("_session", "_sock", "_ctx"))
    send = getattr(sock, "send_get_bulk", None)
    recv = getattr(sock, "recv_get_bulk", None)
    if not (isinstance(it, _GetBulkIter) and session is not None and ctx is not None and send and recv):
        async for item in it:
            yield (item,)
        return

    def sender() -> None:
        send(ctx)

    def receiver() -> list:
        return recv(ctx)

    while True:
        try:
            await session._send(sender)
            batch = await session._recv(receiver)
        except StopAsyncIteration:  # the codec's end of the walk (raised inside an async generator it
            return                  # would become a RuntimeError)
        if not batch:
            return
        if None in batch:
            yield batch[:batch.index(None)]
            return
        yield batch


try:
    from gufo.snmp.aio.client import GetBulkIter as _GetBulkIter
except ImportError:  # pragma: no cover - gufo is a dependency; pysnmp alone still works
    class _GetBulkIter:  # type: ignore[no-redef]
        pass


ENGINES: dict[str, type[Engine]] = {"pysnmp": PysnmpEngine, "gufo": GufoEngine}


def make_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise SnmpEngineError("config", f"unknown SNMP engine {name!r} (known: {', '.join(ENGINES)})") from None
