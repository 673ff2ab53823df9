"""A compiled cache of validated site files, keyed by the file's hash and the checking code.

Why: the full site's 14 MB YAML file costs 10-17 s of CPU and ≈780 MB to parse with
line marks (the node tree), every start of every shard, the twin and every
``dcim`` command, although the file rarely changes.  Once a file has passed every
check, its plain data (what the YAML held) is written with :mod:`marshal` (plain
values only: it cannot build arbitrary objects the way pickle can); the next load of
the same bytes reads that (≈0.1 s) and hands it to the same pydantic model, so
the shapes are validated again and a cached site is the site the file describes.

The key is SHA-256 of the file's bytes plus a fingerprint of the ``inventory``
package's source: a changed file, or a new check in the loader, misses the cache
and takes the full path (which writes a new entry).  Only files of at least
:data:`MIN_BYTES` are cached (small files load in milliseconds; tests write
thousands of them).

Where: ``$DCIM_SITE_CACHE`` (a directory, or ``off``), else
``$XDG_CACHE_HOME/dcim/sites`` or ``~/.cache/dcim/sites``; created mode 0700, entries
mode 0600, written to a temporary name and renamed, so a reader never sees half an
entry.  A directory that cannot be created or written only means no cache.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import marshal
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from inventory.model import Device, Hall, Site
from inventory.subset import prune_leaves

__all__ = ["MIN_BYTES", "cache_dir", "cache_key", "read_cached", "write_cached"]

log = logging.getLogger("dcim.inventory")

#: files smaller than this are not cached
MIN_BYTES = 1 << 20
_FORMAT = b"dcim-site-cache-2"


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    chosen = env.get("DCIM_SITE_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else Path(chosen)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dcim" / "sites"


@lru_cache(maxsize=1)
def _code_fingerprint() -> bytes:
    """Hash of the inventory package's source and the pydantic version: what decides
    whether a file passes."""
    import pydantic

    h = hashlib.sha256(_FORMAT + pydantic.VERSION.encode())
    here = Path(__file__).resolve().parent
    for src in sorted(here.glob("*.py")):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.digest()


def cache_key(text: str) -> str:
    return hashlib.sha256(_code_fingerprint() + text.encode("utf-8")).hexdigest()


def _entry(text: str, environ: dict[str, str] | None) -> Path | None:
    """Where ``text``'s cache entry lives, or None: a small file, or the cache is off."""
    if len(text) < MIN_BYTES:
        return None
    d = cache_dir(environ)
    return None if d is None else d / f"{cache_key(text)}.marshal"


def read_cached(text: str, environ: dict[str, str] | None = None,
                local: Callable[[Device], bool] | None = None) -> Site | None:
    """The validated site of a file that passed every check before, or None.

    Halls are stored (and validated) one at a time, so the plain data of only one
    hall is alive beside the models: the peak stays near what the site itself needs.
    With ``local`` (a collector shard's test of its own devices), each hall's leaf
    devices of other shards are dropped as soon as it is read
    (:func:`inventory.subset.prune_leaves`).
    """
    entry = _entry(text, environ)
    if entry is None:
        return None
    try:
        st = entry.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            log.warning("site cache %s is not private to this user: ignored", entry)
            return None
        stored = marshal.loads(entry.read_bytes())
        head, halls = stored["head"], stored["halls"]
        models = []
        while halls:
            plain = marshal.loads(halls.pop(0))
            if local is not None:
                prune_leaves(plain, local)
            models.append(Hall.model_validate(plain))
        return Site.model_validate({**head, "halls": models})
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, TypeError, KeyError, ValidationError) as exc:
        log.warning("site cache %s unusable (%s): loading the file itself", entry, str(exc)[:200])
        return None


def write_cached(text: str, data: dict[str, Any], environ: dict[str, str] | None = None) -> Path | None:
    """Remember ``data`` (from a file that passed every check) for the next load of ``text``."""
    entry = _entry(text, environ)
    if entry is None:
        return None
    d = entry.parent
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        head = _plain({k: v for k, v in data.items() if k != "halls"})
        blob = marshal.dumps({"head": head, "halls": [marshal.dumps(_plain(h)) for h in data.get("halls", [])]})
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".marshal")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, ValueError) as exc:
        log.debug("site cache not written (%s)", exc)
        return None
    return entry


def _plain(value: Any) -> Any:
    """What marshal can hold: dates (meter commissioning) as ISO text, which the model reads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
