"""The sans-I/O trap receiver: (datagram, source address, clock) -> what to reply and what arrived.

No socket here: :class:`TrapReceiver.handle` is called by the asyncio
transport (:mod:`.listener`), by ``dcim traps listen`` and directly by tests.
It authenticates (community, or USM with many users), acknowledges informs
(a Response-PDU; for v3 also the engine-ID discovery and time-window Reports
of RFC 3414 §4), maps the sender to an inventory device, and refuses — with a
counted reason, never an exception — everything else.

Per-sender outcomes are counted in :class:`ReceiverStats`; the first refusal
of each sender is logged (once), so a misconfigured PDU sending every few
seconds cannot fill the log, and memory for that is bounded.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from collectors.base import Target
from collectors.snmp.ber import (COUNTER32, INFORM, INTEGER, OCTETS, OID, REPORT, RESPONSE, SEQUENCE, TRAP_V1, TRAP_V2,
                                 BerError, encode_value, oid_body, tlv)
from collectors.snmp.traps.message import (Notification, V3Message, decode_community, decode_pdu,
                                           decode_scoped_pdu, encode_pdu, encode_scoped_pdu, response_to, split_v3)
from collectors.snmp.traps.usm import UsmError, UsmUser, check_digest, decrypt, encode_v3

__all__ = ["TrapReceiver", "Received", "ReceiverStats", "DeviceIndex", "REFUSALS", "default_engine_id"]

log = logging.getLogger("dcim.traps")

#: reasons a datagram is refused; each is a counter
REFUSALS = ("decode", "unknown_sender", "ambiguous_sender", "bad_community", "unknown_user", "wrong_digest",
            "decrypt", "unsupported_security", "not_in_time_window", "unknown_engine", "wrong_engine", "not_notification")
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)  # usmStats (RFC 3414 §5)
_REPORT_OID = {"not_in_time_window": _USM_STATS + (2, 0), "unknown_user": _USM_STATS + (3, 0),
               "unknown_engine": _USM_STATS + (4, 0), "wrong_digest": _USM_STATS + (5, 0)}
_MAX_SENDERS = 10_000  # distinct sender addresses remembered for log-once


def default_engine_id() -> bytes:
    """An RFC 3411 engine ID in the 'text' format (enterprise 0, format 4): 0x80000000 04 'dcim-traps'."""
    return bytes.fromhex("8000000004") + b"dcim-traps"


@dataclass
class ReceiverStats:
    received: int = 0
    accepted: int = 0
    informs_acked: int = 0
    reports_sent: int = 0
    refused: dict[str, int] = field(default_factory=lambda: {k: 0 for k in REFUSALS})
    #: sender address -> refusals (bounded)
    by_sender: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Received:
    """The outcome of one datagram."""

    reply: bytes | None = None
    notification: Notification | None = None
    target: Target | None = None
    refused: str = ""  # one of REFUSALS, or "" when accepted
    detail: str = ""


class DeviceIndex:
    """Sender address -> inventory target, and the credentials each device accepts.

    Devices are found by their polled ``host``; a v1 trap relayed by a proxy is
    found by its ``agent-addr``.  Two SNMP devices behind one address cannot be
    told apart: such an address is ``ambiguous_sender`` (counted), never guessed.
    """

    def __init__(self, targets: list[Target], extra_communities: list[bytes] = ()) -> None:
        self._by_host: dict[str, list[Target]] = {}
        for t in targets:
            if t.protocol == "snmp" and t.host:
                self._by_host.setdefault(t.host, []).append(t)
        self._communities: dict[str, set[bytes]] = {}
        for t in targets:
            c = t.secret("community")
            self._communities.setdefault(t.device_id, set()).update(
                [c.encode()] if c else ([] if t.options.get("user") else [b"public"]))
        self.extra = set(extra_communities)

    @property
    def devices(self) -> int:
        return sum(len(v) for v in self._by_host.values())

    def lookup(self, host: str) -> tuple[Target | None, str]:
        if host.startswith("::ffff:") and "." in host:  # IPv4 sender on a dual-stack [::] socket
            host = host[7:]
        found = self._by_host.get(host)
        if not found:
            return None, "unknown_sender"
        if len(found) > 1:
            return None, "ambiguous_sender"
        return found[0], ""

    def community_ok(self, target: Target, community: bytes) -> bool:
        return community in self.extra or community in self._communities.get(target.device_id, ())


class TrapReceiver:
    """Decodes, authenticates and acknowledges notifications.  Single-threaded."""

    def __init__(self, index: DeviceIndex, users: list[UsmUser] = (), *, engine_id: bytes | None = None,
                 boots: int | None = None, started_s: float = 0.0) -> None:
        self.index = index
        self.users: dict[bytes, list[UsmUser]] = {}
        for u in users:
            self.users.setdefault(u.name, []).append(u)
        self.engine_id = engine_id or default_engine_id()
        # boots must grow across restarts (RFC 3414 §2.2): seconds since the epoch at start do, with no state file
        self.boots = boots if boots is not None else int(started_s) & 0x7FFFFFFF
        self.started_s = started_s
        self.stats = ReceiverStats()
        self._logged: set[str] = set()

    # -- public ---------------------------------------------------------------------
    def handle(self, data: bytes, addr: tuple, now_s: float) -> Received:
        self.stats.received += 1
        host = str(addr[0])
        try:
            version, community, start, end = decode_community(data)
            if version in (0, 1):
                out = self._community(data, version, community, start, end, host)
            elif version == 3:
                out = self._v3(data, start, end, host, now_s)
            else:
                out = Received(refused="decode", detail=f"SNMP version field {version}")
        except BerError as exc:
            out = Received(refused="decode", detail=str(exc))
        except UsmError as exc:
            out = Received(refused=exc.kind, detail=str(exc))
        if out.refused:
            self._refuse(host, out)
        else:
            self.stats.accepted += 1
        return out

    def engine_time(self, now_s: float) -> int:
        return max(0, int(now_s - self.started_s)) & 0x7FFFFFFF

    # -- v1 / v2c ---------------------------------------------------------------------
    def _community(self, data: bytes, version: int, community: bytes, start: int, end: int, host: str) -> Received:
        vtext = "1" if version == 0 else "2c"
        n = decode_pdu(data, start, end, vtext)
        if n.pdu_type not in (TRAP_V1, TRAP_V2, INFORM) or (n.pdu_type == TRAP_V1) != (version == 0):
            return Received(refused="not_notification", detail=f"PDU {n.pdu_type:#x} in a v{vtext} message")
        target, why = self.index.lookup(host)
        if target is None and n.agent_addr:
            target, why = self.index.lookup(n.agent_addr)
        if target is None:
            return Received(refused=why, detail=f"no single SNMP device at {host}" + (
                f" or agent-addr {n.agent_addr}" if n.agent_addr else ""))
        if not self.index.community_ok(target, community):
            return Received(refused="bad_community", detail=f"community not accepted for {target.device_id}",
                            target=target)
        n.community = community
        reply = None
        if n.pdu_type == INFORM:
            reply = tlv(SEQUENCE, encode_value(INTEGER, version) + tlv(OCTETS, community) + response_to(n))
            self.stats.informs_acked += 1
        return Received(reply=reply, notification=n, target=target)

    # -- v3 ----------------------------------------------------------------------------
    def _v3(self, data: bytes, start: int, end: int, host: str, now_s: float) -> Received:
        m = split_v3(data, start, end)
        if m.priv and not m.auth:
            raise UsmError("unsupported_security", "noAuthPriv is not a USM security level")
        candidates = self.users.get(m.user, [])
        # an inform makes us authoritative: its engine ID must be ours (empty = discovery, RFC 3414 §4)
        if not m.engine_id or (m.engine_id != self.engine_id and not candidates and m.reportable):
            return self._report(m, "unknown_engine", None, now_s)
        if not candidates:
            raise UsmError("unknown_user", f"USM user {m.user.decode(errors='replace')!r} unknown")
        user, scoped = self._authenticate(data, m, candidates)
        ctx_engine, ctx_name, ps, pe = decode_scoped_pdu(scoped)
        n = decode_pdu(scoped, ps, pe, "3")
        if n.pdu_type not in (TRAP_V2, INFORM):
            if n.pdu_type in (REPORT, RESPONSE):
                return Received(refused="not_notification", detail="Report/Response to a receiver")
            return Received(refused="not_notification", detail=f"PDU {n.pdu_type:#x}")
        n.user = user.name.decode(errors="replace")
        n.context_engine_id, n.context_name = ctx_engine, ctx_name
        reply = None
        if n.pdu_type == INFORM:
            if m.engine_id != self.engine_id:
                return self._report(m, "unknown_engine", None, now_s)
            if m.auth and (m.boots != self.boots or abs(m.time - self.engine_time(now_s)) > 150):
                return self._report(m, "not_in_time_window", user, now_s)
        target, why = self.index.lookup(host)
        if target is None:
            # not acknowledged: the sender must not believe a trap nobody can place was delivered
            return Received(refused=why, detail=f"no single SNMP device at {host} (user {n.user})")
        if n.pdu_type == INFORM:
            scoped_reply = encode_scoped_pdu(ctx_engine, ctx_name, response_to(n))
            reply = encode_v3(m.msg_id, 65507, m.flags & 3, self.engine_id, self.boots, self.engine_time(now_s),
                              user, scoped_reply, os.urandom(8))
            self.stats.informs_acked += 1
        return Received(reply=reply, notification=n, target=target)

    def _authenticate(self, data: bytes, m: V3Message, candidates: list[UsmUser]) -> tuple[UsmUser, bytes]:
        """The user whose keys verify the message, and the plaintext ScopedPDU."""
        level = (1 if m.auth else 0) | (2 if m.priv else 0)
        refusal = UsmError("unsupported_security", "security level does not match the user's")
        for user in candidates:
            if user.level != level:
                continue
            if user.engine_ids and m.engine_id not in user.engine_ids and not (m.reportable and
                                                                              m.engine_id == self.engine_id):
                refusal = UsmError("wrong_engine", f"USM user {user.name.decode(errors='replace')!r}: engine ID "
                                                     f"{m.engine_id.hex()} is not one of its trap_engine_ids")
                continue
            auth_key, priv_key = user.keys(m.engine_id)
            if m.auth and not check_digest(data, m.auth_offset, m.auth_params, user.auth, auth_key):
                refusal = UsmError("wrong_digest", f"USM user {user.name.decode(errors='replace')!r}: wrong digest "
                                                   "(authentication key or protocol)")
                continue
            if not m.priv:
                return user, m.data
            plain = decrypt(m.data, priv_key, m.boots, m.time, m.priv_params)
            try:
                decode_scoped_pdu(plain)
            except BerError:
                refusal = UsmError("decrypt", f"USM user {user.name.decode(errors='replace')!r}: "
                                              "undecryptable data (privacy key or protocol)")
                continue
            return user, plain
        raise refusal

    def _report(self, m: V3Message, kind: str, user: UsmUser | None, now_s: float) -> Received:
        """A Report-PDU telling an inform's sender our engine ID, boots and time (RFC 3414 §3.2 step 3/7)."""
        counter = self.stats.refused.get(kind, 0) + 1
        binds = tlv(SEQUENCE, tlv(OID, oid_body(_REPORT_OID[kind])) + encode_value(COUNTER32, counter))
        pdu = encode_pdu(REPORT, 0, binds)
        flags = 1 if user is not None and kind == "not_in_time_window" else 0
        msg = encode_v3(m.msg_id, 65507, flags, self.engine_id, self.boots, self.engine_time(now_s),
                        user if flags else None, encode_scoped_pdu(self.engine_id, b"", pdu))
        self.stats.reports_sent += 1
        # discovery is part of every v3 inform exchange: not a refusal worth logging
        return Received(reply=msg if m.reportable else None, refused=kind,
                        detail="engine ID discovery" if kind == "unknown_engine" else "outside the time window")

    def _refuse(self, host: str, out: Received) -> None:
        s = self.stats
        s.refused[out.refused] = s.refused.get(out.refused, 0) + 1
        if out.refused in ("unknown_engine",):
            return
        if host in s.by_sender or len(s.by_sender) < _MAX_SENDERS:
            s.by_sender[host] = s.by_sender.get(host, 0) + 1
        if host not in self._logged and len(self._logged) < _MAX_SENDERS:
            self._logged.add(host)
            log.warning("trap from %s refused (%s): %s; further refusals from it are only counted",
                        host, out.refused, out.detail)
