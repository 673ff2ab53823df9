"""Connections to Modbus gateways, shared by every unit behind them.

One :class:`Gateway` per TCP endpoint or serial port.  It holds a small pool of
pymodbus async clients: ``max_in_flight`` connections for Modbus TCP (the MBAP
transaction id lets a gateway answer several clients; many gateways allow 2-8),
exactly one for RTU (a serial bus carries one request at a time, and RTU frames
have no transaction id to match replies).  A request holds one client for at
most its own timeout, so a dead unit only ever blocks one slot for that long.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from contract.protocols import protocol

__all__ = ["Gateway", "GatewayKey", "ReadFailed", "EXCEPTION_NAMES"]

log = logging.getLogger(__name__)

#: Modbus exception codes (Modbus Application Protocol v1.1b3, section 7)
EXCEPTION_NAMES: dict[int, str] = {
    1: "ILLEGAL_FUNCTION",
    2: "ILLEGAL_DATA_ADDRESS",
    3: "ILLEGAL_DATA_VALUE",
    4: "SERVER_DEVICE_FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER_DEVICE_BUSY",
    8: "MEMORY_PARITY_ERROR",
    10: "GATEWAY_PATH_UNAVAILABLE",
    11: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """What makes two targets share a connection: transport and endpoint."""

    protocol: str          # modbus | modbus-rtutcp | modbus-rtu
    host: str              # host, or serial device path for modbus-rtu
    port: int = 0
    serial: tuple = ()     # (baudrate, parity, stopbits, bytesize) for modbus-rtu


class ReadFailed(Exception):
    """A read that did not return data.  ``kind`` is a PollError kind; ``code`` the Modbus exception code."""

    def __init__(self, kind: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code


class _Heard:
    """pymodbus's ``trace_packet`` hook: notes that bytes came back, so a read that ends
    without a valid frame can say "garbage" (``protocol``) rather than "silence" (``timeout``)."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.bytes += len(data)
        return data


_READ = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


class Gateway:
    """A pool of connections to one endpoint; ``read`` is the only operation."""

    def __init__(self, key: GatewayKey, max_in_flight: int = 4, connect_timeout_s: float = 3.0) -> None:
        self.key = key
        self.size = 1 if protocol(key.protocol).rtu else max(1, int(max_in_flight))
        self.connect_timeout_s = connect_timeout_s
        self._idle: asyncio.Queue = asyncio.Queue()
        self._created = 0
        self.requests = 0

    def _new_client(self):
        k = self.key
        # pymodbus's own timeout is only a backstop: the collector enforces each
        # target's timeout with asyncio.wait_for, and retries itself.  Keeping
        # pymodbus's longer prevents its "N timeouts -> close the connection"
        # rule from dropping a shared connection because one unit is dead.
        heard = _Heard()
        common = dict(timeout=60.0, retries=0, reconnect_delay=0, name=f"dcim-{k.protocol}", trace_packet=heard)
        row = protocol(k.protocol)
        if not row.needs_serial:
            framer = FramerType.RTU if row.rtu else FramerType.SOCKET
            client = AsyncModbusTcpClient(k.host, port=k.port, framer=framer, **common)
        else:
            baud, parity, stopbits, bytesize = k.serial
            client = AsyncModbusSerialClient(
                k.host, framer=FramerType.RTU, baudrate=baud, parity=parity, stopbits=stopbits, bytesize=bytesize, **common
            )
        client.dcim_heard = heard
        return client

    async def _acquire(self):
        if self._idle.empty() and self._created < self.size:
            self._created += 1
            return self._new_client()
        return await self._idle.get()

    async def _connected(self, client) -> None:
        if client.connected:
            return
        try:
            ok = await asyncio.wait_for(client.connect(), self.connect_timeout_s)
        except asyncio.TimeoutError:
            ok = False
        except OSError as exc:
            raise ReadFailed("unreachable", f"cannot connect to {self.describe()}: {exc.strerror or exc}") from None
        if not ok:
            client.close()
            raise ReadFailed("unreachable", f"cannot connect to {self.describe()}")

    def describe(self) -> str:
        k = self.key
        return k.host if protocol(k.protocol).needs_serial else f"{k.host}:{k.port}"

    async def read(self, function: str, address: int, count: int, unit: int, timeout_s: float) -> list:
        """Registers (ints) or bits (bools) of one read; raises :class:`ReadFailed`.

        The wait for a free connection counts against nothing: the scheduler's
        overall deadline bounds it.  The request itself gets ``timeout_s``.
        """
        client = await self._acquire()
        try:
            await self._connected(client)
            self.requests += 1
            heard = getattr(client, "dcim_heard", None)
            before = heard.bytes if heard is not None else 0
            try:
                rr = await asyncio.wait_for(
                    getattr(client, _READ[function])(address, count=count, device_id=unit), timeout_s
                )
            except asyncio.TimeoutError:
                got = (heard.bytes - before) if heard is not None else 0
                if got:
                    # bytes came back but never a valid frame: garbage, not silence; drop the
                    # connection so the next read does not start in the middle of it
                    client.close()
                    raise ReadFailed("protocol", f"unit {unit} at {self.describe()} sent {got} bytes but no valid "
                                                 f"Modbus reply within {timeout_s:g}s (garbage or wrong framing)") from None
                raise ReadFailed("timeout", f"no reply from unit {unit} at {self.describe()} within {timeout_s:g}s") from None
            except ConnectionException as exc:
                client.close()
                raise ReadFailed("unreachable", f"connection to {self.describe()} lost: {exc}") from None
            except ModbusException as exc:
                raise ReadFailed("protocol", f"bad reply from unit {unit} at {self.describe()}: {exc}") from None
            if rr.isError():
                code = getattr(rr, "exception_code", None)
                name = EXCEPTION_NAMES.get(code, "UNKNOWN")
                kind = "timeout" if code in (10, 11) else "device"
                raise ReadFailed(kind, f"unit {unit} answered Modbus exception {code} ({name})", code=code)
            if function in ("coil", "discrete"):
                bits = list(rr.bits)
                if len(bits) < count:
                    raise ReadFailed("protocol", f"unit {unit} sent {len(bits)} bits, asked for {count}")
                return bits[:count]
            regs = list(rr.registers)
            if len(regs) != count:
                raise ReadFailed("protocol", f"unit {unit} sent {len(regs)} registers, asked for {count}")
            return regs
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
        self._created = 0
