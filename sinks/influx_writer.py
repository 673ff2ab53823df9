"""Batching, compressing, retrying InfluxDB writer with a disk spool.

Collectors call :meth:`InfluxWriter.write` from the event loop; it serialises
to line protocol at once (cheap, no I/O) and cuts a batch every
``batch_size`` lines.  One sender task ships batches oldest first from a
worker thread, so a slow InfluxDB never blocks polling.

Nothing is lost on an outage: a batch that fails goes back to the head of the
queue and is retried with exponential backoff; when the memory queue passes
``max_memory_batches`` or a failure lasts longer than ``spill_after_s`` the
queued batches move, in order, to the :class:`~sinks.spool.DiskSpool`.  The
spool always holds older data than memory, so replay keeps time order.
A 4xx other than 429 is not retried as if it were transient: a bad batch
(400) is dropped with its reason logged and counted, and bad credentials or a
missing database (401/403/404) are retried only every ``reject_retry_s`` with
the error logged each time, since someone has to fix them.
"""
from __future__ import annotations

import asyncio
import collections
import gzip
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from contract.sample import Sample
from inventory.secrets import SecretValue
from sinks.influx_transport import V1Transport, V2Transport, WriteFailed, detect_api
from sinks.lineprotocol import sample_line
from sinks.spool import DiskSpool

__all__ = ["InfluxConfig", "InfluxWriter", "WriterStats"]

log = logging.getLogger("dcim.influx")


class Transport(Protocol):
    def send(self, payload: bytes) -> None: ...


@dataclass
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "dcim"
    retention_policy: str = ""
    org: str = ""
    bucket: str | None = None  # v2; defaults to "database/retention_policy"
    token: SecretValue | None = None
    api: str = "auto"  # auto | v1 | v2
    batch_size: int = 5000
    flush_interval_s: float = 1.0
    gzip_level: int = 1
    timeout_s: float = 10.0
    max_memory_batches: int = 200
    spill_after_s: float = 2.0
    spool_dir: str | None = None
    spool_max_bytes: int = 1 << 30
    spool_policy: str = "drop_oldest"
    reject_retry_s: float = 60.0
    max_backoff_s: float = 30.0

    def v2_bucket(self) -> str:
        if self.bucket:
            return self.bucket
        return f"{self.database}/{self.retention_policy}" if self.retention_policy else self.database


@dataclass
class WriterStats:
    points_queued: int = 0
    points_written: int = 0
    batches_written: int = 0
    points_rejected: int = 0
    points_skipped: int = 0  # samples with no storable field (all NaN, say)
    retries: int = 0
    spilled_batches: int = 0
    last_error: str = ""
    api: str = ""
    errors_by_status: dict = field(default_factory=dict)


