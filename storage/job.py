"""The project's own rollup job (``dcim storage rollup``), for stores without continuous queries.

Each cycle, per tier: the windows from the last checkpoint (less ``resample_steps``
buckets, for late points) up to the last complete bucket are aggregated by the
server from raw (one InfluxQL ``SELECT … GROUP BY time(step), *`` per measurement,
the same statement a continuous query runs), turned into samples and written
through the ordinary InfluxDB writer into the tier's retention policy.  The
checkpoint moves only after the writer has confirmed every point of the window.

Why this never double-counts and never leaves gaps: a bucket is a point whose
series (measurement + tags) and timestamp are fixed by the window, so writing
it again after a crash *replaces* it; and the checkpoint says where complete
windows end, so a restart resumes exactly there.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from contract.sample import Sample
from sinks.durable import write_atomically
from sinks.influx_query import InfluxQuery, QueryError, Series
from sinks.influx_writer import InfluxConfig, InfluxWriter
from storage.raw import raw_fields, windows
from storage.influxql import rollup_select
from storage.plan import wanted_rollups
from storage.tiers import StorageConfig, Tier

__all__ = ["Checkpoint", "RollupJob", "series_samples", "run_windows"]

log = logging.getLogger("dcim.storage")

NS = 10**9


_CAST = {"float": float, "integer": int, "boolean": bool, "string": str}


def series_samples(series: Iterable[Series], types: dict[str, str]) -> list[Sample]:
    """Rows of ``SELECT agg(..) AS f … GROUP BY time(step), *`` as samples (empty buckets skipped).

    ``types``: stored field -> InfluxDB type, so each value is written with the type it has.
    """
    out: list[Sample] = []
    for s in series:
        tags = {k: v for k, v in s.tags.items() if v not in (None, "")}
        cols = s.columns
        casts = [None] + [_CAST.get(types.get(c, "float"), float) for c in cols[1:]]
        for row in s.values:
            fields = {cols[i]: casts[i](v) for i in range(1, len(cols)) if (v := row[i]) is not None}
            if fields:
                out.append(Sample(s.name, tags, fields, int(row[0])))
    return out


@dataclass
class Checkpoint:
    """Per tier: raw time (ns) up to which every window has been written and confirmed."""

    path: Path
    done: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Checkpoint":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{path}: unreadable rollup checkpoint ({exc}); move it away to start over") from None
        return cls(path, {str(k): int(v) for k, v in data.get("done_ns", {}).items()})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, json.dumps({"done_ns": self.done}, sort_keys=True).encode())


class _Crash(Exception):
    pass


class RollupJob:
    """Keeps every tier filled from raw; one instance per database."""

    def __init__(self, client: InfluxQuery, config: StorageConfig, influx: InfluxConfig, state_dir: Path, *,
                 lag_s: float = 10.0, since_ns: int | None = None, crash_after_points: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.config = config
        self.influx = influx
        self.state_dir = Path(state_dir)
        self.checkpoint = Checkpoint.load(self.state_dir / "rollup-checkpoint.json")
        self.lag_s = lag_s
        self.since_ns = since_ns
        self.crash_after_points = crash_after_points
        self.clock = clock
        self.points_written = 0
        self._writers: dict[str, InfluxWriter] = {}

    async def _writer(self, tier: Tier) -> InfluxWriter:
        w = self._writers.get(tier.name)
        if w is None:
            cfg = replace(self.influx, retention_policy=tier.rp, bucket=f"{self.influx.database}/{tier.rp}",
                          spool_dir=str(self.state_dir / f"spool-{tier.name}"))
            w = await InfluxWriter(cfg).start()
            self._writers[tier.name] = w
        return w

    def due(self, tier: Tier, now_s: float) -> tuple[int, int] | None:
        """The raw span ``[start, end)`` this cycle recomputes for ``tier`` (None: nothing complete yet)."""
        step = tier.step_s * NS
        end = int((now_s - self.lag_s) * NS)
        end -= end % step
        done = self.checkpoint.done.get(tier.name)
        if done is None and self.since_ns is not None:
            start = self.since_ns - self.since_ns % step
        else:
            start = (done if done is not None else end) - self.config.resample_steps * step
        return (start, end) if end > start else None

    async def cycle(self) -> dict[str, int]:
        """One pass over every tier; points written per tier."""
        fields = raw_fields(self.client, self.config)
        wanted = wanted_rollups(self.config, fields)
        now = self.clock()
        out: dict[str, int] = {}
        for tier in self.config.tiers:
            span = self.due(tier, now)
            if span is None:
                continue
            out[tier.name] = await self._fill(tier, wanted, *span, checkpoint=True)
        return out

    async def _fill(self, tier: Tier, wanted: dict, start_ns: int, end_ns: int, *, checkpoint: bool) -> int:
        writer = await self._writer(tier)
        total = 0
        for a, b in windows(start_ns, end_ns, tier.step_s * NS):
            n = 0
            for m, rs in wanted.items():
                samples = series_samples(self.client.query(
                    rollup_select(self.client.database, self.config, tier, m, rs, a, b, into=False)),
                    {r.target: r.type for r in rs})
                if self.crash_after_points is not None and self.points_written + len(samples) >= self.crash_after_points:
                    keep = self.crash_after_points - self.points_written
                    writer.write(samples[:keep])
                    await writer.flush(10.0)
                    log.error("rollup: stopping hard after %d points (crash test)", self.crash_after_points)
                    os._exit(70)
                writer.write(samples)
                n += len(samples)
                self.points_written += len(samples)
            if not await writer.flush(60.0):
                raise QueryError(f"tier {tier.name}: InfluxDB did not confirm the window's {n} points in 60 s; "
                                 "will retry the window")
            if checkpoint and b > self.checkpoint.done.get(tier.name, 0):
                self.checkpoint.done[tier.name] = b
                self.checkpoint.save()
            total += n
        return total

    async def backfill(self, tiers: list[Tier], start_ns: int, end_ns: int,
                       progress: Callable[[str], None] | None = None) -> dict[str, int]:
        wanted = wanted_rollups(self.config, raw_fields(self.client, self.config))
        out = {}
        for t in tiers:
            out[t.name] = await self._fill(t, wanted, start_ns, end_ns, checkpoint=False)
            if progress:
                progress(f"{t.name}: {out[t.name]} points")
        return out

    async def run(self, stop: asyncio.Event, every_s: float | None = None) -> None:
        """Cycle until ``stop`` is set; errors are logged once per kind and retried next cycle."""
        every = every_s or min(t.step_s for t in self.config.tiers)
        last_error = ""
        while not stop.is_set():
            try:
                done = await self.cycle()
                if last_error:
                    log.info("rollup: working again")
                    last_error = ""
                if any(done.values()):
                    log.info("rollup: %s", ", ".join(f"{k} {v} points" for k, v in done.items()))
            except QueryError as exc:
                if str(exc) != last_error:
                    log.warning("rollup: %s (retrying every %.0f s)", exc, every)
                    last_error = str(exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        for w in self._writers.values():
            await w.close()


def run_windows(client: InfluxQuery, config: StorageConfig, tiers: list[Tier], start_ns: int, end_ns: int, *,
                influx: InfluxConfig | None = None, state_dir: Path | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Backfill through the job's path (stores without ``SELECT … INTO``); no checkpoint is moved."""
    import tempfile

    async def main() -> dict[str, int]:
        job = RollupJob(client, config, influx or InfluxConfig(url=client.url, database=client.database,
                                                               token=client.token),
                        state_dir or Path(tempfile.mkdtemp(prefix="dcim-backfill-")))
        try:
            return await job.backfill(tiers, start_ns, end_ns, progress)
        finally:
            await job.close()

    return asyncio.run(main())
