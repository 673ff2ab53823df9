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

A spool whose disk is full or read-only does not stop the writer either: the
batch stays in memory (up to ``max_memory_batches``), the disk is tried again
every ``spool_retry_s`` and spooling resumes by itself when it has room.  What
finally cannot be kept is counted (``points_dropped``, by measurement in
``dropped_by_measurement``) and logged with the reason, once per reason and
then at most once a minute (:class:`~sinks.losses.LossLog`); by reason
(``dropped_by_kind``: disk full, read-only, spool policy, other) it goes into
the ``writer`` samples (:meth:`InfluxWriter.status_sample`, names in
``contract/writer.py``) that the collection service writes, so Grafana shows the
loss as well as the log.  The sender and
flush loops run under a supervisor that restarts them (and says so) whatever
they raise.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import gzip
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from contract import writer as W
from contract.sample import Sample, now_ns
from inventory.secrets import SecretValue
from sinks.influx_transport import V1Transport, V2Transport, WriteFailed, detect_api
from sinks.lineprotocol import sample_line
from sinks.losses import LossLog, describe, measurements_in
from sinks.spool import DiskSpool, SpoolWriteError

__all__ = ["InfluxConfig", "InfluxWriter", "WriterStats"]

log = logging.getLogger("dcim.influx")

