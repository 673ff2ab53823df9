"""A small private tmpfs: a real disk that fills up (ENOSPC) or turns read-only (EROFS).

Needs root (CI runs as root).  A mount that fails raises :class:`ServerStartError`
with mount's own words, so a test that needs a full disk fails loudly, never skips.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from localservers.process import ServerStartError

__all__ = ["Tmpfs"]


class Tmpfs:
    def __init__(self, path: Path, size_kib: int = 256) -> None:
        self.path = Path(path)
        self.size_kib = size_kib
        self.mounted = False

    def __enter__(self) -> "Tmpfs":
        self.path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kib}k,mode=0700", "tmpfs", str(self.path)],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode:
            raise ServerStartError(f"cannot mount a tmpfs at {self.path}: {proc.stderr.strip() or proc.returncode}")
        self.mounted = True
        return self

    def __exit__(self, *exc) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
            self.mounted = False

    def fill(self, name: str = "filler") -> Path:
        """Write a file until the disk is full; return it (delete it to make room again)."""
        filler = self.path / name
        chunk = b"\0" * 4096
        with open(filler, "wb", buffering=0) as fh:
            while True:
                try:
                    fh.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        return filler

    def read_only(self, on: bool = True) -> None:
        """Remount read-only (EROFS on every write) or back to read-write."""
        mode = "ro" if on else "rw"
        proc = subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], capture_output=True, text=True, timeout=30)
        if proc.returncode:
            raise ServerStartError(f"cannot remount {self.path} {mode}: {proc.stderr.strip()}")

    @staticmethod
    def free_bytes(path: Path) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize
