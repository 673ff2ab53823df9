"""Waiting on a condition with a deadline, never on a fixed sleep (tests count events, not time)."""
from __future__ import annotations

import asyncio
from typing import Callable

__all__ = ["wait_until"]


async def wait_until(pred: Callable[[], object], timeout: float = 10.0, step: float = 0.01) -> bool:
    """True as soon as ``pred()`` holds, checked every ``step`` s on the running loop; its last value at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())
