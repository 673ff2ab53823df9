"""A bounded on-disk queue of write batches that survives kill -9.

Each batch is one file ``<seq>.lp.gz`` (gzip'd line protocol), written to a
temporary name, fsynced and renamed, so a batch is either whole or absent:
no torn batches after a crash.  Files are replayed in sequence order and
removed only after InfluxDB acknowledged them; a crash between the ack and
the removal replays that batch once more, which InfluxDB absorbs because a
point with the same series and timestamp overwrites itself (no duplicates
when counted by series and time).

When the spool is full the policy decides what goes: ``drop_oldest`` (keep
the newest data, the default for monitoring) or ``drop_newest``; every
dropped batch is counted in ``dropped_batches``/``dropped_points`` and handed
to ``on_drop(payload, points, reason, kind)`` (the writer names, logs and
reports it in its ``writer`` samples; ``kind`` is one of
``contract.writer.DROP_KINDS``), so the loss is reported, never silent.

A disk that is full or read-only is not an exception for the caller to
stumble on: the directory may be unusable at start (:attr:`error` says why,
the spool retries on the next push), and a write that fails removes its
temporary file and raises :class:`SpoolWriteError` with the reason, so the
writer can keep the batch in memory and count what it finally cannot keep.

One process per directory: two writers sharing one would give their batches the same
sequence numbers, overwrite each other's files and send and remove each other's
batches (three full-site shards started from one config lost batches that way, logged
as "spool file … unreadable").  The spool holds a POSIX lock on ``.lock`` in its
directory for the life of the process, and a second process opening it gets
:class:`SpoolInUse` naming the directory and the holder's pid.  ``adopt_from``: a
directory whose batches this spool takes over at start when no process holds it (the
shared directory of a deployment from before each process had its own).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from contract.writer import DROP_OTHER, DROP_POLICY
from sinks.durable import fsync_dir, lock_dir, lock_holder, private_dir, write_atomically

__all__ = ["DiskSpool", "SpoolFull", "SpoolInUse", "SpoolWriteError"]

_SUFFIX = ".lp.gz"
_FIRST_SEQ = 10**12


class SpoolFull(Exception):
    pass


class SpoolInUse(Exception):
    """Another process holds the spool directory: starting a second writer there would lose batches."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"spool directory {directory} is in use by {holder}: each dcim process needs its own "
                         "(influxdb.spool_dir; dcim run --shard i/N and dcim derived run use their own "
                         "subdirectory of it)")
        self.directory = directory
        self.pid = pid


