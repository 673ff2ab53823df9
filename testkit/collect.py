"""Poll targets once each with one collector instance, as the service would (shared sockets)."""
from __future__ import annotations

import asyncio

from collectors.base import Collector, PollError, Target

__all__ = ["poll_each"]


def poll_each(collector: Collector, targets: list[Target], timeout_s: float = 30.0) -> list:
    """One result per target, in order: its samples, or the PollError it raised; then close the collector."""
    async def run() -> list:
        out: list = []
        try:
            for t in targets:
                try:
                    out.append(await collector.poll(t))
                except PollError as exc:
                    out.append(exc)
        finally:
            await collector.close()
        return out
    return asyncio.run(asyncio.wait_for(run(), timeout_s))
