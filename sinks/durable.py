"""Crash-safe file writes: whole files or nothing, even after kill -9 or power loss.

The disk spool and the alert engine's state both need the same guarantee: a
reader after a crash finds either the old file or the complete new one, never
a torn one.  Write a temporary file in the same directory, fsync it, rename it
over the target (atomic on POSIX), then fsync the directory so the rename
itself is durable.  Files are created 0600: they may hold alert context.  A write that fails
(disk full, read-only) removes its temporary file before raising.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["write_atomically", "fsync_dir", "private_dir", "private_file", "lock_dir", "lock_holder"]


def private_dir(directory: str | os.PathLike) -> Path:
    """Create ``directory`` (and parents) and make it 0700: spool, alert state and outbox all hold
    what only the service should read (points, alert events, silences)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def private_file(path: str | os.PathLike) -> Path:
    """Create ``path`` empty if missing and make it 0600 (before SQLite opens it, so its -wal and
    -shm files, which SQLite creates with the database's mode, are 0600 too)."""
    p = Path(path)
    os.close(os.open(p, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(p, 0o600)
    return p


def lock_dir(directory: str | os.PathLike, name: str = ".lock") -> int | None:
    """Take ``directory``'s lock file ``name`` for this process: the fd that holds it (this
    process's pid written in it), or None when another process holds it.  POSIX record locks:
    held until the process exits or the fd is closed, and never against the process itself."""
    fd = os.open(Path(directory) / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def lock_holder(directory: str | os.PathLike, name: str = ".lock") -> int | None:
    """The pid written in ``directory``'s lock file ``name`` (its holder, or the last one), if any."""
    try:
        text = (Path(directory) / name).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, payload: bytes, *, tmp: Path | None = None, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``payload`` atomically (``tmp``: the temporary name, same directory)."""
    path = Path(path)
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(payload)
            while view:  # os.write may write less than asked (a nearly full disk)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # a full or failing disk must not leave 0-byte temporaries behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(path.parent)
