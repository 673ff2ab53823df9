"""Poll targets once each with one collector instance, as the service would (shared sockets)."""
from __future__ import annotations

import asyncio

from collectors.base import Collector, PollError, Target
from collectors.registry import make_collector
from collectors.targets import build_targets

__all__ = ["poll_each", "poll_device"]


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


def poll_device(site, device_id: str, deadline_s: float = 60.0, **changes) -> list:
    """Poll one inventory device once with its target built as the service builds it.

    ``changes`` override target attributes (``timeout_s=0.5``); returns the samples or raises
    the device's PollError, as the collector does.
    """
    (target,), problems = build_targets(site, [site.device(device_id)])
    assert not problems, problems
    for name, value in changes.items():
        setattr(target, name, value)
    [result] = poll_each(make_collector(target.protocol), [target], deadline_s)
    if isinstance(result, PollError):
        raise result
    return result
