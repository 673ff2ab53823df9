"""A small Modbus TCP server (one "gateway" port, many unit ids) for the twin.

Read functions only (1, 2, 3, 4), which is all a monitoring system sends.
Registers a unit does not hold answer exception 2 (illegal data address), an
unknown unit id answers nothing (gateway timeout), as real gateways do.  Far
cheaper than a general server: a request is a dict lookup per register, and
the connection is an ``asyncio.Protocol`` that answers the frames it received in
the same callback.
"""
from __future__ import annotations

import asyncio
import random
import struct
from typing import Callable

from simulator.served import ServedConnection, stop_serving

__all__ = ["ModbusGateway", "UnitImage"]

FUNCTIONS = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id + PDU), unit id
_MAX_WAITING = 64 * 1024  # requests held behind a slow answer before reading pauses


class UnitImage:
    """What one unit id holds: 16-bit registers and bits per function, 0-based addresses."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[int, int]] = {"holding": {}, "input": {}, "coil": {}, "discrete": {}}


class ModbusGateway:
    def __init__(self, units: Callable[[int], UnitImage | None], behaviour: Callable[[int], str] = lambda unit: "ok",
                 slow_s: float = 3.0) -> None:
        self.units = units
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.server: asyncio.AbstractServer | None = None
        self.requests = 0
        self._open: set[_ModbusConnection] = set()

    async def start(self, host: str, port: int) -> "ModbusGateway":
        self.server = await asyncio.get_running_loop().create_server(lambda: _ModbusConnection(self), host, port)
        return self

    async def stop(self) -> None:
        await stop_serving(self.server, self._open)

    def respond(self, unit: int, pdu: bytes) -> bytes | None:
        image = self.units(unit)
        if image is None:
            return None
        fc = pdu[0]
        if fc not in FUNCTIONS or len(pdu) < 5:
            return bytes([fc | 0x80, 1])
        address, count = struct.unpack(">HH", pdu[1:5])
        table = image.tables[FUNCTIONS[fc]]
        if fc in (1, 2):
            if not 1 <= count <= 2000 or any(a not in table for a in range(address, address + count)):
                return bytes([fc | 0x80, 2])
            bits = bytearray((count + 7) // 8)
            for i in range(count):
                if table[address + i]:
                    bits[i // 8] |= 1 << (i % 8)
            return bytes([fc, len(bits)]) + bytes(bits)
        if not 1 <= count <= 125:
            return bytes([fc | 0x80, 3])
        try:
            regs = [table[a] for a in range(address, address + count)]
        except KeyError:
            return bytes([fc | 0x80, 2])
        return bytes([fc, 2 * count]) + struct.pack(f">{count}H", *regs)


class _ModbusConnection(ServedConnection):
    """One poller's connection: MBAP frames parsed from a buffer and answered in the callback that
    received them (no task woken per request, as a stream reader would); in order, so a slow
    answer holds back the requests behind it, as one gateway serving a socket does.

    A frame whose MBAP length is under 2 or over 256 closes the connection; ``no_answer`` and an
    unknown unit id answer nothing, ``garbage`` answers 12 random bytes, and the connection stays
    open for the next request in each case, as before."""

    __slots__ = ("gw", "_buf", "_waiting", "_eof")

    def __init__(self, gw: ModbusGateway) -> None:
        super().__init__(gw._open)
        self.gw = gw
        self._buf = b""
        self._waiting = False
        self._eof = False

    def data_received(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data
        if not self._waiting:
            self._serve()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._waiting:
            self.close()  # what is left is an unfinished frame
        return True  # half-open until the slow answer due has gone

    def _serve(self) -> None:
        buf, off, gw = self._buf, 0, self.gw
        while len(buf) - off >= 7:
            tid, _, length, unit = _MBAP.unpack_from(buf, off)
            if length < 2 or length > 256:
                self._buf = b""
                self.close()
                return
            end = off + 6 + length
            if len(buf) < end:
                break
            pdu = buf[off + 7:end]
            off = end
            gw.requests += 1
            mode = gw.behaviour(unit)
            if mode == "no_answer":
                continue
            if mode == "garbage":
                self.transport.write(random.randbytes(12))
                continue
            reply = gw.respond(unit, pdu)
            if reply is None:
                continue
            frame = _MBAP.pack(tid, 0, len(reply) + 1, unit) + reply
            if mode == "slow":  # one timer; the requests behind it wait in the buffer
                self._buf = buf[off:]
                self._waiting = True
                self._timer = asyncio.get_running_loop().call_later(gw.slow_s, self._late, frame)
                if len(self._buf) > _MAX_WAITING:
                    self.transport.pause_reading()
                return
            self.transport.write(frame)
        self._buf = buf[off:] if off else buf

    def _late(self, frame: bytes) -> None:
        self._timer = None
        self._waiting = False
        if self.transport.is_closing():
            return
        self.transport.write(frame)
        self.transport.resume_reading()
        self._serve()
        if self._eof and not self._waiting:
            self.close()