class SpoolWriteError(Exception):
    """The disk refused a batch (full, read-only, gone); ``reason`` is the OS's word for it."""

    def __init__(self, reason: str, errno: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the OS's error number (``errno.ENOSPC``, ``errno.EROFS``), 0 when unknown
        self.errno = errno


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass(slots=True)
class _Entry:
    seq: int
    points: int
    size: int


def _batches(directory: Path) -> list[tuple[_Entry, Path]]:
    """The batch files in ``directory`` (``<seq>-<points>.lp.gz``), oldest first; other names are ignored."""
    found = []
    for f in directory.glob(f"*{_SUFFIX}"):
        seq_text, _, points_text = f.name[: -len(_SUFFIX)].partition("-")
        if seq_text.isdigit() and points_text.isdigit():
            found.append((_Entry(int(seq_text), int(points_text), f.stat().st_size), f))
    found.sort(key=lambda ef: ef[0].seq)
    return found


class DiskSpool:
    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, policy: str = "drop_oldest",
                 on_drop: Callable[[bytes | None, int, str, str], None] | None = None,
                 adopt_from: str | Path | None = None) -> None:
        if policy not in ("drop_oldest", "drop_newest"):
            raise ValueError("spool policy must be drop_oldest or drop_newest")
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.policy = policy
        self.dropped_batches = 0
        self.dropped_points = 0
        #: why the directory is unusable ("Read-only file system"), or "" when it is fine
        self.error = ""
        #: the OS's error number behind :attr:`error` (``errno.ENOSPC``, ``errno.EROFS``), 0 when fine
        self.errno = 0
        self._on_drop = on_drop
        self._adopt_from = Path(adopt_from) if adopt_from else None
        #: batches taken over from ``adopt_from`` at start
        self.adopted = 0
        self._lock_fd: int | None = None
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._bytes = 0
        self._next = _FIRST_SEQ
        self._ready = False
        self._open()

    def _open(self) -> bool:
        """Create the 0700 directory, lock it and recover what it holds; False (and :attr:`error`) if the
        disk refuses; :class:`SpoolInUse` if another process holds it."""
        try:
            private_dir(self.dir)
            if self._lock_fd is None:
                self._lock_fd = lock_dir(self.dir)
                if self._lock_fd is None:
                    raise SpoolInUse(self.dir, lock_holder(self.dir))
            self._recover()
            if self._adopt_from is not None:
                self._adopt(self._adopt_from)
        except OSError as exc:
            self.error, self.errno = _reason(exc), exc.errno or 0
            return False
        self.error, self.errno, self._ready = "", 0, True
        return True

    def _recover(self) -> None:
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # a write that never completed
        entries = [e for e, _ in _batches(self.dir)]
        self._entries = entries
        self._bytes = sum(e.size for e in entries)
        # sequence numbers start high so a batch can be put back in front (push_front)
        self._next = entries[-1].seq + 1 if entries else _FIRST_SEQ

    def _adopt(self, other: Path) -> None:
        """Move ``other``'s batches (oldest first) behind this spool's own, if no process holds it."""
        if not other.is_dir():
            return
        theirs = _batches(other)
        if not theirs:
            return
        fd = lock_dir(other)
        if fd is None:  # a live process spools there: its batches are its own
            return
        try:
            for old, f in theirs:
                entry = _Entry(self._next, old.points, old.size)
                os.replace(f, self._path(entry))  # the same file system: a rename, whole or not at all
                self._next += 1
                self._entries.append(entry)
                self._bytes += entry.size
                self.adopted += 1
            fsync_dir(self.dir)
            fsync_dir(other)
        finally:
            os.close(fd)

    def _path(self, e: _Entry) -> Path:
        return self.dir / f"{e.seq:016d}-{e.points}{_SUFFIX}"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def points(self) -> int:
        return sum(e.points for e in self._entries)

    def push(self, payload: bytes, points: int) -> None:
        """Append one batch durably; apply the full-spool policy first."""
        self._store(payload, points, front=False)

    def push_front(self, payload: bytes, points: int) -> None:
        """Put a batch back before the oldest one (it was in flight and failed)."""
        self._store(payload, points, front=True)

    def _dropped(self, payload: bytes | None, points: int, reason: str = "") -> None:
        self.dropped_batches += 1
        self.dropped_points += points
        if self._on_drop is not None:
            if reason:  # a spool file that vanished or cannot be read
                self._on_drop(payload, points, reason, DROP_OTHER)
            else:
                self._on_drop(payload, points, f"spool {self.dir} full ({self.max_bytes >> 20} MiB cap, {self.policy})",
                              DROP_POLICY)

    def _store(self, payload: bytes, points: int, *, front: bool) -> None:
        """Raises :class:`SpoolWriteError` (nothing left behind) when the disk refuses the batch."""
        with self._lock:
            if not self._ready and not self._open():
                raise SpoolWriteError(self.error, self.errno)
            while self._entries and self._bytes + len(payload) > self.max_bytes:
                if self.policy == "drop_newest":
                    self._dropped(payload, points)
                    return
                oldest = self._entries.pop(0)
                path = self._path(oldest)
                try:
                    old_payload: bytes | None = path.read_bytes() if self._on_drop else None
                except OSError:
                    old_payload = None
                path.unlink(missing_ok=True)
                self._bytes -= oldest.size
                self._dropped(old_payload, oldest.points)
            if front and self._entries:
                entry = _Entry(self._entries[0].seq - 1, points, len(payload))
            else:
                entry = _Entry(self._next, points, len(payload))
                self._next += 1
            final = self._path(entry)
            try:
                write_atomically(final, payload, tmp=final.with_suffix(".tmp"))
            except OSError as exc:
                self.error, self.errno = _reason(exc), exc.errno or 0
                raise SpoolWriteError(self.error, self.errno) from None
            self.error, self.errno = "", 0
            if front:
                self._entries.insert(0, entry)
            else:
                self._entries.append(entry)
            self._bytes += entry.size

    def peek(self) -> tuple[int, bytes, int] | None:
        """The oldest batch as (seq, payload, points), without removing it."""
        with self._lock:
            while self._entries:
                e = self._entries[0]
                try:
                    return e.seq, self._path(e).read_bytes(), e.points
                except OSError as exc:  # removed or unreadable behind our back: say so, go on
                    self._entries.pop(0)
                    self._bytes -= e.size
                    self._dropped(None, e.points, f"spool file {self._path(e).name} unreadable ({_reason(exc)})")
            return None

    def remove(self, seq: int) -> None:
        with self._lock:
            for i, e in enumerate(self._entries):
                if e.seq == seq:
                    self._path(e).unlink(missing_ok=True)
                    self._bytes -= e.size
                    del self._entries[i]
                    return
