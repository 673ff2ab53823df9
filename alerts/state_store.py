"""The engine's state on disk, so a restart neither forgets nor repeats an alert.

One JSON snapshot, replaced atomically (write a temp file, fsync it, rename it
over the old one, fsync the directory): a crash leaves either the old or the
new snapshot, never half of one.  Written after each batch that changed state.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inventory.errors import where
from sinks.durable import private_dir, write_atomically

__all__ = ["StateStore", "atomic_write_json", "StateFileError"]


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
    """``state_dir/engine-state.json``: the :meth:`alerts.evaluate.Engine.snapshot`."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "engine-state.json"
        self.writes = 0

    def load(self) -> dict[str, Any] | None:
        return read_json(self.path, None)

    def save(self, snapshot: dict[str, Any]) -> None:
        atomic_write_json(self.path, snapshot)
        self.writes += 1
