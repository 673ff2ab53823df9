"""Where the real-device recordings live: ``../shared/testdata`` beside the checkout.

They are read-only: servers are given copies.  Missing data is an error, never a skip.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["shared_testdata"]

_REPO = Path(__file__).resolve().parent.parent


def shared_testdata() -> Path:
    path = _REPO.parent / "shared" / "testdata"
    if not path.is_dir():
        raise RuntimeError(f"real-device test data not found at {path}; it ships beside the checkout as ../shared/testdata")
    return path
