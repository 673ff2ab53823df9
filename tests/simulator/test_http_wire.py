"""The twin's HTTP endpoint on the wire: exact reply bytes, keep-alive, pipelining, bounds, faults.

Raw sockets on loopback against a real :class:`HttpEndpoint`, so what is checked is what a
collector (or curl) receives: the status line and headers in the twin's order, the body the
route returned, requests answered in order however they are cut into segments, and the fault
behaviours the reliability tests rely on (no answer, late answer, random bytes then close).
"""
from __future__ import annotations

import asyncio
import json
import time

from simulator.http_endpoints import SESSIONS, HttpEndpoint, json_body, redfish_resources
from simulator.model import DeviceState
from testkit.wire import exchange, run_bounded

GET = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
_CREDENTIALS = b'{"UserName": "monitor", "Password": "not-a-real-password"}'
LOGIN = (f"POST {SESSIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         f"Content-Length: {len(_CREDENTIALS)}\r\n\r\n").encode() + _CREDENTIALS


def _route(state: DeviceState):
    def route(path: str):
        if path == "/metrics":
            return "text/plain; version=0.0.4", f"power {state.power_w}\n".encode() * 40
        res = redfish_resources("node-1", state).get(path)
        return json_body(res) if res is not None else None
    return route


def _reply(ctype: str, body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    """The reply as the twin writes it (and as before it served from a protocol)."""
    return f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_get_reply_is_status_headers_and_the_routes_body_exactly():
    state = DeviceState(power_w=9_812.5)
    route = _route(state)

    async def go():
        ep = await HttpEndpoint(route).start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        try:
            got, closed = await exchange(port, [GET])
            assert not closed  # keep-alive
            assert got == _reply(*route("/metrics"))
            got, _ = await exchange(port, [b"GET /redfish/v1/Chassis/1/?expand=1 HTTP/1.1\r\n\r\n"])
            assert got == _reply(*route("/redfish/v1/Chassis/1"))  # query and trailing slash dropped
            got, _ = await exchange(port, [b"GET /nowhere HTTP/1.1\r\n\r\n"])
            assert got == _reply("text/plain", b"not found\n", "404 Not Found")
            got, _ = await exchange(port, [b"PUT /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"])
            assert got == _reply("text/plain", b"not found\n", "404 Not Found")  # GET only
            assert ep.requests == 4
        finally:
            await ep.stop()
    run_bounded(go())


def test_pipelined_and_fragmented_requests_are_answered_in_order_on_one_connection():
    state = DeviceState(power_w=1_000.0)
    route = _route(state)
    one = _reply(*route("/metrics"))
    root = _reply(*route("/redfish/v1"))

    async def go():
        ep = await HttpEndpoint(route).start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        try:
            stream = GET + b"GET /redfish/v1 HTTP/1.1\r\n\r\n" + GET * 50
            got, closed = await exchange(port, [stream], want=len(one) * 51 + len(root))
            assert got == one + root + one * 50 and not closed
            # the same bytes cut anywhere: inside the request line, the head's end, between requests
            cuts = [stream[:3], stream[3:len(GET) - 2], stream[len(GET) - 2:len(GET) + 7], stream[len(GET) + 7:]]
            got, _ = await exchange(port, cuts, want=len(one) * 51 + len(root))
            assert got == one + root + one * 50
            assert ep.requests == 104
        finally:
            await ep.stop()
    run_bounded(go())


def test_redfish_session_login_with_a_body_then_logout():
    route = _route(DeviceState(power_w=500.0))

    async def go():
        ep = await HttpEndpoint(route, sessions=True).start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        try:
            # the body arrives in a later segment than the head, with the next request behind it
            head, body = LOGIN.split(b"\r\n\r\n", 1)
            logout = f"DELETE {SESSIONS}/1 HTTP/1.1\r\nX-Auth-Token: twin-session-1\r\n\r\n".encode()
            login_reply = _reply("application/json", json.dumps({"@odata.id": f"{SESSIONS}/1", "Id": "1"}).encode(),
                                 "201 Created", f"X-Auth-Token: twin-session-1\r\nLocation: {SESSIONS}/1\r\n")
            logout_reply = _reply("application/json", b"", "204 No Content")
            got, closed = await exchange(port, [head + b"\r\n\r\n" + body[:5], body[5:] + logout],
                                          want=len(login_reply) + len(logout_reply))
            assert got == login_reply + logout_reply and not closed
            got, _ = await exchange(port, [LOGIN])
            assert b"X-Auth-Token: twin-session-2\r\n" in got  # each login a new session
        finally:
            await ep.stop()
    run_bounded(go())


def test_requests_over_the_bounds_are_closed_unanswered():
    route = _route(DeviceState(power_w=500.0))
    one = _reply(*route("/metrics"))
    prefix = b"GET /metrics HTTP/1.1\r\nX-Pad: "

    async def go():
        ep = await HttpEndpoint(route).start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        try:
            at_limit = prefix + b"a" * (16384 - len(prefix) - 4) + b"\r\n\r\n"
            assert len(at_limit) == 16384
            got, closed = await exchange(port, [at_limit], want=len(one))
            assert got == one and not closed  # a 16 KiB head is served
            got, closed = await exchange(port, [prefix + b"a" * (16384 - len(prefix) - 3) + b"\r\n\r\n" + GET])
            assert (got, closed) == (b"", True)  # one byte more is not, nor what follows it
            got, closed = await exchange(port, [prefix + b"a" * 20_000])  # no end of head in sight
            assert (got, closed) == (b"", True)
            got, closed = await exchange(port, [b"POST /x HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"])
            assert (got, closed) == (b"", True)
            body = b"POST /x HTTP/1.1\r\nContent-Length: 65536\r\n\r\n" + b"z" * 65536
            got, closed = await exchange(port, [body + GET], want=len(one) + 90)
            assert got.endswith(one) and got.startswith(b"HTTP/1.1 404 Not Found\r\n") and not closed
            got, closed = await exchange(port, [b"GET /metrics\r\n\r\n"])  # not METHOD PATH VERSION
            assert (got, closed) == (b"", True)
            got, closed = await exchange(port, [b"GET /metrics HTTP/1.1\r\nHost: x\r\n"], eof=True)
            assert (got, closed) == (b"", True)  # the client gave up mid-head
        finally:
            await ep.stop()
    run_bounded(go())


def test_fault_behaviours_no_answer_slow_and_garbage():
    route = _route(DeviceState(power_w=500.0))
    one = _reply(*route("/metrics"))
    mode = ["no_answer"]

    async def go():
        ep = await HttpEndpoint(route, behaviour=lambda: mode[0], slow_s=0.4).start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        try:
            got, closed = await exchange(port, [GET * 2], idle_s=1.0)
            assert (got, closed) == (b"", False)  # open and silent
            assert ep.requests == 1  # the first request was read; nothing after it is served

            mode[0] = "slow"
            t0 = time.monotonic()
            got, closed = await exchange(port, [GET * 3], want=3 * len(one), idle_s=3.0)
            took = time.monotonic() - t0
            assert got == one * 3 and not closed
            assert took >= 3 * 0.4  # each answer waits its own delay, in order
            assert ep.requests == 4

            mode[0] = "garbage"
            got, closed = await exchange(port, [GET * 2], idle_s=2.0)
            assert len(got) == 200 and closed and not got.startswith(b"HTTP/")
            assert ep.requests == 5
        finally:
            await ep.stop()
    run_bounded(go())


def test_stop_closes_open_keep_alive_connections():
    route = _route(DeviceState(power_w=500.0))
    one = _reply(*route("/metrics"))

    async def go():
        ep = await HttpEndpoint(route, behaviour=lambda: "ok").start("127.0.0.1", 0)
        port = ep.server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(GET)
        assert await reader.readexactly(len(one)) == one
        await ep.stop()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, not left idle
        writer.close()
    run_bounded(go())


def test_a_bmc_serves_its_nodes_resources_of_the_current_model_step():
    """The twin encodes a BMC's resources once per model step: what it serves is, byte for byte,
    the resources of the node's state at that step, and a step (or a fault) changes them."""
    from localservers.site import load_relocated
    from simulator.twin import Twin

    site = load_relocated()
    bmcs = [d for d in site.polled_devices() if d.protocol == "redfish" and "node" in d.labels]
    paths = ["/redfish/v1", "/redfish/v1/Chassis/1", "/redfish/v1/Chassis/1/Power", "/redfish/v1/Chassis/1/Thermal"]
    t0 = 1_780_000_000.0

    async def go():
        twin = Twin(site, refresh_s=3600.0, clock=lambda: t0)
        await twin.start()
        try:
            # a BMC whose node runs a job (an idle node's power does not move)
            bmc = next(d for d in bmcs if twin.truth(d.labels["node"]).values["util_pct"] > 0)
            node = bmc.labels["node"]
            seen = []
            for t in (t0, t0 + 75.0):  # a quarter of the jobs' 300 s swing later
                twin.step(t)
                resources = redfish_resources(node, twin.truth(node))
                for p in paths:
                    body = json_body(resources[p])[1]
                    got, _ = await exchange(bmc.port, [f"GET {p} HTTP/1.1\r\n\r\n".encode()],
                                             want=len(_reply("application/json", body)))
                    assert got == _reply("application/json", body), (t, p)
                seen.append(json_body(resources["/redfish/v1/Chassis/1/Power"])[1])
            assert seen[0] != seen[1]  # the power moved between the steps, and what is served with it
        finally:
            await twin.stop()
    run_bounded(go())
