"""ModbusCollector: profile -> plan -> reads through shared gateways -> Samples.

The I/O here is thin: decoding lives in ``decode.py``, coalescing in ``plan.py``,
connections in ``gateway.py``.  What this module adds is per-device memory: the
read plan of each device, which is replaced by a finer one when the device
refuses a range (illegal data address), so the fall-back is learned once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collectors.base import Collector, PollError, Target
from collectors.modbus.block import BlockDecoder
from collectors.modbus.gateway import Gateway, GatewayKey, ReadFailed
from collectors.modbus.plan import DEFAULT_MAX_GAP, MAX_REGISTERS, Item, Request, plan_requests, split_request
from collectors.modbus.profile import Profile, ProfileError, load_profile, profile_names
from contract.sample import Sample, now_ns
from contract.protocols import PROTOCOLS, protocol, served_by

__all__ = ["ModbusCollector", "DEFAULT_PORT"]

log = logging.getLogger(__name__)
DEFAULT_PORT = PROTOCOLS["modbus"].default_port  # Modbus TCP


@dataclass(slots=True)
class _DeviceState:
    """What the collector has learned about one device: its current read plan."""

    plan: list[Request]
    blocks: list[BlockDecoder] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # points the device refuses even alone
    splits: int = 0


def build_plan(profile: Profile, *, max_gap: int | None = None, max_registers: int | None = None) -> list[Request]:
    """The initial read plan for a profile (target options override profile limits)."""
    gap = max_gap if max_gap is not None else (profile.max_gap if profile.max_gap is not None else DEFAULT_MAX_GAP)
    regs = max_registers or profile.max_registers or MAX_REGISTERS
    items = []
    for i, p in enumerate(profile.points):
        items.append((p.function, Item(
            address=p.address, width=p.width, decoder=p.decoder(),
            measurement=p.measurement or profile.measurement, tags=tuple(sorted(p.tags.items())), index=i,
        )))
    return plan_requests(items, max_gap=gap, max_registers=regs)


def _int_option(target: Target, name: str, default: int) -> int:
    raw = target.options.get(name, default)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise PollError("config", f"{target.device_id}: option {name}={raw!r} is not an integer") from None


class ModbusCollector(Collector):
    """Polls Modbus TCP, RTU-over-TCP and RTU serial devices described by YAML profiles.

    Options read from ``target.options``: ``max_in_flight`` (TCP connections per
    gateway, default 4), ``max_gap`` and ``max_registers`` (coalescing), and for
    serial ``baud`` (9600), ``parity`` (N), ``stopbits`` (1), ``bytesize`` (8).
    """

    protocols = served_by(f"{__name__}:ModbusCollector")  # its rows in contract/protocols.py

    def __init__(self) -> None:
        self._gateways: dict[GatewayKey, Gateway] = {}
        self._devices: dict[tuple, _DeviceState] = {}

    # -- wiring -------------------------------------------------------------
    def _gateway(self, target: Target) -> Gateway:
        if target.protocol not in self.protocols:
            raise PollError("config", f"{target.device_id}: protocol {target.protocol!r} is not Modbus")
        row = protocol(target.protocol)
        if row.needs_serial:
            o = target.options
            serial = (
                _int_option(target, "baud", 9600), str(o.get("parity", "N")).upper()[:1],
                _int_option(target, "stopbits", 1), _int_option(target, "bytesize", 8),
            )
            port = str(o.get("serial") or target.host)
            if not port:
                raise PollError("config", f"{target.device_id}: {target.protocol} needs a serial port (host or options.serial)")
            key = GatewayKey(target.protocol, port, 0, serial)
        else:
            if not target.host:
                raise PollError("config", f"{target.device_id}: no host")
            key = GatewayKey(target.protocol, target.host, target.port or row.default_port)
        gw = self._gateways.get(key)
        if gw is None:
            gw = Gateway(key, max_in_flight=_int_option(target, "max_in_flight", 4),
                         connect_timeout_s=max(target.timeout_s, 1.0))
            self._gateways[key] = gw
        return gw

    def _profile(self, target: Target) -> Profile:
        name = target.profile or "auto"
        if name == "auto":
            name = str(target.options.get("profile", "auto"))
        if name == "auto":
            raise PollError(
                "config",
                f"{target.device_id}: Modbus devices cannot be identified automatically; "
                f"name a profile (known: {', '.join(profile_names())})",
            )
        try:
            return load_profile(name)
        except ProfileError as exc:
            raise PollError("config", str(exc)) from None

    def _state(self, target: Target, profile: Profile, gw: Gateway) -> _DeviceState:
        key = (gw.key, target.unit, profile.name, target.device_id)
        st = self._devices.get(key)
        if st is None:
            plan = build_plan(
                profile,
                max_gap=_int_option(target, "max_gap", DEFAULT_MAX_GAP) if "max_gap" in target.options else None,
                max_registers=(_int_option(target, "max_registers", MAX_REGISTERS)
                               if "max_registers" in target.options else None),
            )
            st = _DeviceState(plan=plan, blocks=[BlockDecoder(r) for r in plan])
            self._devices[key] = st
        return st

    def plan_for(self, target: Target) -> list[Request]:
        """The read plan currently used for ``target`` (after any learned splits)."""
        profile = self._profile(target)
        return list(self._state(target, profile, self._gateway(target)).plan)

    # -- polling ------------------------------------------------------------
    async def poll(self, target: Target) -> list[Sample]:
        gw = self._gateway(target)
        profile = self._profile(target)
        st = self._state(target, profile, gw)
        unit = 1 if target.unit is None else target.unit
        if not 0 <= unit <= 255:
            raise PollError("config", f"{target.device_id}: unit id {unit} out of range 0..255")
        timeout = target.timeout_s
        tries = 1 + max(0, target.retries)

        groups: dict[tuple, dict] = {}
        errors: list[tuple[str, str]] = []
        last_reply = 0
        queue = list(zip(st.plan, st.blocks))
        new_plan: list[tuple[Request, BlockDecoder]] = []
        changed = False
        aborted = False
        while queue:
            req, block = queue.pop(0)
            if aborted:
                new_plan.append((req, block))
                continue
            values = None
            failure: ReadFailed | None = None
            for attempt in range(tries):
                try:
                    values = await gw.read(req.function, req.address, req.count, unit, timeout)
                    break
                except ReadFailed as exc:
                    if exc.kind == "timeout" and attempt + 1 < tries:
                        continue
                    failure = exc
                    break
            if values is None:
                assert failure is not None
                if failure.code == 2:
                    pieces = split_request(req)
                    changed = True
                    if pieces:
                        st.splits += 1
                        log.info("%s: %s refused (illegal data address); splitting into %d reads",
                                 target.device_id, req.describe(), len(pieces))
                        queue[0:0] = [(p, BlockDecoder(p)) for p in pieces]
                    else:
                        it = req.items[0]
                        what = f"{req.describe()} ({it.decoder.field or 'bits'})"
                        st.rejected.append(what)
                        errors.append(("device", f"{target.address()}: {what}: Modbus exception 2 "
                                                 "(ILLEGAL_DATA_ADDRESS); the point is dropped from this device's plan"))
                    continue
                new_plan.append((req, block))
                errors.append((failure.kind, f"{target.address()}: {req.describe()}: {failure.message}"))
                if failure.kind in ("timeout", "unreachable", "protocol"):
                    aborted = True  # the unit or link is gone: do not spend more timeouts on it
                continue
            new_plan.append((req, block))
            last_reply = now_ns()
            block.decode(values, groups, lambda it, exc, fn=req.function: errors.append(
                ("decode", f"{target.address()}: points[{it.index}] at {fn} {it.address}: {exc}")))
        if changed:
            st.plan = [r for r, _ in new_plan]
            st.blocks = [b for _, b in new_plan]

        samples = []
        for (measurement, ptags), fields in groups.items():
            if not fields:
                continue
            tags = dict(target.tags)
            tags.update(ptags)
            samples.append(Sample(measurement, tags, fields, last_reply))
        if errors:
            kind = errors[0][0]
            msg = "; ".join(m for _, m in errors[:5])
            if len(errors) > 5:
                msg += f"; and {len(errors) - 5} more"
            raise PollError(kind, msg, partial=samples)
        return samples

    async def close(self) -> None:
        for gw in self._gateways.values():
            await gw.close()
        self._gateways.clear()
