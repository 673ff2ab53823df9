"""Safe, bounded YAML loading that remembers the line of every key and list item.

Every file the project reads (site, rules, rule tests, profiles, service
config) comes through here, so the bounds that keep a hostile file from
costing gigabytes live in one place:

- a size cap (:data:`MAX_FILE_BYTES`, checked before reading and on the text);
- aliases (``*name``) and merge keys (``<<:``) refused: an alias is how a
  200-byte "billion laughs" file expands to gigabytes, and a merge hides
  which line a field came from; write the values out instead;
- integers beyond 64 bits and NaN/infinity refused (no 5,000-digit ports, no
  ``threshold: .nan`` that can never fire);
- nesting depth capped (libyaml refuses deeper documents itself).

PyYAML's node tree carries marks; we convert it ourselves (safe types only,
duplicate keys refused) and keep ``{path: line}`` so a validation error on
``halls[0].rows[2].racks[3].devices[0].port`` can say which line that is.
"""
from __future__ import annotations

import math
import os
from typing import Any

import yaml

__all__ = ["load_with_lines", "read_limited", "YamlProblem", "Path", "MAX_FILE_BYTES", "short"]

Path = tuple[Any, ...]

#: 2.3x the generated full Tétouan site (13.7 MB, 52,759 devices); a bigger
#: file is refused before it is read
MAX_FILE_BYTES = 32 << 20
#: integers a field may hold: signed 64-bit (counters, ports, ids all fit)
_INT_LIMIT = 1 << 63
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: collections are plain mappings and lists; ``!!python/object`` and other
#: tags on them are refused rather than quietly ignored
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class YamlProblem(Exception):
    def __init__(self, line: int | None, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.path = path


class _Constructor(yaml.constructor.SafeConstructor):
    pass


#: libyaml's parser when PyYAML was built with it: ~10x faster on the full
#: site's 50,000-device file, same node tree and marks (safe either way: we
#: only compose nodes and construct plain scalars ourselves)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages quote input, never whole files."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_big(size: int | None, max_bytes: int) -> str:
    size_text = f" ({size / 2**20:.1f} MiB)" if size is not None else ""
    return f"file is larger than the {max_bytes / 2**20:.0f} MiB limit{size_text}: check that it is the file you meant"


def read_limited(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A file's UTF-8 text, refusing (:class:`YamlProblem`) one over ``max_bytes`` without reading it all.

    ``OSError`` and ``UnicodeDecodeError`` pass through for the caller to word.
    Reads at most ``max_bytes + 1`` bytes, so a growing file or a device node
    (``/dev/zero``) cannot make it read forever.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise YamlProblem(None, _too_big(size, max_bytes))
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # a pipe or device node that reports size 0
        raise YamlProblem(None, _too_big(None, max_bytes))
    return data.decode("utf-8")


def load_with_lines(text: str, max_bytes: int = MAX_FILE_BYTES) -> tuple[Any, dict[Path, int]]:
    """Parse ``text``; return (data, lines) where lines maps a path to a 1-based line.

    Cost is linear in ``len(text)``, which is capped at ``max_bytes``.
    """
    if len(text) > max_bytes:
        raise YamlProblem(None, _too_big(len(text), max_bytes))
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlProblem(line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        raise YamlProblem(line, f"YAML syntax: character {exc.character!r} is not allowed in YAML text") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise YamlProblem(None, f"YAML syntax: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    try:
        return _Converter(lines).convert(node, ()), lines
    except RecursionError:
        raise YamlProblem(None, "nested too deeply") from None
    except _Alias:
        raise YamlProblem(_first_alias_line(text), "YAML aliases (*name) are not allowed: write the value out") from None


class _Alias(Exception):
    """A node reached twice: the composed tree shares an aliased node."""


def _first_alias_line(text: str) -> int | None:
    """The line of the first ``*alias`` (the composed tree only knows the anchor's line).

    Only called on the error path, so the second pass costs nothing on good files.
    """
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            return event.start_mark.line + 1
    return None


class _Converter:
    """Node tree -> plain data, visiting each node once (a second visit is an alias)."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.seen: set[int] = set()
        self.c = _Constructor()

    def convert(self, node: yaml.Node, path: Path) -> Any:
        line = node.start_mark.line + 1
        if id(node) in self.seen:
            raise _Alias()
        self.seen.add(id(node))
        self.lines[path] = line
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise YamlProblem(line, f"YAML tag {short(node.tag)} is not allowed: write a plain mapping or list", path)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                kline = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    raise YamlProblem(kline, "YAML merge keys (<<) are not allowed: write the fields out", path)
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlProblem(kline, "mapping keys must be plain scalars", path)
                key = self.scalar(key_node, path)
                if key in out:
                    raise YamlProblem(kline, f"duplicate key {short(key)}", path + (key,))
                out[key] = self.convert(value_node, path + (key,))
                self.lines[path + (key,)] = kline
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path) -> Any:
        line = node.start_mark.line + 1
        if node.tag == _INT_TAG and len(str(node.value)) > 40:
            raise YamlProblem(line, "integer out of range (more than 64 bits)", path)
        try:
            value = self.c.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            raise YamlProblem(line, f"cannot read value: {exc.problem}", path) from None
        except (ValueError, OverflowError) as exc:
            raise YamlProblem(line, f"cannot read value: {str(exc)[:80]}", path) from None
        if isinstance(value, int) and not isinstance(value, bool) and not -_INT_LIMIT <= value < _INT_LIMIT:
            raise YamlProblem(line, "integer out of range (more than 64 bits)", path)
        if isinstance(value, float) and not math.isfinite(value):
            raise YamlProblem(line, "NaN and infinity are not allowed: write a finite number", path)
        return value
