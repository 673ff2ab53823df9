"""The collector against real pymodbus servers: shared gateways, dead and failing
units, illegal-address fall-back learned once, garbage replies, RTU over TCP."""
from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from collectors.base import PollError, Target
from collectors.modbus.collector import ModbusCollector
from localservers.process import free_port
from testkit.modbus import DeviceImage, GarbageServer, ModbusTestServer

CDU_PROFILE = "template_cdu"


def cdu_image(base: int) -> DeviceImage:
    """A CDU (the template layout) whose primary supply temperature tells units apart (base tenths of degC)."""
    img = DeviceImage()
    for addr in range(0, 23):
        img.put("holding", addr, 0)
    img.put("holding", 0, base, "int16")
    img.put("holding", 8, 120000 + base, "uint32")
    return img


def target(port: int, unit: int, profile: str = CDU_PROFILE, protocol: str = "modbus", timeout: float = 1.0, **options) -> Target:
    return Target(device_id=f"u{unit}", protocol=protocol, host="127.0.0.1", port=port, unit=unit,
                  profile=profile, timeout_s=timeout, retries=0, options=options, tags={"device": f"u{unit}"})


def field(samples, name, **tags):
    for s in samples:
        if all(s.tags.get(k) == v for k, v in tags.items()) and name in s.fields:
            return s.fields[name]
    raise KeyError(name)


async def timed(coro):
    t0 = time.monotonic()
    try:
        return await coro, time.monotonic() - t0
    except PollError as exc:
        return exc, time.monotonic() - t0


@pytest.mark.parametrize("framer,protocol,max_in_flight", [("socket", "modbus", 4), ("rtu", "modbus-rtutcp", 1)])
def test_dead_unit_does_not_hold_up_the_others(framer, protocol, max_in_flight):
    units = {1: cdu_image(181), 2: cdu_image(182), 3: cdu_image(183), 4: cdu_image(184)}
    timeout = 1.0
    with ModbusTestServer(units, framer=framer, dead_units=[2]) as srv:
        async def run():
            c = ModbusCollector()
            try:
                return await asyncio.gather(*(timed(c.poll(target(srv.port, u, protocol=protocol, timeout=timeout,
                                                                   max_in_flight=max_in_flight))) for u in units)), len(c._gateways)
            finally:
                await c.close()

        results, gateways = asyncio.run(run())
    assert gateways == 1, "all units behind one endpoint share one gateway"
    by_unit = dict(zip(units, results))
    dead, dead_s = by_unit[2]
    assert isinstance(dead, PollError) and dead.kind == "timeout"
    assert "unit 2" in dead.message and dead.partial == []
    assert timeout * 0.9 <= dead_s < timeout + 0.5
    for u in (1, 3, 4):
        samples, took = by_unit[u]
        assert not isinstance(samples, PollError), samples
        assert math.isclose(field(samples, "supply_temp_c", side="primary"), (180 + u) / 10)
        assert field(samples, "heat_removed_w") == 120000 + 180 + u
        # TCP: the others do not wait for the dead unit at all; RTU (one request at a
        # time on the bus) they wait at most the dead unit's own timeout once.
        limit = 0.5 if protocol == "modbus" else timeout + 0.5
        assert took < limit, f"unit {u} took {took:.2f}s"


