"""Inventory errors a person reads: ``file:line: field.path: what is wrong``."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InventoryIssue", "InventoryError", "where"]


def where(file: object, line: int | None) -> str:
    """``file:line``, or ``file`` when the line is unknown: the one spelling of a location in
    every message a person reads (site, config, rules, profiles, report inputs, state files),
    so editors and CI annotations can jump to it."""
    return f"{file}:{line}" if line else str(file)


@dataclass(frozen=True, slots=True)
class InventoryIssue:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        at = where(self.file, self.line)
        return f"{at}: {self.field}: {self.message}" if self.field else f"{at}: {self.message}"


class InventoryError(Exception):
    """One or more problems in an inventory file; ``issues`` lists them all."""

    def __init__(self, issues: list[InventoryIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))

    def print_issues(self, stream=None) -> None:
        """One ``file:line: field: message`` line per problem, to stderr (the CLIs' way to refuse a file)."""
        import sys

        for issue in self.issues:
            print(issue, file=stream or sys.stderr)
