"""The Redfish collector against hostile BMCs: raw asyncio servers on loopback that send what each test scripts.

Each lie must end as the right poll error kind, with memory bounded, no request
or credential leaving the configured host, and no reply body in logs or messages.
"""
from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Awaitable, Callable

from collectors.base import PollError, Target
from collectors.gpu.redfish import RedfishCollector
from inventory.secrets import SecretValue

Handler = Callable[[str, str, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]

ROOT = {"@odata.id": "/redfish/v1", "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}
CHASSIS = {"Members": [{"@odata.id": "/redfish/v1/Chassis/1"}]}
ONE = {"Id": "1", "Power": {"@odata.id": "/redfish/v1/Chassis/1/Power"}}
POWER = {"PowerControl": [{"PowerConsumedWatts": 812}]}


def reply(status: int, body: bytes = b"", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def ok(obj: dict) -> bytes:
    return reply(200, json.dumps(obj).encode())


class ScriptedBmc:
    """Reads requests (with bodies) and hands each to ``handler``; counts connections and requests."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler, self.host = handler, host
        self.connections = self.requests = 0
        self.seen: list[tuple[str, str, str]] = []  # method, path, raw head

    async def __aenter__(self) -> "ScriptedBmc":
        self.server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                method, path, _ = head.split("\r\n", 1)[0].split(" ")
                length = next((int(h.split(":", 1)[1]) for h in head.split("\r\n") if h.lower().startswith("content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                self.seen.append((method, path, head))
                if not await self.handler(method, path, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def routes(table: dict[str, bytes]) -> Handler:
    async def handle(method, path, reader, writer) -> bool:
        writer.write(table.get(path, reply(404)))
        await writer.drain()
        return True
    return handle


def target(port: int, host: str = "127.0.0.1", **secrets: str) -> Target:
    return Target(device_id="bmc", protocol="redfish", host=host, port=port, timeout_s=1.0,
                  tags={"device": "n1"}, secrets={k: SecretValue(v) for k, v in secrets.items()})


async def poll(t: Target, collector: RedfishCollector | None = None):
    c = collector or RedfishCollector()
    try:
        return await c.poll(t)
    except PollError as exc:
        return exc
    finally:
        if collector is None:
            await c.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_sane_scripted_bmc_is_read():
    """The baseline the hostile cases differ from: these four resources give a power sample."""
    async def go():
        table = {"/redfish/v1": ok(ROOT), "/redfish/v1/Chassis": ok(CHASSIS), "/redfish/v1/Chassis/1": ok(ONE),
                 "/redfish/v1/Chassis/1/Power": ok(POWER)}
        async with ScriptedBmc(routes(table)) as bmc:
            return await poll(target(bmc.port))
    samples = run(go())
    assert [(s.tags["source"], s.fields) for s in samples] == [("power", {"power_w": 812.0})]


def test_huge_chunked_body_is_refused_as_protocol_with_memory_bounded():
    """200 MB of chunked JSON: the collector stops reading at the 8 MiB cap."""
    sent = [0]

    async def flood(method, path, reader, writer) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b'{"pad": "' + b"x" * 65_000 + b'", '
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while sent[0] < 200_000_000:
            writer.write(frame)
            sent[0] += len(chunk)
            await writer.drain()
        return False

    async def go():
        async with ScriptedBmc(flood) as bmc:
            t = target(bmc.port)
            t.timeout_s = 20.0
            return await poll(t)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run(go())
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert isinstance(result, PollError) and result.kind == "protocol", result
    assert "limit" in result.message and "pad" not in result.message
    assert sent[0] < 100_000_000, sent[0]
    assert grown_mib < 64, f"RSS grew by {grown_mib:.0f} MiB"


def test_redirect_to_another_host_is_not_followed_and_names_it():
    async def go():
        async with ScriptedBmc(routes({}), host="127.0.0.2") as elsewhere:
            moved = reply(302, extra=f"Location: http://127.0.0.2:{elsewhere.port}/redfish/v1\r\n")
            table = {"/redfish/v1": moved, "/redfish/v1/SessionService/Sessions": reply(201, b"{}", "X-Auth-Token: tok-123\r\n")}
            async with ScriptedBmc(routes(table)) as bmc:
                result = await poll(target(bmc.port, username="ops", password="pw-secret"))
            return result, elsewhere.connections, bmc.seen
    result, reached, seen = run(go())
    assert isinstance(result, PollError) and result.kind == "protocol", result
    assert "127.0.0.2" in result.message and "another host" in result.message
    assert reached == 0
    assert "pw-secret" not in result.message


def test_same_host_redirect_is_followed_with_the_token_and_a_loop_is_protocol():
    async def go():
        table = {"/redfish/v1": ok(ROOT),
                 "/redfish/v1/SessionService/Sessions": reply(201, b"{}", "X-Auth-Token: tok-123\r\n"),
                 "/redfish/v1/Chassis": reply(301, extra="Location: /redfish/v1/Chassis/\r\n"),
                 "/redfish/v1/Chassis/": ok(CHASSIS), "/redfish/v1/Chassis/1": ok(ONE),
                 "/redfish/v1/Chassis/1/Power": reply(307, extra="Location: /redfish/v1/Chassis/1/Power/\r\n"),
                 "/redfish/v1/Chassis/1/Power/": reply(307, extra="Location: /redfish/v1/Chassis/1/Power\r\n")}
        async with ScriptedBmc(routes(table)) as bmc:
            looped = await poll(target(bmc.port, username="ops", password="pw"))
            table["/redfish/v1/Chassis/1/Power/"] = ok(POWER)
            followed = await poll(target(bmc.port, username="ops", password="pw"))
            return looped, followed, bmc.seen
    looped, followed, seen = run(go())
    assert isinstance(looped, PollError) and looped.kind == "protocol" and "loop" in looped.message, looped
    assert [s.fields for s in followed] == [{"power_w": 812.0}]
    after = [head for method, path, head in seen if path == "/redfish/v1/Chassis/"]
    assert after and all("X-Auth-Token: tok-123" in h for h in after)


def test_garbage_is_protocol_silence_is_timeout_refused_is_unreachable():
    async def garbage(method, path, reader, writer) -> bool:
        writer.write(bytes(range(256)) * 4)
        await writer.drain()
        return False

    async def silent(method, path, reader, writer) -> bool:
        await asyncio.sleep(30)
        return False

    async def not_json(method, path, reader, writer) -> bool:
        writer.write(reply(200, b"<html>login page</html>"))
        return True

    async def go():
        out = []
        for handler in (garbage, silent, not_json):
            async with ScriptedBmc(handler) as bmc:
                out.append(await poll(target(bmc.port)))
        closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = closed.sockets[0].getsockname()[1]
        closed.close()
        await closed.wait_closed()
        out.append(await poll(target(port)))
        return out
    garbled, silence, html, refused = run(go())
    assert isinstance(garbled, PollError) and garbled.kind == "protocol", garbled
    assert isinstance(silence, PollError) and silence.kind == "timeout", silence
    assert isinstance(html, PollError) and html.kind == "protocol" and "not JSON" in html.message, html
    assert isinstance(refused, PollError) and refused.kind == "unreachable", refused


def test_reply_bodies_and_tokens_never_reach_logs_or_messages(caplog):
    caplog.set_level(logging.DEBUG)
    marker = "BODY-MARKER-7f3a"
    big = (marker + " ") * 50_000  # ~850 KB, not JSON

    async def go():
        table = {"/redfish/v1": ok(ROOT),
                 "/redfish/v1/SessionService/Sessions": reply(201, b"{}", "X-Auth-Token: tok-never-logged\r\n"),
                 "/redfish/v1/Chassis": reply(200, big.encode())}
        async with ScriptedBmc(routes(table)) as bmc:
            return await poll(target(bmc.port, username="ops", password="pw-never-logged"))
    result = run(go())
    assert isinstance(result, PollError) and result.kind == "protocol"
    for text in (caplog.text, result.message):
        assert marker not in text and "tok-never-logged" not in text and "pw-never-logged" not in text
