"""YAML -> pydantic model, every problem as ``file:line: field: message``.

One mechanism for every file a person edits: the site file, the run config,
rule files and rule tests, SNMP and Modbus profiles.  Safe YAML with a line for
every key (:mod:`inventory.yaml_lines`), pydantic models with ``extra='forbid'``
(so a typo is an error, not a silently ignored key), and pydantic's errors
mapped back onto the path the person wrote and the line it is on.
"""
from __future__ import annotations

import re
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from inventory.errors import InventoryError, InventoryIssue
from inventory.yaml_lines import Path, YamlProblem, load_with_lines, short

__all__ = ["load_model", "parse_yaml", "validate", "pydantic_issues", "line_for", "format_path"]

M = TypeVar("M", bound=BaseModel)
_DOCS = "docs/inventory.md"


def parse_yaml(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    """Safe YAML with lines; a syntax error or duplicate key as an :class:`InventoryError`."""
    try:
        return load_with_lines(text)
    except YamlProblem as exc:
        raise InventoryError([InventoryIssue(filename, exc.line, format_path(exc.path), exc.message)]) from None


def validate(data: Any, lines: dict[Path, int], filename: str, model: type[M], docs: str = _DOCS,
             what: str = "the file must be a mapping (key: value)", hints: bool = False) -> M:
    """Validate parsed YAML against ``model``; every problem at once, with its line (``hints``: see
    :func:`pydantic_issues`)."""
    if not isinstance(data, dict):
        raise InventoryError([InventoryIssue(filename, 1, "", what)])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(pydantic_issues(exc, data, lines, filename, model=model if hints else None,
                                             docs=docs)) from None


def load_model(text: str, filename: str, model: type[M], docs: str = _DOCS) -> tuple[M, dict[Path, int]]:
    """Safe YAML -> pydantic model; returns the model and the line table, for checks that come after the shapes."""
    data, lines = parse_yaml(text, filename)
    return validate(data, lines, filename, model, docs), lines


_KEY_FIRST = re.compile(r"^([a-z][a-z0-9_]*): ")


def pydantic_issues(exc: ValidationError, data: Any, lines: dict[Path, int], filename: str,
                    model: type[BaseModel] | None = None, docs: str = _DOCS) -> list[InventoryIssue]:
    """Map pydantic's errors onto data paths and lines, with messages for people.

    With ``model`` (profiles pass it): an unknown key also lists the keys that
    are known there (a typo shows its fix), and a model check whose message
    starts with one of the model's keys (``states: 'x' maps onto ...``) is
    placed on that key and its line.
    """
    issues: list[InventoryIssue] = []
    seen: set[tuple] = set()
    for err in exc.errors(include_url=False):
        path = _data_path(data, err["loc"])
        message = _message(err, docs)
        if model is not None and err["type"] == "extra_forbidden":
            known = _known_keys(model, err["loc"][:-1])
            if known:
                message += f"; known here: {', '.join(known)}"
        elif model is not None and err["type"] == "value_error":
            m = _KEY_FIRST.match(message)
            if m and m.group(1) in _known_keys(model, err["loc"]):
                path, message = path + (m.group(1),), message[m.end():]
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
    """``("halls", 0, "rows")`` -> ``halls[0].rows``: the path as the person reads it in YAML."""
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


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            out += _models_in(arg)
    return out


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model accepts at ``loc`` (a pydantic error location), or [] if it cannot tell."""
    current = [model]
    for part in loc:
        if isinstance(part, int) or not current:
            continue  # list index or dict key: the same models hold below it
        nxt: list[type[BaseModel]] = []
        for m in current:
            if part in m.model_fields:
                nxt += _models_in(m.model_fields[part].annotation)
            elif part == m.__name__:
                nxt.append(m)  # pydantic names the union member it tried
        if nxt:
            current = nxt
        elif not _looks_like_type(str(part)):
            # a dict key (e.g. units: {C: ...}): the same models hold below it
            continue
    if len(current) != 1:
        return []
    return sorted(f.alias or name for name, f in current[0].model_fields.items())


def _message(err: dict, docs: str = _DOCS) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (check the spelling; see {docs})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}; got {short(err.get('input'))}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return _range_message(err)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "int_type" and isinstance(err.get("input"), bool):
        return f"must be an integer; got {str(err.get('input')).lower()}"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"):
        return f"must be a number; got {short(err.get('input'))}"
    if kind in ("string_type",):
        if isinstance(err.get("input"), bool):  # YAML 1.1 reads on/off/yes/no unquoted as booleans
            return f"must be text; got {err['input']!r} (quote it: unquoted on/off/yes/no are booleans in YAML)"
        return f"must be text; got {type(err.get('input')).__name__}"
    if kind in ("list_type",):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (key: value)"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("too_short",) and ctx.get("min_length") == 1:
        return "must not be empty"
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
