"""Register-map profiles: YAML data -> validated, compiled points.

A profile is vendor knowledge as data.  It is validated once at load by the
schema mechanism every profile shares (:mod:`collectors.profile_schema`:
pydantic, unknown keys refused), and every problem is reported as
``file:line: points[3].type: ...`` so the person editing the YAML knows where to look.  Addresses are converted once
here to 0-based PDU addresses, whatever base the profile was written in.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from collectors.modbus.decode import TYPE_WIDTH, Decoder, register_count
from collectors.profile_schema import ProfileError, Strict, component_tag, parse_profile, read_profile
from contract.fields import field_kind
from contract.states import VOCABULARIES, mapping_problems
from inventory.errors import InventoryIssue
from inventory.schema import format_path, line_for

__all__ = ["Point", "Profile", "ProfileError", "load_profile", "load_profile_text", "profile_names", "PROFILE_DIR"]

PROFILE_DIR = Path(__file__).with_name("profiles")
_STRING_RE = re.compile(r"^string\((\d+)\)$")
_ONE_BASED = re.compile(r"^address_base:\s*1\s*(#.*)?$", re.M)


class Defaults(Strict):
    function: Literal["holding", "input", "coil", "discrete"] = "holding"
    type: str = "uint16"
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    measurement: str | None = None


class Point(Strict):
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
    tags: dict[Annotated[str, AfterValidator(component_tag)], str] = Field(default_factory=dict)
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
        # an unscaled integer register stays an int only for a counter or a code (exact); a gauge is a
        # float, as every other protocol writes it: one field, one InfluxDB type per measurement (a
        # CDU's speed_rpm from this map and from Redfish land in the same ``cdu`` measurement)
        as_int = (integer and self.scale == 1.0 and self.offset == 0.0 and self.convert is None
                  and self.enum is None and self.bits is None
                  and field_kind(self.field, "integer") in ("counter", "state"))
        return Decoder(
            field=self.field, type=self.type, order=self.order, scale=self.scale, offset=self.offset,
            convert=self.convert, enum=self.enum, bits=self.bits, width=self.width, as_int=as_int,
            states=None if self.vocabulary is None or self.enum is None
            else {w: (self.states or {}).get(w, w) for w in self.enum.values()},
        )


class Profile(Strict):
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
    #: another shipped profile (or a file beside this one) whose points come first: a two-loop
    #: CDU adds its second loop to the one-loop template without copying the first
    extends: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$")] | None = None
    points: list[Point] = Field(min_length=1)


def _repeated_fields(profile: Profile, base_name: str = "", base_count: int = 0) -> list[tuple[tuple, str]]:
    """(path, message) for each point whose field, measurement and tags repeat an earlier point's.

    The first ``base_count`` points come from the profile ``base_name`` extends; paths and
    messages number this file's own points, and name the base for a repeat of one of its points.
    """
    seen: dict[tuple, int] = {}
    out = []
    for i, p in enumerate(profile.points):
        names = list(p.bits.values()) if p.bits else []
        if p.field:
            names.append(p.field)
        key_base = (p.measurement or profile.measurement, tuple(sorted(p.tags.items())))
        for n in names:
            if (key_base, n) in seen:
                j = seen[(key_base, n)]
                earlier = f"{base_name}'s points[{j}]" if j < base_count else f"points[{j - base_count}]"
                out.append((("points", i - base_count), f"field {n!r} with the same tags repeats {earlier}"))
            else:
                seen[(key_base, n)] = i
    return out


def _apply_defaults(raw: dict) -> dict:
    """Fill each point from ``defaults`` and convert 1-based addresses to 0-based, once.

    Runs before validation, so it leaves anything of the wrong shape for the schema to name.
    """
    defaults = raw.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    base = raw.get("address_base", 0)
    points = raw.get("points")
    if not isinstance(points, list):
        return raw
    out_points = []
    for p in points:
        if not isinstance(p, dict):
            out_points.append(p)
            continue
        merged = {k: v for k, v in defaults.items() if k in ("function", "type", "order", "measurement")}
        merged.update(p)
        addr = merged.get("address")
        if base == 1 and isinstance(addr, int) and not isinstance(addr, bool):
            merged["address"] = addr - 1
        out_points.append(merged)
    return {**raw, "points": out_points}


def load_profile_text(text: str, source: str = "<profile>", _chain: tuple[str, ...] = ()) -> Profile:
    """Parse and validate one profile; errors read ``source:line: field: problem``.

    ``extends: NAME`` puts the points of profile ``NAME`` (a file ``NAME.yaml`` beside this one,
    else the shipped profile) before this profile's own; a field both define with the same tags
    is refused as a repeat, so an extension adds points and never silently overrides one.
    """
    try:
        profile, data, lines = parse_profile(text, source, Profile, docs="collectors/modbus/README.md",
                                             what="a profile is a mapping with name, measurement and points",
                                             prepare=_apply_defaults)
    except ProfileError as exc:
        raise ProfileError([_one_based_hint(i, text) for i in exc.issues]) from None
    base_count = 0
    if profile.extends is not None:
        base = _base_profile(profile, source, line_for(lines, ("extends",)), _chain + (profile.name,))
        base_count = len(base.points)
        profile = profile.model_copy(update={"points": base.points + profile.points})
    repeated = _repeated_fields(profile, profile.extends or "", base_count)
    if repeated:
        raise ProfileError([InventoryIssue(source, line_for(lines, path), format_path(path), msg) for path, msg in repeated])
    return profile


def _base_profile(profile: Profile, source: str, line: int | None, chain: tuple[str, ...]) -> Profile:
    """The profile ``profile.extends`` names, checked: it exists, is no cycle, writes the same measurement."""
    def refuse(message: str) -> ProfileError:
        return ProfileError([InventoryIssue(source, line, "extends", message)])

    name = profile.extends
    if name in chain:
        raise refuse(f"{' -> '.join(chain + (name,))}: a profile cannot extend itself")
    beside = Path(source).with_name(f"{name}.yaml")
    path = beside if beside.is_file() else PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise refuse(f"no profile {name!r} beside this file or shipped (known: {', '.join(profile_names())})")
    base = load_profile_text(read_profile(str(path)), str(path), chain)
    if base.name != name:
        raise refuse(f"{path.name} defines the profile {base.name!r}, not {name!r}")
    if base.measurement != profile.measurement:
        raise refuse(f"{name} writes measurement {base.measurement!r}, this profile {profile.measurement!r}: "
                     "an extension adds points to the same measurement")
    return base


def _one_based_hint(issue: InventoryIssue, text: str) -> InventoryIssue:
    """An address refused in a 1-based profile: say so in its own numbering (0 is not a register number)."""
    if issue.field.endswith(".address") and _ONE_BASED.search(text) and "must be >=" in issue.message:
        return InventoryIssue(issue.file, issue.line, issue.field,
                              "must be 1..65536 (address_base is 1: addresses are register numbers)")
    return issue


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``eastron_sdm630``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ProfileError(f"unknown Modbus profile {str(name_or_path)!r} (known: {', '.join(profile_names())})")
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ProfileError([InventoryIssue(str(path), None, "", f"cannot read profile: {exc.strerror}")]) from None
    return _load_cached(str(path.resolve()), mtime)


@lru_cache(maxsize=256)
def _load_cached(path: str, _mtime: int) -> Profile:
    return load_profile_text(read_profile(path), path)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
