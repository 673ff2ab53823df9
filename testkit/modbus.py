"""Real pymodbus servers for tests and the benchmark, on free loopback ports.

Register images are built from *device* values (what the vendor's manual says the
device sends: 230.1 V as float32, 715 tenths of degF as int32...) by :func:`encode`,
which packs bytes with ``struct`` per byte/word order and is deliberately written
apart from the collector's decoder (``collectors/modbus/orders.py`` reverses
register lists; this packs little/big-endian bytes and swaps byte pairs).

:class:`ModbusTestServer` runs a pymodbus 3 server in a thread with its own event
loop.  Units can be made dead (accept the request, never answer) or failing
(answer a Modbus exception), and every request received is counted per unit so
tests can check what the collector asked for.  ``python -m testkit.modbus`` runs
the same server as a subprocess (the benchmark uses it so that server CPU is not
counted against the collector).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from collectors.modbus.orders import encode
from localservers.process import ServerStartError, free_port

__all__ = ["encode", "DeviceImage", "ModbusTestServer", "GarbageServer"]

@dataclass
class DeviceImage:
    """What one unit id holds: registers and bits by function, 0-based PDU addresses.

    ``dense=False`` (the default) defines only the written addresses, so a read
    that covers an unmapped register is refused with illegal data address, as
    strict devices do.  ``dense=True`` fills the span between with zeros.
    """

    holding: dict[int, int] = field(default_factory=dict)
    input: dict[int, int] = field(default_factory=dict)
    coil: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)
    dense: bool = False

    def put(self, function: str, address: int, value, type_name: str = "uint16", order: str = "ABCD") -> "DeviceImage":
        """Store a device value at ``address`` encoded as the device would send it."""
        table = getattr(self, function)
        if function in ("coil", "discrete"):
            table[address] = bool(value)
            return self
        for i, reg in enumerate(encode(value, type_name, order)):
            table[address + i] = reg
        return self

    def put_registers(self, function: str, address: int, regs: Iterable[int]) -> "DeviceImage":
        table = getattr(self, function)
        for i, reg in enumerate(regs):
            table[address + i] = reg & 0xFFFF
        return self


def _runs(table: dict[int, int], dense: bool) -> list[tuple[int, list]]:
    if not table:
        return []
    addrs = sorted(table)
    if dense:
        return [(addrs[0], [table.get(a, 0) for a in range(addrs[0], addrs[-1] + 1)])]
    runs: list[tuple[int, list]] = []
    start = prev = addrs[0]
    vals = [table[start]]
    for a in addrs[1:]:
        if a == prev + 1:
            vals.append(table[a])
        else:
            runs.append((start, vals))
            start, vals = a, [table[a]]
        prev = a
    runs.append((start, vals))
    return runs


class ModbusTestServer:
    """A pymodbus server in a background thread (TCP, or RTU framing over TCP).

    ``dead_units`` accept requests and never answer; ``failing_units`` maps a unit
    to the Modbus exception code it answers every read with.  ``requests`` counts
    reads received: ``{(unit, function_code, address, count): n}``.
    """

    def __init__(self, devices: dict[int, DeviceImage], *, framer: str = "socket",
                 dead_units: Iterable[int] = (), failing_units: dict[int, int] | None = None,
                 delay_s: float = 0.0, port: int | None = None) -> None:
        self.devices = devices
        self.framer = framer
        self.dead_units = set(dead_units)
        self.failing_units = dict(failing_units or {})
        self.delay_s = delay_s
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.requests: Counter = Counter()
        self.connections = 0       # TCP connections accepted so far
        self.open_connections = 0  # connected now
        self.max_open_connections = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- counting --------------------------------------------------------------
    def _trace_pdu(self, sending: bool, pdu):
        if not sending:
            with self._lock:
                self.requests[(pdu.dev_id, pdu.function_code, getattr(pdu, "address", 0), getattr(pdu, "count", 0))] += 1
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        with self._lock:
            if connected:
                self.connections += 1
                self.open_connections += 1
                self.max_open_connections = max(self.max_open_connections, self.open_connections)
            else:
                self.open_connections -= 1

    def count(self, unit: int | None = None) -> int:
        with self._lock:
            return sum(n for k, n in self.requests.items() if unit is None or k[0] == unit)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- server ----------------------------------------------------------------
    def _sim_devices(self):
        from pymodbus.constants import ExcCodes
        from pymodbus.simulator import DataType, SimData, SimDevice

        async def action(unit, *_args):
            if unit in self.dead_units:
                await asyncio.sleep(3600)
            if unit in self.failing_units:
                return ExcCodes(self.failing_units[unit])
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return None

        sims = []
        for unit, img in self.devices.items():
            def block(table, bits):
                runs = _runs(table, img.dense)
                if not runs:  # pymodbus wants every block non-empty: one unreachable cell
                    return [SimData(65535, values=[False] if bits else [0], datatype=DataType.BITS if bits else DataType.REGISTERS)]
                return [SimData(a, values=v, datatype=DataType.BITS if bits else DataType.REGISTERS) for a, v in runs]
            sims.append(SimDevice(
                id=unit,
                simdata=(block(img.coil, True), block(img.discrete, True), block(img.holding, False), block(img.input, False)),
                action=functools.partial(action, unit),
            ))
        return sims

    def _run(self, ready: threading.Event) -> None:
        from pymodbus import FramerType
        from pymodbus.server import ModbusTcpServer

        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            framer = FramerType.RTU if self.framer == "rtu" else FramerType.SOCKET

            async def serve():
                self._server = ModbusTcpServer(self._sim_devices(), framer=framer, address=(self.host, self.port),
                                               trace_pdu=self._trace_pdu, trace_connect=self._trace_connect)
                await self._server.serve_forever(background=True)  # returns once listening
                ready.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._server.serving

            loop.run_until_complete(serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            ready.set()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def start(self) -> "ModbusTestServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"modbus-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._error is not None:
            raise ServerStartError(f"pymodbus server on {self.host}:{self.port} failed: {self._error!r}")
        if not ready.is_set():
            raise ServerStartError(f"pymodbus server on {self.host}:{self.port} did not start listening in 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._thread and self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            try:
                fut.result(10)
            except Exception:
                pass
            self._thread.join(10)

    def __enter__(self) -> "ModbusTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GarbageServer:
    """A TCP listener that answers every request with bytes that are not Modbus."""

    def __init__(self, reply: bytes = b"\x00\x01\x00\x00\x00\x03\x01\x03\xff\x00garbage!") -> None:
        self.reply = reply
        self.host = "127.0.0.1"
        self.sock = socket.socket()
        self.sock.bind((self.host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        conns = []
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.settimeout(0.2)
                conns.append(conn)
            except OSError:
                pass
            for c in list(conns):
                try:
                    if c.recv(512):
                        c.sendall(self.reply)
                    else:
                        conns.remove(c)
                except socket.timeout:
                    continue
                except OSError:
                    conns.remove(c)
        for c in conns:
            c.close()

    def __enter__(self) -> "GarbageServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def main(argv: list[str] | None = None) -> None:
    """Serve ``--units`` unit ids, each with ``--registers`` holding registers of known values."""
    ap = argparse.ArgumentParser(description="pymodbus test server (dense holding registers)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--units", type=int, default=10)
    ap.add_argument("--registers", type=int, default=125)
    ap.add_argument("--framer", default="socket", choices=("socket", "rtu"))
    args = ap.parse_args(argv)
    devices = {
        u: DeviceImage(dense=True).put_registers("holding", 0, [(u * 1000 + i) & 0xFFFF for i in range(args.registers)])
        for u in range(1, args.units + 1)
    }
    srv = ModbusTestServer(devices, framer=args.framer, port=args.port).start()
    print(f"listening 127.0.0.1:{srv.port}", flush=True)
    try:
        while srv._thread and srv._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
