"""What SNMP and Modbus profiles share: one schema mechanism and one error.

Profiles are vendor knowledge as YAML, edited by people.  Both kinds are
pydantic models with ``extra='forbid'`` (a misspelt key such as
``sysobjectids:`` is refused instead of loading as a profile that never
matches), parsed and validated by :mod:`inventory.schema`, so every problem
reads ``file:line: field: message`` exactly like a site-file problem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict

from contract.tags import LOCATION_TAGS
from inventory.errors import InventoryError, InventoryIssue
from inventory.loader import read_text
from inventory.schema import parse_yaml, validate
from inventory.yaml_lines import Path as DataPath

__all__ = ["ProfileError", "Strict", "parse_profile", "read_profile", "component_tag"]

M = TypeVar("M", bound=BaseModel)


class ProfileError(ValueError):
    """A profile that cannot be used; one ``file:line: field: message`` line per problem."""

    def __init__(self, issues: list[InventoryIssue] | str) -> None:
        self.issues = [InventoryIssue("", None, "", issues)] if isinstance(issues, str) else list(issues)
        super().__init__(issues if isinstance(issues, str) else "\n".join(str(i) for i in self.issues))


def component_tag(name: Any) -> Any:
    """A tag a profile sets must be a component tag: the location tags are the inventory's.

    A profile tag named ``device`` or ``rack`` would overwrite the inventory's
    value (or be overwritten by it) and break series identity, so it is refused.
    """
    if isinstance(name, str) and name in LOCATION_TAGS:
        raise ValueError(f"{name!r} is a location tag ({', '.join(LOCATION_TAGS)}), added by the inventory; "
                         "name the component instead (e.g. pdu, phase, outlet, sensor)")
    return name


class Strict(BaseModel):
    """Base of every profile model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def read_profile(path: str | Path) -> str:
    """A profile file's text (size-capped), or a :class:`ProfileError` naming it (:func:`inventory.loader.read_text`)."""
    return read_text(path, what="profile", error=ProfileError)


def parse_profile(text: str, source: str, model: type[M], docs: str, what: str,
                  prepare: Callable[[dict], dict] | None = None) -> tuple[M, Any, dict[DataPath, int]]:
    """YAML text -> validated ``model``, the parsed data and its line table.

    ``prepare`` rewrites the parsed mapping before validation (Modbus fills
    points from ``defaults``); it must tolerate any shape, since it runs before
    the schema has looked at anything.
    """
    try:
        data, lines = parse_yaml(text, source)
        if not isinstance(data, dict):
            raise InventoryError([InventoryIssue(source, 1, "", what)])
        return validate(prepare(data) if prepare else data, lines, source, model, docs=docs, what=what,
                        hints=True), data, lines
    except InventoryError as exc:
        raise ProfileError(exc.issues) from None
