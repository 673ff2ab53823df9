"""Read a site file and turn every problem into ``file:line: field: message``.

Three layers of checks, all reported together where possible:
1. YAML syntax and duplicate keys (:mod:`inventory.yaml_lines`);
2. shapes and ranges (pydantic, :mod:`inventory.model`, through :mod:`inventory.schema`);
3. cross-references: ids, feeds, cycles, credentials (:mod:`inventory.topology`).
"""
from __future__ import annotations

from pathlib import Path as FsPath
from typing import Callable

from inventory.errors import InventoryError, InventoryIssue
from inventory.model import Device, Site
from inventory.schema import format_path, line_for, load_model, parse_yaml, pydantic_issues, validate
from inventory.site_cache import read_cached, write_cached
from inventory.subset import keep_upstream
from inventory.topology import check_references
from inventory.yaml_lines import YamlProblem, read_limited

#: load_model, line_for, format_path and pydantic_issues live in inventory.schema (re-exported for callers)
__all__ = ["load_site", "load_site_text", "load_model", "read_text", "format_path", "pydantic_issues", "line_for"]


def read_text(path: str | FsPath, *, what: str = "file",
              error: Callable[[list[InventoryIssue]], Exception] = InventoryError) -> str:
    """A config file's text (size-capped, :func:`inventory.yaml_lines.read_limited`),
    or ``error`` (an :class:`InventoryError` by default) naming the file; ``what`` it is, in the message."""
    p = FsPath(path)
    try:
        return read_limited(p)
    except YamlProblem as exc:
        raise error([InventoryIssue(str(p), None, "", exc.message)]) from None
    except OSError as exc:
        raise error([InventoryIssue(str(p), None, "", f"cannot read {what}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise error([InventoryIssue(str(p), None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None


def load_site(path: str | FsPath, *, local: Callable[[Device], bool] | None = None) -> Site:
    """Load and validate a site file; raise :class:`InventoryError` on any problem.

    A big file that passed every check before loads from the compiled cache
    (:mod:`inventory.site_cache`: the same data, validated by the same model, without
    parsing the YAML again): the full site in ≈2.7 s of CPU instead of 10-20.

    ``local``: a collector shard's test of its own devices; the site then keeps only
    those and the devices upstream of them (:mod:`inventory.subset`).  The whole file
    is still checked (or was, for a cached one).
    """
    text = read_text(path)
    site = read_cached(text, local=local)
    if site is None:
        site, data = _load_site_data(text, str(path))
        write_cached(text, data)
        del data
    if local is not None:
        keep_upstream(site, local)
    return site


def load_site_text(text: str, filename: str = "<site>") -> Site:
    return _load_site_data(text, filename)[0]


def _load_site_data(text: str, filename: str) -> tuple[Site, dict]:
    """The checked site and the plain data it was validated from (for the cache)."""
    data, lines = parse_yaml(text, filename)
    site = validate(data, lines, filename, Site)
    problems = check_references(site)
    if problems:
        raise InventoryError(
            [InventoryIssue(filename, line_for(lines, p.path), format_path(p.path), p.message) for p in problems]
        )
    return site, data
