"""The engine's state on disk, so a restart neither forgets nor repeats an alert.

One JSON snapshot, replaced atomically (write a temp file, fsync it, rename it
over the old one, fsync the directory): a crash leaves either the old or the
new snapshot, never half of one.  The alerts are written after each batch that changed
them; the series clocks, much larger, once every five minutes and at stop (``engine-clocks.json``).
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from inventory.errors import where
from sinks.durable import private_dir, write_atomically

__all__ = ["StateStore", "atomic_write_json", "StateFileError"]

log = logging.getLogger(__name__)


class StateFileError(Exception):
    """A state file that exists but cannot be read; the message names the file."""


def atomic_write_json(path: Path, data: Any) -> None:
    path = Path(path)
    private_dir(path.parent)
    write_atomically(path, json.dumps(data, separators=(",", ":"), default=str).encode())


def read_json(path: Path, default: Any) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateFileError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg})") from None


class StateStore:
    """``state_dir/engine-state.json``: the :meth:`alerts.evaluate.Engine.snapshot`, or its
    alerts part, with the clocks part (:meth:`~alerts.evaluate.Engine.snapshot_clocks`) in
    ``engine-clocks.json``, written less often (it is O(series), the alerts part O(alerts))."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "engine-state.json"
        self.clocks_path = Path(state_dir) / "engine-clocks.json"
        self.writes = 0
        self.clock_writes = 0
        # one writer at a time: a tick's write in its thread and the stop's may overlap, and
        # both go through the same temporary name
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any] | None:
        """The last snapshot: the alerts file, with the clocks file's sections over it.

        An unreadable alerts file raises :class:`StateFileError`; an unreadable clocks file only
        costs the clocks (they restart as on a fresh start), so it is logged and left aside."""
        snap = read_json(self.path, None)
        try:
            clocks = read_json(self.clocks_path, None)
        except StateFileError as exc:
            log.error("alert clocks unreadable (%s): the stale and absent clocks restart", exc)
            clocks = None
        if snap is None or not isinstance(clocks, dict):
            return snap
        if isinstance(snap, dict) and clocks.get("version") == snap.get("version"):
            snap.update({k: clocks[k] for k in ("seen", "rate_last") if k in clocks})
        return snap

    def save(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            atomic_write_json(self.path, snapshot)
            self.writes += 1

    def save_clocks(self, clocks: dict[str, Any]) -> None:
        with self._lock:
            atomic_write_json(self.clocks_path, clocks)
            self.clock_writes += 1
