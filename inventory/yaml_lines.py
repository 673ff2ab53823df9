"""Safe YAML loading that remembers the line of every key and list item.

PyYAML's node tree carries marks; we convert it ourselves (safe types only,
duplicate keys refused) and keep ``{path: line}`` so a validation error on
``halls[0].rows[2].racks[3].devices[0].port`` can say which line that is.
"""
from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_with_lines", "YamlProblem", "Path"]

Path = tuple[Any, ...]


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


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse ``text``; return (data, lines) where lines maps a path to a 1-based line."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlProblem(line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - defensive
        raise YamlProblem(None, f"YAML syntax: {exc}") from None
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    constructor = _Constructor()
    return _convert(node, (), lines, constructor), lines


def _convert(node: yaml.Node, path: Path, lines: dict[Path, int], c: yaml.constructor.SafeConstructor) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        c.flatten_mapping(node)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem(key_node.start_mark.line + 1, "mapping keys must be plain scalars", path)
            key = c.construct_object(key_node)
            if key in out:
                raise YamlProblem(
                    key_node.start_mark.line + 1, f"duplicate key {key!r}", path + (key,)
                )
            out[key] = _convert(value_node, path + (key,), lines, c)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, c) for i, item in enumerate(node.value)]
    try:
        return c.construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise YamlProblem(node.start_mark.line + 1, f"cannot read value: {exc.problem}", path) from None
