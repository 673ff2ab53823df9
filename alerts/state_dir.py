"""The rule engine's state directory: one engine per directory, claimed by a lock.

Its own small module so that ``dcim run`` can claim the directory before the site loads,
without importing the engine (which a shard builds once polling has started).
"""
from __future__ import annotations

from pathlib import Path

from sinks.durable import lock_dir, lock_holder, private_dir

__all__ = ["ENGINE_LOCK", "StateDirInUse", "lock_state_dir"]

#: the lock file a running engine holds in its state directory
ENGINE_LOCK = "engine.lock"


class StateDirInUse(Exception):
    """Another process's engine holds the state directory."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"alert state directory {directory} is in use by {holder}'s rule engine: "
                         "each engine (each shard, the derived job) needs its own --state-dir")
        self.directory = directory
        self.pid = pid


def lock_state_dir(directory: Path) -> int:
    """Create ``directory`` (0700: outbox, engine state, silences are alert events) and take its
    engine lock for this process: the fd that holds it.  One engine per state directory: two
    would overwrite each other's alert snapshot and send and delete each other's outbox messages
    (``dcim alerts silence`` may still write there).  :class:`StateDirInUse` when another holds it."""
    private_dir(directory)
    fd = lock_dir(directory, ENGINE_LOCK)
    if fd is None:
        raise StateDirInUse(Path(directory), lock_holder(directory, ENGINE_LOCK))
    return fd