def test_exception_code_is_a_device_error_never_zeros():
    with ModbusTestServer({1: cdu_image(200), 7: cdu_image(0)}, failing_units={7: 4}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                bad = await timed(c.poll(target(srv.port, 7)))
                good = await timed(c.poll(target(srv.port, 1)))
                return bad, good
            finally:
                await c.close()

        (bad, _), (good, _) = asyncio.run(run())
    assert isinstance(bad, PollError) and bad.kind == "device"
    assert "exception 4" in bad.message and "SERVER_DEVICE_FAILURE" in bad.message
    assert bad.partial == []
    assert field(good, "supply_temp_c", side="primary") == 20.0


def test_gateway_no_response_exception_is_a_timeout():
    with ModbusTestServer({1: cdu_image(200), 8: cdu_image(0)}, failing_units={8: 11}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                return await timed(c.poll(target(srv.port, 8)))
            finally:
                await c.close()

        err, _ = asyncio.run(run())
    assert isinstance(err, PollError) and err.kind == "timeout"
    assert "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND" in err.message


SPARSE_PROFILE = """
name: sparse_test
measurement: env
defaults: {function: holding, type: uint16}
points:
  - {field: a_pct, address: 0}
  - {field: b_pct, address: 1}
  - {field: temp_c, address: 5, type: int32, scale: 0.01}
  - {field: c_pct, address: 20}
"""


def test_illegal_address_fallback_is_learned_once(tmp_path: Path):
    prof = tmp_path / "sparse_test.yaml"
    prof.write_text(SPARSE_PROFILE)
    # Only the mapped registers exist: reading 0..6 in one go covers unmapped 2..4.
    img = DeviceImage().put("holding", 0, 11).put("holding", 1, 22).put("holding", 5, -1234, "int32").put("holding", 20, 33)
    with ModbusTestServer({3: img}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                t = target(srv.port, 3, profile=str(prof))
                first = await c.poll(t)
                after_first = dict(srv.requests)
                second = await c.poll(t)
                third = await c.poll(t)
                return first, second, third, after_first, c.plan_for(t)
            finally:
                await c.close()

        first, second, third, after_first, plan = asyncio.run(run())
    for samples in (first, second, third):
        assert samples[0].fields == {"a_pct": 11, "b_pct": 22, "temp_c": -12.34, "c_pct": 33}
    fc = 3
    # first poll: the coalesced read was refused once, then the split reads were made
    assert after_first[(3, fc, 0, 7)] == 1
    assert after_first[(3, fc, 0, 2)] == 1 and after_first[(3, fc, 5, 2)] == 1
    # later polls never try the refused range again
    assert srv.requests[(3, fc, 0, 7)] == 1
    assert srv.requests[(3, fc, 0, 2)] == 3 and srv.requests[(3, fc, 5, 2)] == 3
    assert [(r.address, r.count) for r in plan] == [(0, 2), (5, 2), (20, 1)]


def test_point_refused_alone_is_reported_once_then_dropped(tmp_path: Path):
    prof = tmp_path / "missing_point.yaml"
    prof.write_text(SPARSE_PROFILE.replace("name: sparse_test", "name: missing_point"))
    img = DeviceImage().put("holding", 0, 11).put("holding", 1, 22).put("holding", 20, 33)  # no register 5
    with ModbusTestServer({4: img}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                t = target(srv.port, 4, profile=str(prof))
                first = await timed(c.poll(t))
                second = await timed(c.poll(t))
                return first[0], second[0]
            finally:
                await c.close()

        first, second = asyncio.run(run())
    assert isinstance(first, PollError) and first.kind == "device"
    assert "ILLEGAL_DATA_ADDRESS" in first.message and "temp_c" in first.message
    assert first.partial[0].fields == {"a_pct": 11, "b_pct": 22, "c_pct": 33}
    assert second[0].fields == {"a_pct": 11, "b_pct": 22, "c_pct": 33}
    assert srv.requests[(4, 3, 5, 2)] == 1


def test_nan_reading_is_a_decode_error_not_a_value(tmp_path: Path):
    prof = tmp_path / "nan.yaml"
    prof.write_text("name: nan\nmeasurement: meter\npoints:\n"
                    "  - {field: voltage_v, address: 0, type: float32}\n  - {field: current_a, address: 2, type: float32}\n")
    img = DeviceImage().put("holding", 0, float("nan"), "float32").put("holding", 2, 4.5, "float32")
    with ModbusTestServer({1: img}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                return await timed(c.poll(target(srv.port, 1, profile=str(prof))))
            finally:
                await c.close()

        err, _ = asyncio.run(run())
    assert isinstance(err, PollError) and err.kind == "decode"
    assert err.partial[0].fields == {"current_a": 4.5}


def test_garbage_reply_is_a_flagged_error_within_the_timeout():
    with GarbageServer() as g:
        async def run():
            c = ModbusCollector()
            try:
                return await timed(c.poll(target(g.port, 1, timeout=0.5)))
            finally:
                await c.close()

        err, took = asyncio.run(run())
    assert isinstance(err, PollError) and err.kind == "protocol", err  # bytes came: garbage, not silence
    assert "no valid Modbus reply" in err.message and "garbage" in err.message
    assert took < 2.0


def test_refused_connection_is_unreachable():
    port = free_port()

    async def run():
        c = ModbusCollector()
        try:
            return await timed(c.poll(target(port, 1, timeout=0.5)))
        finally:
            await c.close()

    err, took = asyncio.run(run())
    assert isinstance(err, PollError) and err.kind == "unreachable"
    assert took < 2.0


def test_missing_profile_is_a_config_error():
    async def run():
        c = ModbusCollector()
        results = []
        for name in ("auto", "no_such_profile"):
            try:
                await c.poll(target(free_port(), 1, profile=name))
            except PollError as exc:
                results.append(exc)
        return results

    auto, unknown = asyncio.run(run())
    assert auto.kind == "config" and "eastron_sdm630" in auto.message
    assert unknown.kind == "config" and "no_such_profile" in unknown.message


def test_rtu_serial_client_path():
    """modbus-rtu goes through pymodbus's serial client; pyserial's socket:// URL lets
    a test reach an RTU-framed server without serial hardware."""
    units = {1: cdu_image(191), 2: cdu_image(192)}
    with ModbusTestServer(units, framer="rtu") as srv:
        async def run():
            c = ModbusCollector()
            try:
                out = []
                for u in units:
                    t = Target(device_id=f"bus/{u}", protocol="modbus-rtu", host=f"socket://127.0.0.1:{srv.port}", unit=u,
                               profile=CDU_PROFILE, timeout_s=1.0, retries=0, options={"baud": 19200, "parity": "E"})
                    out.append(await c.poll(t))
                return out, len(c._gateways)
            finally:
                await c.close()

        results, gateways = asyncio.run(run())
    assert gateways == 1
    assert [field(r, "supply_temp_c", side="primary") for r in results] == [19.1, 19.2]


def test_gateway_restart_recovers_on_the_next_poll():
    port = free_port()
    units = {1: cdu_image(201)}

    async def poll_once(c):
        return await timed(c.poll(target(port, 1, timeout=0.5)))

    async def run():
        c = ModbusCollector()
        try:
            with ModbusTestServer(units, port=port):
                before, _ = await poll_once(c)
            down, took = await poll_once(c)
            with ModbusTestServer(units, port=port):
                after, _ = await poll_once(c)
            return before, down, took, after
        finally:
            await c.close()

    before, down, took, after = asyncio.run(run())
    assert field(before, "supply_temp_c", side="primary") == 20.1
    assert isinstance(down, PollError) and down.kind in ("unreachable", "timeout") and took < 2.0
    assert field(after, "supply_temp_c", side="primary") == 20.1


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_connections_per_gateway_are_bounded_and_reused(max_in_flight):
    units = {u: cdu_image(200 + u) for u in range(1, 9)}
    with ModbusTestServer(units) as srv:
        async def run():
            c = ModbusCollector()
            try:
                for _ in range(3):
                    results = await asyncio.gather(*(c.poll(target(srv.port, u, max_in_flight=max_in_flight)) for u in units))
                return results
            finally:
                await c.close()

        results = asyncio.run(run())
        assert srv.connections == max_in_flight, "connections are opened once and reused across polls"
        assert srv.max_open_connections <= max_in_flight
    assert [field(r, "heat_removed_w") for r in results] == [120000 + 200 + u for u in units]


def test_max_gap_option_zero_disables_gap_filling(tmp_path: Path):
    prof = tmp_path / "gap.yaml"
    prof.write_text(SPARSE_PROFILE.replace("name: sparse_test", "name: gap"))
    img = DeviceImage(dense=True).put("holding", 0, 1).put("holding", 1, 2).put("holding", 5, 300, "int32").put("holding", 20, 4)
    with ModbusTestServer({1: img}) as srv:
        async def run():
            c = ModbusCollector()
            try:
                return await c.poll(target(srv.port, 1, profile=str(prof), max_gap=0)), c.plan_for(target(srv.port, 1, profile=str(prof), max_gap=0))
            finally:
                await c.close()

        samples, plan = asyncio.run(run())
    assert [(r.address, r.count) for r in plan] == [(0, 2), (5, 2), (20, 1)]
    assert sorted(srv.requests) == [(1, 3, 0, 2), (1, 3, 5, 2), (1, 3, 20, 1)]
    assert samples[0].fields == {"a_pct": 1, "b_pct": 2, "temp_c": 3.0, "c_pct": 4}
