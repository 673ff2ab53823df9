"""Register-map profiles: YAML data -> validated, compiled points.

A profile is vendor knowledge as data.  It is validated once at load with
pydantic, and every problem is reported as ``file:line: points[3].type: ...`` so
the person editing the YAML knows where to look.  Addresses are converted once
here to 0-based PDU addresses, whatever base the profile was written in.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.modbus.decode import TYPE_WIDTH, Decoder, register_count
from contract.states import VOCABULARIES, mapping_problems
from inventory.yaml_lines import YamlProblem, load_with_lines, read_limited

__all__ = ["Point", "Profile", "ProfileError", "load_profile", "load_profile_text", "profile_names", "PROFILE_DIR"]

PROFILE_DIR = Path(__file__).with_name("profiles")
_STRING_RE = re.compile(r"^string\((\d+)\)$")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    function: Literal["holding", "input", "coil", "discrete"] = "holding"
    type: str = "uint16"
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    measurement: str | None = None


class Point(_Strict):
    """One value on the device (see README.md for every key and its default)."""

    field: str = Field(min_length=0)
    address: int = Field(ge=0, le=65535)
    function: Literal["holding", "input", "coil", "discrete"] = "holding"
    type: str = "uint16"
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    scale: float = 1.0
    offset: float = 0.0
    convert: Literal["f_to_c"] | None = None
    unit: str = ""
    measurement: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    enum: dict[int, str] | None = None
    #: contract.states vocabulary the enum's words map onto; ``states`` maps the words that are not already its own
    vocabulary: str | None = None
    states: dict[str, str] | None = None
    bits: dict[int, str] | None = None
    doc: str = ""

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v == "bool" or v in TYPE_WIDTH:
            return v
        m = _STRING_RE.match(v)
        if m and 1 <= int(m.group(1)) <= 125:
            return v
        known = ", ".join(sorted(TYPE_WIDTH)) + ", string(N), bool"
        raise ValueError(f"unknown type {v!r} (known: {known})")

    @field_validator("field")
    @classmethod
    def _field_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"field name {v!r} must be lower_snake_case ending in its unit (e.g. power_w)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Point":
        bit_fn = self.function in ("coil", "discrete")
        if bit_fn and self.type != "bool":
            raise ValueError(f"{self.function} points are single bits: type must be bool, not {self.type}")
        if not bit_fn and self.type == "bool":
            raise ValueError("type bool is only for coil and discrete points; use bitfield with bits: for register flags")
        if self.bits is not None and not self.type.startswith("bitfield"):
            raise ValueError("bits: needs type bitfield or bitfield32")
        if self.bits is not None:
            top = 16 * register_count(self.type)
            bad = [b for b in self.bits if not 0 <= b < top]
            if bad:
                raise ValueError(f"bit numbers {bad} out of range 0..{top - 1}")
        if not self.field and not self.bits:
            raise ValueError("field is required (only a bitfield with bits: may omit it)")
        if self.enum is not None and (self.type.startswith("float") or self.type.startswith("string")):
            raise ValueError("enum: needs an integer type")
        if self.vocabulary is None:
            if self.states is not None:
                raise ValueError("states: needs vocabulary: (the contract.states vocabulary its words belong to)")
            if self.enum is not None and self.field == "state":
                raise ValueError(f"a state field needs vocabulary: (one of {', '.join(sorted(VOCABULARIES))}), "
                                 "see docs/conventions.md")
        else:
            if self.enum is None:
                raise ValueError("vocabulary: needs enum: (the vendor's words to map)")
            problems = mapping_problems(self.vocabulary, self.enum.values(), self.states or {})
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def width(self) -> int:
        return register_count(self.type)

    def decoder(self) -> Decoder:
        integer = self.type not in ("float32", "float64") and not self.type.startswith("string")
        as_int = (integer and self.scale == 1.0 and self.offset == 0.0 and self.convert is None
                  and self.enum is None and self.bits is None)
        return Decoder(
            field=self.field, type=self.type, order=self.order, scale=self.scale, offset=self.offset,
            convert=self.convert, enum=self.enum, bits=self.bits, width=self.width, as_int=as_int,
            states=None if self.vocabulary is None or self.enum is None
            else {w: (self.states or {}).get(w, w) for w in self.enum.values()},
        )


class Profile(_Strict):
    """A device's register map: identity, addressing base, defaults and points."""

    name: str
    vendor: str = ""
    model: str = ""
    description: str = ""
    source: str = ""
    measurement: str
    address_base: Literal[0, 1] = 0
    defaults: Defaults = Field(default_factory=Defaults)
    max_gap: int | None = Field(default=None, ge=0, le=124)
    max_registers: int | None = Field(default=None, ge=1, le=125)
    points: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_fields(self) -> "Profile":
        seen: dict[tuple, int] = {}
        for i, p in enumerate(self.points):
            names = list(p.bits.values()) if p.bits else []
            if p.field:
                names.append(p.field)
            key_base = (p.measurement or self.measurement, tuple(sorted(p.tags.items())))
            for n in names:
                if (key_base, n) in seen:
                    raise ValueError(f"points[{i}]: field {n!r} with the same tags repeats points[{seen[(key_base, n)]}]")
                seen[(key_base, n)] = i
        return self


def _apply_defaults(raw: dict) -> dict:
    """Fill each point from ``defaults`` and convert 1-based addresses to 0-based, once."""
    defaults = raw.get("defaults") or {}
    base = raw.get("address_base", 0)
    points = []
    for p in raw.get("points") or []:
        if not isinstance(p, dict):
            points.append(p)
            continue
        merged = {k: v for k, v in defaults.items() if k in ("function", "type", "order", "measurement")}
        merged.update(p)
        if base == 1 and isinstance(merged.get("address"), int):
            merged["address"] = merged["address"] - 1
        points.append(merged)
    out = dict(raw)
    out["points"] = points
    return out


def load_profile_text(text: str, source: str = "<profile>") -> Profile:
    """Parse and validate one profile; errors read ``source:line: field: problem``."""
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as exc:
        raise ProfileError(f"{source}:{exc.line or '?'}: {exc.message}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}:1: a profile is a mapping with name, measurement and points")
    try:
        return Profile.model_validate(_apply_defaults(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            m = re.match(r"points\[(\d+)\]: ", msg)
            if not loc and m:  # a whole-profile check that names the point at fault
                loc, msg = ("points", int(m.group(1))), msg[m.end():]
            line = None
            for n in range(len(loc), -1, -1):  # nearest enclosing key that has a line
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            where = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in loc).replace(".[", "[")
            if loc and loc[-1] == "address" and data.get("address_base") == 1:
                msg += " (address_base is 1: addresses are register numbers, 1..65536)"
            problems.append(f"{source}:{line or '?'}: {where}: {msg}")
        raise ProfileError("\n".join(problems)) from None


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``eastron_sdm630``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ProfileError(f"unknown Modbus profile {str(name_or_path)!r} (known: {', '.join(profile_names())})")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _load_cached(path: str, _mtime: int) -> Profile:
    try:
        text = read_limited(path)
    except YamlProblem as exc:
        raise ProfileError(f"{path}: {exc.message}") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return load_profile_text(text, path)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
