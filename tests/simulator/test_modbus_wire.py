"""The twin's Modbus TCP gateway on the wire: MBAP frames in, frames out, in order, on one connection.

Raw sockets against a real :class:`ModbusGateway`: replies carry the request's transaction and
unit ids and the registers of the unit's image; frames cut anywhere or sent back to back are
answered in order; an unknown unit or ``no_answer`` gets nothing and the connection serves the
next frame; ``slow`` holds its answer (and those behind it); ``garbage`` is 12 random bytes; a
frame whose MBAP length is out of range closes the connection; ``stop()`` closes open ones.
"""
from __future__ import annotations

import asyncio
import struct
import time

from simulator.modbus_server import ModbusGateway, UnitImage
from testkit.wire import exchange, run_bounded


def _image() -> UnitImage:
    img = UnitImage()
    img.tables["holding"] = {a: (a * 7919) & 0xFFFF for a in range(100)}
    img.tables["coil"] = {a: a % 3 == 0 for a in range(40)}
    return img


def _req(tid: int, unit: int, fc: int, address: int, count: int, length: int | None = None) -> bytes:
    pdu = struct.pack(">BHH", fc, address, count)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1 if length is None else length, unit) + pdu


def _frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def _regs(img: UnitImage, address: int, count: int) -> bytes:
    return bytes([3, 2 * count]) + struct.pack(f">{count}H", *(img.tables["holding"][a] for a in range(address, address + count)))


def test_frames_back_to_back_or_cut_anywhere_are_answered_in_order():
    img = _image()

    async def go():
        gw = await ModbusGateway(lambda unit: img if unit in (1, 2) else None).start("127.0.0.1", 0)
        port = gw.server.sockets[0].getsockname()[1]
        try:
            reqs = [_req(1, 1, 3, 0, 10), _req(2, 2, 3, 90, 10), _req(3, 1, 1, 0, 20), _req(4, 1, 3, 95, 10),
                    _req(5, 9, 3, 0, 1), _req(6, 1, 3, 0, 126), _req(7, 1, 8, 0, 1), _req(8, 2, 3, 50, 1)]
            bits = bytearray(3)
            for i in range(20):
                if img.tables["coil"][i]:
                    bits[i // 8] |= 1 << (i % 8)
            want = (_frame(1, 1, _regs(img, 0, 10)) + _frame(2, 2, _regs(img, 90, 10))
                    + _frame(3, 1, bytes([1, 3]) + bytes(bits)) + _frame(4, 1, bytes([0x83, 2]))  # past the image
                    # unit 9 is not behind this gateway: nothing (a gateway timeout for the poller)
                    + _frame(6, 1, bytes([0x83, 3])) + _frame(7, 1, bytes([0x88, 1])) + _frame(8, 2, _regs(img, 50, 1)))
            stream = b"".join(reqs)
            got, closed = await exchange(port, [stream], want=len(want))
            assert got == want and not closed
            cuts = [stream[:3], stream[3:13], stream[13:14], stream[14:]]  # inside an MBAP header, across frames
            got, _ = await exchange(port, cuts, want=len(want))
            assert got == want
            assert gw.requests == 16
            got, closed = await exchange(port, [_req(9, 1, 3, 0, 1, length=1) + _req(10, 1, 3, 0, 1)])
            assert (got, closed) == (b"", True)  # an MBAP length under 2: closed, nothing after it read
            got, closed = await exchange(port, [_req(11, 1, 3, 0, 1, length=257)])
            assert (got, closed) == (b"", True)
        finally:
            await gw.stop()
    run_bounded(go())


def test_fault_behaviours_per_unit_on_one_connection():
    img = _image()
    modes = {2: "no_answer"}

    async def go():
        gw = await ModbusGateway(lambda unit: img, lambda unit: modes.get(unit, "ok"), slow_s=0.4).start("127.0.0.1", 0)
        port = gw.server.sockets[0].getsockname()[1]
        try:
            ok1, ok3 = _frame(1, 1, _regs(img, 0, 2)), _frame(3, 1, _regs(img, 4, 2))
            got, closed = await exchange(port, [_req(1, 1, 3, 0, 2) + _req(2, 2, 3, 0, 2) + _req(3, 1, 3, 4, 2)],
                                          want=len(ok1) + len(ok3))
            assert got == ok1 + ok3 and not closed  # the silent unit holds nothing back

            modes[2] = "slow"
            slow = _frame(2, 2, _regs(img, 0, 2))
            t0 = time.monotonic()
            got, _ = await exchange(port, [_req(2, 2, 3, 0, 2) + _req(3, 1, 3, 4, 2)], want=len(slow) + len(ok3),
                                     idle_s=3.0)
            assert got == slow + ok3  # in order: the fast unit's answer waits behind the slow one
            assert time.monotonic() - t0 >= 0.4

            modes[2] = "garbage"
            got, closed = await exchange(port, [_req(2, 2, 3, 0, 2) + _req(3, 1, 3, 4, 2)], want=12 + len(ok3))
            assert len(got) == 12 + len(ok3) and got.endswith(ok3) and not closed
            assert gw.requests == 7
        finally:
            await gw.stop()
    run_bounded(go())


def test_stop_closes_open_connections():
    img = _image()

    async def go():
        gw = await ModbusGateway(lambda unit: img).start("127.0.0.1", 0)
        port = gw.server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_req(1, 1, 3, 0, 1))
        want = _frame(1, 1, _regs(img, 0, 1))
        assert await reader.readexactly(len(want)) == want
        await gw.stop()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    run_bounded(go())
