"""A small Modbus TCP server (one "gateway" port, many unit ids) for the twin.

Read functions only (1, 2, 3, 4), which is all a monitoring system sends.
Registers a unit does not hold answer exception 2 (illegal data address), an
unknown unit id answers nothing (gateway timeout), as real gateways do.  Far
cheaper than a general server: a request is a dict lookup per register.
"""
from __future__ import annotations

import asyncio
import random
import struct
from typing import Callable

__all__ = ["ModbusGateway", "UnitImage"]

FUNCTIONS = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}


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

    async def start(self, host: str, port: int) -> "ModbusGateway":
        self.server = await asyncio.start_server(self._serve, host, port)
        return self

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(7)
                tid, proto, length, unit = struct.unpack(">HHHB", head)
                if length < 2 or length > 256:
                    return
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                mode = self.behaviour(unit)
                if mode == "no_answer":
                    continue
                if mode == "garbage":
                    writer.write(bytes(random.getrandbits(8) for _ in range(12)))
                    await writer.drain()
                    continue
                reply = self.respond(unit, pdu)
                if reply is None:
                    continue
                if mode == "slow":
                    await asyncio.sleep(self.slow_s)
                writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

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
