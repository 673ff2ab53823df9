"""Secrets are references, never values, in every file the project reads.

An inventory says ``community: {env: SNMP_RO}`` or ``password: {file: /run/secrets/bmc}``;
the value is read at run time into a :class:`SecretValue` whose ``repr`` and
``str`` are masked, so a secret cannot reach a log line, an error message or a
``poll`` sample by accident.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SecretRef", "SecretValue", "SecretError", "MASK"]

MASK = "***"


class SecretError(Exception):
    """A secret reference that cannot be resolved.  The message names the
    reference (variable or file), never the value."""


class SecretValue:
    """A resolved secret.  Only :meth:`reveal` gives the clear text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __reduce__(self):
        raise TypeError("secrets are not picklable")


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"

    def resolve(self, *, environ: dict[str, str] | None = None) -> SecretValue:
        """Read the secret.  Files must not be readable by group or others."""
        if self.env:
            env = os.environ if environ is None else environ
            if self.env not in env:
                raise SecretError(f"environment variable {self.env} is not set")
            return SecretValue(env[self.env])
        assert self.file is not None
        path = Path(self.file)
        try:
            st = path.stat()
        except OSError as exc:
            raise SecretError(f"secret file {path}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"secret file {path} is accessible by group/others "
                f"(mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}"
            )
        return SecretValue(path.read_text(encoding="utf-8").rstrip("\r\n"))
