"""The twin's traps: a UPS that goes on battery (and back) says so at once, as real ones do.

With ``Twin(site, trap_to=(host, port))`` an injected ``ups_on_battery`` fault
sends UPS-MIB ``upsTrapOnBattery`` (RFC 1628 upsTraps 1, with
upsEstimatedMinutesRemaining and upsSecondsOnBattery) and clearing it sends
``upsTrapAlarmEntryRemoved`` for ``upsAlarmOnBattery`` (upsTraps 4): the
standard pair a UPS-MIB agent emits.  Each trap leaves from the device's own
inventory address, as the trap receiver maps senders by address.  Sending is
fire-and-forget UDP, like the agents it imitates.
"""
from __future__ import annotations

import itertools
import logging
import socket

from collectors.snmp.ber import INTEGER, OID
from collectors.snmp.traps.message import encode_v2c_trap

__all__ = ["TrapSender", "ON_BATTERY", "ALARM_REMOVED"]

log = logging.getLogger("dcim.twin")

ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 2, 1)
ALARM_REMOVED = (1, 3, 6, 1, 2, 1, 33, 2, 4)
_MINUTES_LEFT = (1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0)
_SECONDS_ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 1, 2, 2, 0)
_ALARM_DESCR = (1, 3, 6, 1, 2, 1, 33, 1, 6, 2, 1, 2)
_ALARM_ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 1, 6, 3, 2)


class TrapSender:
    def __init__(self, dest: tuple[str, int], community: bytes) -> None:
        self.dest = dest
        self.community = community
        self.sent = 0
        self._ids = itertools.count(1)
        self._socks: dict[str, socket.socket] = {}

    def _sock(self, host: str) -> socket.socket:
        s = self._socks.get(host)
        if s is None:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            s.setblocking(False)
            self._socks[host] = s
        return s

    def send(self, host: str, uptime_s: float, trap_oid: tuple[int, ...], varbinds: list) -> None:
        data = encode_v2c_trap(self.community, next(self._ids), int(uptime_s * 100), trap_oid, varbinds)
        try:
            self._sock(host).sendto(data, self.dest)
            self.sent += 1
        except OSError as exc:  # a receiver that is down must not stop the twin
            log.warning("twin trap from %s to %s:%d not sent: %s", host, *self.dest, exc)

    def ups_on_battery(self, host: str, uptime_s: float, runtime_s: float, on_battery_s: float) -> None:
        self.send(host, uptime_s, ON_BATTERY, [(_MINUTES_LEFT, INTEGER, int(runtime_s // 60)),
                                               (_SECONDS_ON_BATTERY, INTEGER, int(on_battery_s))])

    def ups_on_mains(self, host: str, uptime_s: float) -> None:
        self.send(host, uptime_s, ALARM_REMOVED, [(_ALARM_DESCR + (1,), OID, _ALARM_ON_BATTERY)])

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()
