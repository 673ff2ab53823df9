"""Read a site file and turn every problem into ``file:line: field: message``.

Three layers of checks, all reported together where possible:
1. YAML syntax and duplicate keys (:mod:`inventory.yaml_lines`);
2. shapes and ranges (pydantic, :mod:`inventory.model`);
3. cross-references: ids, feeds, cycles, credentials (:mod:`inventory.topology`).
"""
from __future__ import annotations

import re
from pathlib import Path as FsPath
from typing import Any

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from inventory.errors import InventoryError, InventoryIssue
from inventory.model import Site
from inventory.topology import check_references
from inventory.yaml_lines import Path, YamlProblem, load_with_lines, read_limited, short

__all__ = ["load_site", "load_site_text", "load_model", "read_text", "format_path", "pydantic_issues"]

M = TypeVar("M", bound=BaseModel)


def read_text(path: str | FsPath) -> str:
    """A config file's text (size-capped, :func:`inventory.yaml_lines.read_limited`),
    or an :class:`InventoryError` naming the file."""
    p = FsPath(path)
    try:
        return read_limited(p)
    except YamlProblem as exc:
        raise InventoryError([InventoryIssue(str(p), None, "", exc.message)]) from None
    except OSError as exc:
        raise InventoryError([InventoryIssue(str(p), None, "", f"cannot read file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise InventoryError([InventoryIssue(str(p), None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None


def load_model(text: str, filename: str, model: type[M]) -> tuple[M, dict[Path, int]]:
    """Safe YAML -> pydantic model, every problem as ``file:line: field: message``.

    Returns the model and the line table, for checks that come after the shapes.
    """
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as exc:
        raise InventoryError([InventoryIssue(filename, exc.line, format_path(exc.path), exc.message)]) from None
    if not isinstance(data, dict):
        raise InventoryError([InventoryIssue(filename, 1, "", "the file must be a mapping (key: value)")])
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise InventoryError(pydantic_issues(exc, data, lines, filename)) from None


def load_site(path: str | FsPath) -> Site:
    """Load and validate a site file; raise :class:`InventoryError` on any problem."""
    return load_site_text(read_text(path), str(path))


def load_site_text(text: str, filename: str = "<site>") -> Site:
    site, lines = load_model(text, filename, Site)
    problems = check_references(site)
    if problems:
        raise InventoryError(
            [InventoryIssue(filename, line_for(lines, p.path), format_path(p.path), p.message) for p in problems]
        )
    return site


def pydantic_issues(exc: ValidationError, data: Any, lines: dict[Path, int], filename: str) -> list[InventoryIssue]:
    """Map pydantic's errors onto data paths and lines, with messages for people."""
    issues: list[InventoryIssue] = []
    seen: set[tuple] = set()
    for err in exc.errors(include_url=False):
        path = _data_path(data, err["loc"])
        message = _message(err)
        key = (path, message)
        if key in seen:
            continue
        seen.add(key)
        issues.append(InventoryIssue(filename, line_for(lines, path), format_path(path), message))
    return issues


def line_for(lines: dict[Path, int], path: tuple) -> int | None:
    """The line of ``path``, or of its nearest ancestor present in the file."""
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)


#: a key quoted in an error message: a field name, an id, a label.  Anything
#: else (a line of ``/etc/shadow`` read as a key) is shown as ``<key>`` so an
#: error names the line, never the file's contents
_SHOWN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def format_path(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            out += ("." if out else "") + (text if _SHOWN_KEY.match(text) else "<key>")
    return out


def _data_path(data: Any, loc: tuple) -> tuple:
    """Keep only loc parts that exist in the data (pydantic adds union/validator names)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in node and not _looks_like_type(part):
            path.append(part)  # a missing required field or an extra one
            node = None
    return tuple(path)


def _looks_like_type(part: str) -> bool:
    # pydantic names union members and validators in loc: 'str', 'Secret', 'function-after[...]'
    return part[:1].isupper() or "[" in part or part in {"str", "int", "float", "bool", "list", "dict", "none"}


def _message(err: dict) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see docs/inventory.md)"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}; got {short(err.get('input'))}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return _range_message(err)
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return msg
    if kind == "int_type" and isinstance(err.get("input"), bool):
        return f"must be an integer; got {str(err.get('input')).lower()}"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"):
        return f"must be a number; got {short(err.get('input'))}"
    if kind in ("string_type",):
        return f"must be text; got {type(err.get('input')).__name__}"
    if kind in ("list_type",):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (key: value)"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    msg = err["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _range_message(err: dict) -> str:
    loc = [p for p in err["loc"] if isinstance(p, str)]
    name = loc[-1] if loc else ""
    known = {"port": "1..65535", "unit": "0..255", "latitude": "-90..90", "longitude": "-180..180"}
    if name in known:
        return f"must be {known[name]}; got {short(err.get('input'))}"
    ctx = err.get("ctx") or {}
    bound = next(iter(ctx.values()), "?")
    words = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
    return f"must be {words[err['type']]} {bound}; got {short(err.get('input'))}"