class InfluxWriter:
    def __init__(self, config: InfluxConfig, transport: Transport | None = None) -> None:
        self.config = config
        self.stats = WriterStats()
        self._transport = transport
        self._lines: list[str] = []
        self._batches: collections.deque[tuple[bytes, int]] = collections.deque()
        self._cache: dict = {}
        self._spool = DiskSpool(config.spool_dir, config.spool_max_bytes, config.spool_policy) if config.spool_dir else None
        self._wake = asyncio.Event()
        self._sender: asyncio.Task | None = None
        self._ticker: asyncio.Task | None = None
        self._closing = False
        self._failing_since: float | None = None
        # the memory batch being sent, out of the deque so a spill cannot move it
        self._inflight: tuple[bytes, int] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- public API ---------------------------------------------------------------
    async def start(self) -> "InfluxWriter":
        self._sender = asyncio.create_task(self._send_loop(), name="influx-sender")
        self._ticker = asyncio.create_task(self._tick_loop(), name="influx-ticker")
        return self

    def write(self, samples: Iterable[Sample]) -> None:
        """Queue samples; never blocks, never raises for bad values."""
        lines = self._lines
        cache = self._cache
        n = 0
        for s in samples:
            line = sample_line(s, cache)
            if line is None:
                self.stats.points_skipped += 1
                continue
            lines.append(line)
            n += 1
        self.stats.points_queued += n
        while len(self._lines) >= self.config.batch_size:
            self._cut(self.config.batch_size)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Queue pre-built line-protocol lines (benchmarks, replays)."""
        before = len(self._lines)
        self._lines.extend(lines)
        self.stats.points_queued += len(self._lines) - before
        while len(self._lines) >= self.config.batch_size:
            self._cut(self.config.batch_size)

    @property
    def pending_points(self) -> int:
        mem = len(self._lines) + sum(p for _, p in self._batches) + (self._inflight[1] if self._inflight else 0)
        return mem + (self._spool.points if self._spool else 0)

    @property
    def spool(self) -> DiskSpool | None:
        return self._spool

    async def flush(self, timeout: float | None = None) -> bool:
        """Cut the current batch and wait until everything queued is written.

        Returns False when ``timeout`` passed first (data stays queued/spooled).
        """
        self._cut()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._batches or self._inflight or (self._spool and len(self._spool)) or not self._idle.is_set():
            self._wake.set()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Flush for up to ``timeout``; whatever is left goes to the spool."""
        await self.flush(timeout)
        self._closing = True
        for task in (self._sender, self._ticker):
            if task:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self._inflight is not None:
            self._give_back(*self._inflight)
        self._spill_all()
        left = sum(p for _, p in self._batches)
        if left:
            log.error("InfluxDB writer closed with %d points unsent and no spool configured: they are lost", left)
        if isinstance(self._transport, V2Transport):
            self._transport.close()

    # ---- internals ----------------------------------------------------------------
    def _cut(self, limit: int | None = None) -> None:
        if not self._lines:
            return
        if limit is None or limit >= len(self._lines):
            lines, self._lines = self._lines, []
        else:
            lines, self._lines = self._lines[:limit], self._lines[limit:]
        payload = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=self.config.gzip_level)
        self._batches.append((payload, len(lines)))
        if len(self._batches) > self.config.max_memory_batches or (
            self._failing_since is not None and time.monotonic() - self._failing_since > self.config.spill_after_s
        ):
            # during an outage every new batch goes straight to disk, so a crash
            # loses at most the lines of the current flush interval
            self._spill_all()
        self._wake.set()

    def _spill_all(self) -> None:
        if self._spool is None:
            if len(self._batches) > self.config.max_memory_batches:
                # no spool: bounded memory means dropping the oldest, counted
                while len(self._batches) > self.config.max_memory_batches:
                    _, pts = self._batches.popleft()
                    self.stats.points_rejected += pts
                    log.error("no spool configured and memory queue full: dropped %d points", pts)
            return
        while self._batches:
            payload, points = self._batches.popleft()
            self._spool.push(payload, points)
            self.stats.spilled_batches += 1

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            self._cut()
            if self._failing_since and time.monotonic() - self._failing_since > self.config.spill_after_s:
                self._spill_all()

    def _next(self) -> tuple[str, int | None, bytes, int] | None:
        if self._spool is not None and len(self._spool):
            head = self._spool.peek()
            if head is not None:
                seq, payload, points = head
                return "spool", seq, payload, points
        if self._batches:
            self._inflight = self._batches.popleft()
            payload, points = self._inflight
            return "memory", None, payload, points
        return None

    def _done(self, source: str, seq: int | None) -> None:
        if source == "spool":
            assert self._spool is not None and seq is not None
            self._spool.remove(seq)
        else:
            self._inflight = None

    def _give_back(self, payload: bytes, points: int) -> None:
        """A memory batch that failed goes back to the head of the queue.

        If the queue was spilled to disk while it was in flight, the batch is
        older than everything in the spool, so it goes to the spool's front.
        """
        self._inflight = None
        if self._spool is not None and len(self._spool):
            self._spool.push_front(payload, points)
        else:
            self._batches.appendleft((payload, points))

    def _retry_later(self, source: str) -> None:
        if source == "memory" and self._inflight is not None:
            self._give_back(*self._inflight)

    async def _ensure_transport(self) -> Transport:
        if self._transport is None:
            cfg = self.config
            api = cfg.api
            if api == "auto":
                api = await asyncio.to_thread(detect_api, cfg.url, cfg.timeout_s)
            if api == "v1":
                self._transport = V1Transport(cfg.url, cfg.database, cfg.retention_policy, cfg.token, cfg.timeout_s)
            else:
                self._transport = V2Transport(cfg.url, cfg.v2_bucket(), cfg.org, cfg.token, cfg.timeout_s)
            self.stats.api = api
            log.info("writing to InfluxDB at %s with the %s API", cfg.url, api)
        return self._transport

    async def _send_loop(self) -> None:
        backoff = 0.5
        while True:
            item = self._next()
            if item is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            self._idle.clear()
            source, seq, payload, points = item
            try:
                transport = await self._ensure_transport()
                await asyncio.to_thread(transport.send, payload)
            except WriteFailed as exc:
                self.stats.last_error = str(exc)
                self.stats.errors_by_status[exc.status] = self.stats.errors_by_status.get(exc.status, 0) + 1
                if exc.status == 400:
                    log.error("InfluxDB rejected a batch of %d points, dropping it: %s", points, exc)
                    self.stats.points_rejected += points
                    self._done(source, seq)
                    continue
                self._retry_later(source)
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                self.stats.retries += 1
                if exc.retry:
                    delay = exc.retry_after or backoff * (0.5 + random.random())
                    backoff = min(backoff * 2, self.config.max_backoff_s)
                    log.warning("InfluxDB write failed, retrying in %.1fs: %s", delay, exc)
                else:
                    delay = self.config.reject_retry_s
                    log.error("InfluxDB write refused, retrying in %.0fs: %s", delay, exc)
                self._idle.set()
                await asyncio.sleep(delay)
                continue
            except Exception as exc:  # a bug or an unexpected library error: keep the data
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("unexpected error writing to InfluxDB; batch kept")
                self._retry_later(source)
                self._idle.set()
                await asyncio.sleep(backoff)
                continue
            self._done(source, seq)
            self.stats.points_written += points
            self.stats.batches_written += 1
            self._failing_since = None
            backoff = 0.5
