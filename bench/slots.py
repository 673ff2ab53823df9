"""What the scheduler's per-protocol bound costs when thousands of devices queue for it.

A loaded full-site shard has thousands of devices waiting for a protocol's slots; at SIGTERM
they are all cancelled at once, and while polling every finished poll hands its slot on.  Peer
in the same run: ``asyncio.Semaphore`` (Python 3.11), which the scheduler used before
:class:`collectors.slots.Slots`.  Each round queues ``--waiters`` tasks behind ``--slots`` held
slots, lets ``--served`` of them through one by one (the polling case), then cancels the rest
in an order unlike the queue's (the stop) and waits for all to end.  Rounds alternate A B A B on fresh event loops; the script
prints the median seconds per round of each and their ratio, bracketed by a fixed CPU
calibration loop.

    python bench/slots.py [--waiters 8000] [--served 2000] [--slots 100] [--rounds 5] [--max-seconds 120]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import alternate, median  # noqa: E402
from collectors.slots import Slots  # noqa: E402


def one_round(make, slots: int, waiters: int, served: int) -> tuple[int, int]:
    """(polls that got a slot, tasks cancelled) for one bound made by ``make``."""
    async def main() -> tuple[int, int]:
        bound = make(slots)
        done = 0
        turn = asyncio.Event()

        async def poll() -> None:
            nonlocal done
            async with bound:
                done += 1
                await turn.wait()

        tasks = [asyncio.create_task(poll()) for _ in range(slots + waiters)]
        await asyncio.sleep(0)
        while done < slots + served:  # each release hands one slot on, as finished polls do
            turn.set()
            await asyncio.sleep(0)
            turn.clear()
            await asyncio.sleep(0)
        # the stop cancels in inventory order, which is not the order devices queued in
        for t in random.Random(7).sample(tasks, len(tasks)):
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return done, sum(isinstance(r, asyncio.CancelledError) for r in results)
    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiters", type=int, default=8000)
    ap.add_argument("--served", type=int, default=2000)
    ap.add_argument("--slots", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()
    if not (1 <= args.slots <= 10_000 and 0 <= args.served <= args.waiters <= 100_000 and 1 <= args.rounds <= 20):
        raise SystemExit("--slots 1..10000, --served ≤ --waiters ≤ 100000, --rounds 1..20")
    def run(make):
        return one_round(make, args.slots, args.waiters, args.served)

    out = alternate(lambda: run(Slots), lambda: run(asyncio.Semaphore), args.rounds, args.max_seconds,
                    agree=lambda a, b: a[0] >= args.slots + args.served and b[0] >= args.slots + args.served
                    and a[1] == b[1])
    if out.disagreed:
        raise SystemExit(f"the two bounds disagree: Slots {out.last_a}, Semaphore {out.last_b}")
    if not out.a_s:
        raise SystemExit(f"no stable round ({out.skipped} discarded for calibration drift)")
    a, b = median(out.a_s), median(out.b_s)
    print(f"{args.slots} slots, {args.waiters} waiting, {args.served} served one by one, then the rest cancelled; "
          f"{len(out.a_s)} rounds kept, {out.skipped} discarded")
    print(f"  Slots {a * 1000:.1f} ms, asyncio.Semaphore {b * 1000:.1f} ms per round: {a / b:.2f}x")


if __name__ == "__main__":
    main()
