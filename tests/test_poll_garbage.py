"""A failed poll leaves no reference cycle behind.

Why it matters: on a loaded full-site shard half the polls failed, and each failure kept its
frame, its error and its partial samples alive in a cycle (error → traceback → frame → error)
that only a full garbage collection frees; those cycles filled the oldest generation and the
full collections that walked it stalled the event loop for a second or more, so more polls
timed out.  Here the real DCGM collector polls real loopback servers that never answer and
that answer garbage, with cyclic collection off: what the collector then finds may hold no
frame, traceback, error or sample (asyncio's own closed transports are cycles of a few small
objects each, freed young; they are not what filled the oldest generation).
"""
from __future__ import annotations

import asyncio
import gc
import types

from collectors.base import PollError, Target
from collectors.gpu.dcgm import DcgmCollector
from collectors.scheduler import poll_once
from contract.sample import Sample


async def _serve(answer: bytes | None) -> tuple[asyncio.base_events.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if answer is None:
                    await asyncio.sleep(3600)  # never answers
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


_HEAVY = (types.FrameType, types.TracebackType, BaseException, Sample)


def _garbage_after(polls, n: int = 20) -> tuple[list[str], list]:
    """The types of what ``n`` polls left in reference cycles that hold a frame, traceback,
    exception or sample, and each poll's (ok, error kind)."""
    async def run() -> tuple[list[str], list]:
        outcomes = []
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage to be looked at
        try:
            for _ in range(n):
                outcomes.append(await polls())
            kinds = [(o.ok, o.error_kind) for o in outcomes]
            outcomes.clear()
            gc.collect()
            heavy = sorted({type(o).__name__ for o in gc.garbage if isinstance(o, _HEAVY)})
            return heavy, kinds
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    return asyncio.run(run())


def test_failed_http_polls_leave_nothing_for_the_cycle_collector():
    for answer, kind in ((None, "timeout"), (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", "decode"),
                         (b"\x00garbage\r\n\r\n", "protocol")):
        state: dict = {}

        async def poll():
            if "target" not in state:
                server, port = await _serve(answer)
                state.update(server=server, collector=DcgmCollector(),
                             target=Target("n1", "dcgm", "127.0.0.1", port, tags={"device": "n1"}, timeout_s=0.03, retries=0))
            return await poll_once(state["collector"], state["target"], 0.5)  # the getter's own timeout fires

        found, kinds = _garbage_after(poll)
        assert set(kinds) == {(False, kind)}, kinds
        assert found == [], f"{kind}: 20 failed polls left {found} in reference cycles"


def test_a_failed_poll_with_partial_samples_frees_them_by_reference_counting():
    class Failing:
        async def poll(self, target):
            await asyncio.sleep(0)
            raise PollError("device", "GPU 3 missing", partial=[Sample("gpu", {"gpu": "0"}, {"power_w": 1.0}, 1)])

    target = Target("n1", "dcgm", "127.0.0.1", 1, tags={"device": "n1"}, retries=0)
    found, kinds = _garbage_after(lambda: poll_once(Failing(), target, 1.0))
    assert set(kinds) == {(False, "device")}
    assert found == []
