"""Inventory errors a person reads: ``file:line: field.path: what is wrong``."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InventoryIssue", "InventoryError"]


@dataclass(frozen=True, slots=True)
class InventoryIssue:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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