#: seconds from the writer's start to its first cut of a batch (then every ``flush_interval_s``)
FIRST_CUT_S = 0.25


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
    #: a directory whose batches the spool takes over at start when no process holds it
    #: (``sinks.spool.DiskSpool``'s ``adopt_from``: the config's shared ``spool_dir``)
    spool_adopt_dir: str | None = None
    spool_max_bytes: int = 1 << 30
    spool_policy: str = "drop_oldest"
    reject_retry_s: float = 60.0
    max_backoff_s: float = 30.0
    spool_retry_s: float = 5.0
    #: how often the collection service writes a ``writer`` sample (contract/writer.py)
    stats_interval_s: float = 10.0

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
    #: points that could not be kept (spool unwritable and memory full, spool cap, shutdown), by measurement
    points_dropped: int = 0
    dropped_by_measurement: dict = field(default_factory=dict)
    #: the same points by reason (``contract.writer.DROP_KINDS``)
    dropped_by_kind: dict = field(default_factory=dict)
    spool_errors: int = 0
    #: times the supervisor restarted the sender or flush loop after an error
    restarts: int = 0
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
        self._losses = LossLog(log)
        self._spool_down_since: float | None = None
        self._spool_retry_at = 0.0
        #: ``dropped_by_kind`` as of the last :meth:`status_sample`
        self._reported: dict[str, int] = {}
        self._spool = (DiskSpool(config.spool_dir, config.spool_max_bytes, config.spool_policy, on_drop=self._drop,
                                 adopt_from=config.spool_adopt_dir)
                       if config.spool_dir else None)
        if self._spool is not None and self._spool.error:
            self._spool_failed(self._spool.error)
        if self._spool is not None and self._spool.adopted:
            log.info("took over %d spooled batch(es) left in %s", self._spool.adopted, config.spool_adopt_dir)
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
        self._sender = asyncio.create_task(self._supervised("sender", self._send_loop), name="influx-sender")
        self._ticker = asyncio.create_task(self._supervised("flush", self._tick_loop), name="influx-ticker")
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
        self._spool_retry_at = 0.0  # one last try of the disk
        self._spill_all()
        if self._batches:
            why = ("no spool configured" if self._spool is None
                   else f"spool {self._spool.dir} unwritable ({self._spool.error})")
            kind = self._unwritable_kind()
            while self._batches:
                self._drop(*self._batches.popleft(), f"writer closed with points unsent and {why}", kind)
        self._losses.flush(time.monotonic())
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

    def status_sample(self, tags: dict[str, str], time_ns: int | None = None) -> Sample:
        """One ``writer`` sample: points dropped by reason since the previous call, the total so
        far, and the spool's state, so the loss shows in Grafana and not only in the log."""
        by_kind = self.stats.dropped_by_kind
        fields: dict = {W.dropped_field(k): by_kind.get(k, 0) - self._reported.get(k, 0) for k in W.DROP_KINDS}
        self._reported = dict(by_kind)
        fields[W.DROPPED] = sum(fields.values())
        fields[W.DROPPED_TOTAL] = self.stats.points_dropped
        spool = self._spool
        fields[W.SPOOLING] = spool is not None and self._spool_down_since is None and not spool.error
        fields[W.SPOOL_BYTES] = spool.bytes if spool is not None else 0
        fields[W.SPOOL_POINTS] = spool.points if spool is not None else 0
        fields[W.MEMORY_POINTS] = self.pending_points - fields[W.SPOOL_POINTS]
        fields[W.SPOOL_ERROR] = spool.error if spool is not None else ""
        return Sample(W.WRITER_MEASUREMENT, dict(tags), fields, time_ns or now_ns())

    def _unwritable_kind(self) -> str:
        """Why memory batches cannot go to disk now, as a ``contract.writer`` drop kind."""
        if self._spool is None:
            return W.DROP_OTHER
        return {errno.ENOSPC: W.DROP_DISK_FULL, errno.EDQUOT: W.DROP_DISK_FULL,
                errno.EROFS: W.DROP_READ_ONLY}.get(self._spool.errno, W.DROP_OTHER)

    def _drop(self, payload: bytes | None, points: int, reason: str, kind: str = W.DROP_OTHER) -> None:
        """Count and name a batch that cannot be kept (also the spool's ``on_drop``)."""
        by = measurements_in(payload) if payload is not None else collections.Counter({"?": points})
        self.stats.points_dropped += points
        self.stats.dropped_by_kind[kind] = self.stats.dropped_by_kind.get(kind, 0) + points
        for m, n in by.items():
            self.stats.dropped_by_measurement[m] = self.stats.dropped_by_measurement.get(m, 0) + n
        self._losses.add(by, points, reason, time.monotonic())

    def _spool_failed(self, reason: str) -> None:
        now = time.monotonic()
        self.stats.spool_errors += 1
        self._spool_retry_at = now + self.config.spool_retry_s
        if self._spool_down_since is None:
            self._spool_down_since = now
            assert self._spool is not None
            log.error("spool %s unwritable (%s): keeping up to %d batches in memory, trying the disk every %gs",
                      self._spool.dir, reason, self.config.max_memory_batches, self.config.spool_retry_s)

    def _spool_back(self) -> None:
        assert self._spool is not None and self._spool_down_since is not None
        self._losses.flush(time.monotonic())
        dropped = self.stats.dropped_by_measurement
        log.warning("spool %s writable again after %.0fs; spooling resumed (dropped so far: %d points%s)",
                    self._spool.dir, time.monotonic() - self._spool_down_since, self.stats.points_dropped,
                    f": {describe(collections.Counter(dropped))}" if dropped else "")
        self._spool_down_since = None

    def _trim_memory(self) -> None:
        """Bounded memory: beyond ``max_memory_batches`` the oldest batches go, counted and named."""
        while len(self._batches) > self.config.max_memory_batches:
            why = ("no spool configured" if self._spool is None
                   else f"spool {self._spool.dir} unwritable ({self._spool.error})")
            self._drop(*self._batches.popleft(), f"memory queue full and {why}", self._unwritable_kind())

    def _spill_all(self) -> None:
        """Move memory batches to the spool, oldest first; never raises."""
        if self._spool is not None and (self._spool_down_since is None or time.monotonic() >= self._spool_retry_at):
            while self._batches:
                payload, points = self._batches[0]
                try:
                    self._spool.push(payload, points)
                except SpoolWriteError as exc:
                    self._spool_failed(exc.reason)
                    break
                self._batches.popleft()
                self.stats.spilled_batches += 1
            else:
                if self._spool_down_since is not None:
                    self._spool_back()
        self._trim_memory()

    async def _supervised(self, name: str, loop) -> None:
        """Run ``loop`` forever: an error restarts it after a second, logged and counted, never silently."""
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.restarts += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.error("InfluxDB writer %s loop failed (%s: %s); restarting it", name, type(exc).__name__, exc)
                if name == "sender" and self._inflight is not None:
                    self._give_back(*self._inflight)
                self._idle.set()
                await asyncio.sleep(1.0)

    async def _tick_loop(self) -> None:
        # until the first batch is cut, every FIRST_CUT_S: a service that has just started shows
        # its first points (and finds out whether InfluxDB takes them) within a quarter of a
        # second of its first poll, not a whole flush interval later
        started = False
        while True:
            await asyncio.sleep(self.config.flush_interval_s if started else min(FIRST_CUT_S, self.config.flush_interval_s))
            started = started or bool(self._lines)
            self._cut()
            if self._batches and self._failing_since and time.monotonic() - self._failing_since > self.config.spill_after_s:
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
        if self._spool is not None and len(self._spool) and self._spool_down_since is None:
            try:
                self._spool.push_front(payload, points)
                return
            except SpoolWriteError as exc:
                self._spool_failed(exc.reason)
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
            if not self.stats.batches_written:  # the operator's (and site_full's) sign that data flows
                log.info("first batch written to InfluxDB: %d points", points)
            self.stats.points_written += points
            self.stats.batches_written += 1
            self._failing_since = None
            backoff = 0.5
