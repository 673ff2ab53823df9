"""The thin asyncio UDP side of the trap receiver, and its wiring to samples and polls.

``TrapListener`` owns one UDP socket.  For each datagram: the sender's token
bucket (:mod:`.limiter`) first — a storm costs one dict lookup per datagram,
not a decode —, then :class:`~.receiver.TrapReceiver` (decode, authenticate,
acknowledge), then :class:`~.definitions.TrapCatalog` (samples), handed to
``emit`` (the same consumers the polls feed: InfluxDB writer, rule engine),
and ``poll_now(device_id)`` so the scheduler polls that device at once.

Everything runs on the collectors' event loop; nothing here blocks.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from collectors.base import Target
from collectors.snmp.engine import SnmpEngineError, v3_credentials
from collectors.snmp.traps.definitions import TrapCatalog, default_catalog
from collectors.snmp.traps.limiter import TrapLimiter
from collectors.snmp.traps.receiver import DeviceIndex, Received, TrapReceiver
from collectors.snmp.traps.usm import UsmUser
from contract.sample import Sample, now_ns
from inventory.secrets import SecretValue

__all__ = ["TrapListener", "TrapSettings", "TrapListenError", "usm_users", "parse_listen", "STATS_MEASUREMENT"]

log = logging.getLogger("dcim.traps")
STATS_MEASUREMENT = "trap_receiver"


class TrapListenError(OSError):
    """The receiver's socket cannot be bound; the message says where and what to do."""


@dataclass
class TrapSettings:
    host: str = "127.0.0.1"
    port: int = 162
    rate_per_s: float = 5.0
    burst: int = 20
    #: communities accepted from any inventory device, beyond each device's own (masked in repr)
    communities: list[SecretValue] = field(default_factory=list)
    engine_id: bytes | None = None
    #: at most one trap-triggered poll per device per this many seconds
    poll_gap_s: float = 1.0
    #: how often the service emits the ``trap_receiver`` counters
    stats_interval_s: float = 10.0


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"listen must look like HOST:PORT (e.g. 0.0.0.0:162); got {text!r}")
    return host.strip("[]"), int(port)


def usm_users(targets: list[Target]) -> tuple[list[UsmUser], list[str]]:
    """One USM user per distinct v3 credential among ``targets`` (keys computed once), and problems."""
    users: dict[tuple, UsmUser] = {}
    problems: list[str] = []
    for t in targets:
        if t.protocol != "snmp" or not t.options.get("user"):
            continue
        try:
            cred = v3_credentials(t)
        except SnmpEngineError as exc:
            problems.append(str(exc))
            continue
        engines = frozenset(bytes.fromhex(e) for e in t.options.get("trap_engine_ids", ()))
        key = (cred.cache_key(), engines)
        if key in users:
            continue
        try:
            users[key] = UsmUser.from_passphrases(cred.user, cred.auth_protocol, cred.auth_key, cred.priv_protocol,
                                                  cred.priv_key, cred.key_expansion, engines)
        except ValueError as exc:
            problems.append(f"{t.device_id}: {exc}")
    return list(users.values()), problems


class TrapListener(asyncio.DatagramProtocol):
    """Receives traps/informs on one UDP socket; emits samples; asks for polls."""

    def __init__(self, targets: list[Target], emit: Callable[[list[Sample]], None], *,
                 settings: TrapSettings | None = None, catalog: TrapCatalog | None = None,
                 poll_now: Callable[[str], bool] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or TrapSettings()
        users, problems = usm_users(targets)
        for p in problems:
            log.error("trap receiver: %s (that user's traps are refused)", p)
        self.index = DeviceIndex(targets, [c.reveal().encode() for c in self.settings.communities])
        self.clock = clock
        self.receiver = TrapReceiver(self.index, users, engine_id=self.settings.engine_id, started_s=clock())
        self.catalog = catalog or default_catalog()
        self.limiter = TrapLimiter(self.settings.rate_per_s, self.settings.burst,
                                   max_senders=max(10_000, 2 * len(targets)))
        self.emit = emit
        self.poll_now = poll_now
        self.transport: asyncio.DatagramTransport | None = None
        self.samples_emitted = 0
        self.polls_requested = 0
        self._last_poll: dict[str, float] = {}
        #: called with every Received (``dcim traps listen`` prints them; tests count them)
        self.watchers: list[Callable[[Received, tuple], None]] = []

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> "TrapListener":
        loop = asyncio.get_running_loop()
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # absorb bursts (storms, many PDUs at once)
        except OSError:
            pass
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" if port < 1024 else ""
            raise TrapListenError(f"trap receiver cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
        sock.setblocking(False)
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        log.info("trap receiver listening on %s:%d (%d SNMP devices, %d USM users)", host, self.port,
                 self.index.devices, sum(len(v) for v in self.receiver.users.values()))
        return self

    @property
    def port(self) -> int:
        if self.transport is None:
            return self.settings.port
        return self.transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable for a reply
        log.debug("trap socket: %s", exc)

    # -- hot path -----------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr) -> None:
        now = self.clock()
        sender = str(addr[0])
        if not self.limiter.allow(sender, now):
            target, _ = self.index.lookup(sender)
            if target is not None:
                self._request_poll(target.device_id, now)  # the poll still tells the device's real state
            return
        try:
            r = self.receiver.handle(data, addr, now)
        except Exception:  # a receiver bug must not stop the socket
            log.exception("trap from %s: receiver failed", sender)
            return
        if r.reply is not None and self.transport is not None:
            self.transport.sendto(r.reply, addr)
        for w in self.watchers:
            w(r, addr)
        if r.notification is None or r.target is None:
            return
        suppressed = self.limiter.take_suppressed(sender)
        try:
            samples, d = self.catalog.samples(r.notification, r.target.tags, now_ns(),
                                              extra_fields={"suppressed": suppressed} if suppressed else None)
        except Exception:  # a mapping bug must not stop the socket; the poll still tells the state
            log.exception("trap from %s (%s): mapping to samples failed", sender, r.target.device_id)
            samples, d = [], None
        self.samples_emitted += len(samples)
        try:
            self.emit(samples)
        except Exception:
            log.exception("trap samples of %s: consumer failed", r.target.device_id)
        if d is None or d.poll:
            self._request_poll(r.target.device_id, now)

    def _request_poll(self, device_id: str, now: float) -> None:
        if self.poll_now is None:
            return
        last = self._last_poll.get(device_id)
        if last is not None and now - last < self.settings.poll_gap_s:
            return
        if len(self._last_poll) > 200_000:
            self._last_poll.clear()
        self._last_poll[device_id] = now
        if self.poll_now(device_id):
            self.polls_requested += 1

    # -- observability -----------------------------------------------------------------
    def stats_sample(self, tags: dict[str, str], time_ns: int | None = None) -> Sample:
        """Receiver counters (cumulative) as one ``trap_receiver`` sample."""
        s = self.receiver.stats
        fields: dict = {"received": s.received + self.limiter.limited, "accepted": s.accepted,
                        "informs_acked": s.informs_acked, "reports_sent": s.reports_sent,
                        "rate_limited": self.limiter.limited, "samples": self.samples_emitted,
                        "polls_requested": self.polls_requested}
        for k, v in s.refused.items():
            fields[f"refused_{k}"] = v
        return Sample(STATS_MEASUREMENT, dict(tags), fields, time_ns or now_ns())
