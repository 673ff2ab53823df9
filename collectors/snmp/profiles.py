"""Vendor profiles: YAML data, validated once with ``file:line: field: problem`` errors
and compiled to plain tuples so the hot path does no MIB or YAML work.

Validation is the schema below (pydantic models, unknown keys refused, no type
coercion) through :mod:`collectors.profile_schema`, the mechanism Modbus
profiles and the site file share; compilation (``_group``, ``_compile``) only
ever sees validated data.

Profile file layout (see README.md for every key)::

    name: apc-rpdu2
    mib: PowerNet-MIB
    detect: {sysobjectid: [1.3.6.1.4.1.318.1.3.4], require: OID, priority: 10}
    groups:
      - measurement: pdu
        table: 1.3.6.1.4.1.318.1.1.26.4.3.1    # the table's Entry OID
        index: [pdu]                            # index sub-ids -> tags ('~' = not a tag)
        columns:
          - {col: 5, field: power_w, multiply: 10, invalid: [-1]}
      - measurement: pdu
        scalars:
          - {oid: 1.3.6.1.4.1.318.1.1.12.1.16.0, field: power_w}
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainValidator, StringConstraints, model_validator

from collectors.profile_schema import ProfileError, Strict, component_tag, parse_profile, read_profile
from contract.states import VOCABULARIES, mapping_problems
from inventory.errors import InventoryIssue

__all__ = ["ProfileError", "ValueSpec", "Group", "Flags", "Profile", "load_profile", "load_profiles",
           "PROFILE_DIR", "default_profiles", "MEASUREMENTS"]

PROFILE_DIR = Path(__file__).with_name("profiles")
MEASUREMENTS = ("pdu", "ups", "env", "crah", "meter", "cdu", "chiller", "node")
_OID_RE = re.compile(r"^\.?[0-2](\.\d+)+$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _oid(s: str) -> str:
    return s.lstrip(".")


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """How one raw SNMP value becomes one field (or one tag)."""

    field: str | None = None
    tag: str | None = None
    type: str = "number"
    multiply: float = 1.0
    divide: float = 1.0
    convert: str | None = None
    invalid: frozenset = frozenset()
    enum: dict | None = None
    counter: int | None = None          # 0 = reset detection only, else wrap width in bits
    decimals_from: str | None = None    # column OID whose value (same index) gives decimal digits
    divisor_from: str | None = None     # column OID whose value (same index) divides
    scale_from: str | None = None       # column OID with a signed scale (same index): < 0 divides by |s|, > 0 multiplies
    units_from: str | None = None       # column OID whose string picks a spec from ``units``
    units: dict | None = None
    optional: bool = False
    simple: bool = False                # plain number x multiply / divide: the decoder's fast path
    vocabulary: str | None = None       # contract.states vocabulary the enum's words map onto
    states: dict | None = None          # vendor word -> vocabulary word (complete; unknown(n) -> unknown)

    @property
    def factor(self) -> float:
        return self.multiply / self.divide


@dataclass(frozen=True, slots=True)
class Column:
    oid: str                            # full column OID
    spec: ValueSpec | None              # None when ``by_index`` picks the spec
    by_index: tuple[int, dict[int, ValueSpec]] | None = None


@dataclass(frozen=True, slots=True)
class Group:
    measurement: str
    tags: dict[str, str]
    table: str | None
    index: tuple[str | None, ...]
    columns: tuple[Column, ...]
    scalars: tuple[tuple[str, ValueSpec], ...]
    optional: bool
    walk_table: bool = False            # one walk of the Entry instead of one per column
    row_filter: tuple[str, frozenset] | None = None   # (column OID, raw values): rows whose value is not listed are skipped
    flags: "Flags | None" = None        # one boolean field per known value of one column (active-alarm tables)


@dataclass(frozen=True, slots=True)
class Flags:
    """A table read as a set: each known value of ``column`` is one boolean field, true while a row holds it.

    Why: an active-alarm table (UPS-MIB upsAlarmTable) lists the alarms present, one row each, with
    changing row ids; what an operator needs is one series per well-known alarm that turns true and
    false again, so cardinality stays bounded and a cleared alarm is seen as ``false``.
    """

    column: str                         # full column OID whose values are looked up in ``fields``
    fields: dict[str, str]              # value (an OID or a number, as text) -> boolean field
    when: str | None = None             # a scalar that must answer before an empty table means "none active"
    #: flag field -> fields set while it is true (Socomec: upsAlarmOnBattery -> output ``state: battery``,
    #: where upsOutputSource says onInverter on mains and on battery alike); a later group, so it wins
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    mib: str
    source: str
    sysobjectid: tuple[str, ...]
    require: str | None
    require_invalid: frozenset
    priority: int
    generic: bool
    groups: tuple[Group, ...]
    get_oids: tuple[str, ...] = field(default=())
    walk_roots: tuple[str, ...] = field(default=())
    table_roots: frozenset = field(default=frozenset())   # walk roots that are whole Entry walks
    max_repetitions: int = 25
    probe: str | None = None            # a column whose first row must answer (the generation's own table)
    generation: str = ""                # the MIB generation this profile reads, for ``dcim probe``


# ---- the schema: what a profile file may say (pydantic, unknown keys refused) ----

def _oid_value(v: Any) -> str:
    if isinstance(v, str) and _OID_RE.match(v):
        return _oid(v)
    raise ValueError(f"must be a numeric OID like 1.3.6.1.2.1.33.1.2.4.0; got {v!r}")


def _col_ref(v: Any) -> int | str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and _OID_RE.match(v):
        return _oid(v)
    raise ValueError(f"must be a column number under the Entry OID or a full OID; got {v!r}")


def _field_name(v: Any) -> str:
    if isinstance(v, str) and _FIELD_RE.match(v):
        return v
    raise ValueError(f"must be snake_case with its unit as suffix, e.g. current_a; got {v!r}")


def _non_zero(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0 and math.isfinite(v):
        return float(v)
    raise ValueError(f"must be a non-zero number; got {v!r}")


def _counter(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and v in (0, 31, 32, 64):
        return v
    raise ValueError("must be 32 or 64 (wrap width in bits), 31 for INTEGER, 0 for reset detection only")


def _text_keys(v: Any) -> Any:
    """``units: {1: ...}`` and ``units: {"1": ...}`` mean the same unit string."""
    if isinstance(v, dict):
        return {str(k) if isinstance(k, (int, str)) and not isinstance(k, bool) else k: x for k, x in v.items()}
    return v


def _text_values(v: Any) -> Any:
    """Static tags: ``{phase: 1}`` is the tag value "1"."""
    if v is None:
        return {}
    if isinstance(v, dict):
        return {k: str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for k, x in v.items()}
    return v


Oid = Annotated[str, PlainValidator(_oid_value)]
ColRef = Annotated[Union[int, str], PlainValidator(_col_ref)]
FieldName = Annotated[str, PlainValidator(_field_name)]
NonZero = Annotated[float, PlainValidator(_non_zero)]
Raw = Union[int, float, str]


class ValueDoc(Strict):
    """The value keys of a column or a scalar: how one raw value becomes a field or a tag."""

    field: Optional[FieldName] = None
    tag: Optional[Annotated[str, AfterValidator(component_tag)]] = None
    type: Optional[Literal["number", "int", "string", "enum", "bool"]] = None
    multiply: NonZero = 1.0
    divide: NonZero = 1.0
    convert: Optional[Literal["f_to_c"]] = None
    invalid: list[Raw] = []
    enum: Optional[dict[int, str]] = None
    counter: Optional[Annotated[int, PlainValidator(_counter)]] = None
    decimals_from: Optional[ColRef] = None
    divisor_from: Optional[ColRef] = None
    scale_from: Optional[ColRef] = None
    units_from: Optional[ColRef] = None
    units: Optional[Annotated[dict[str, "ValueDoc"], BeforeValidator(_text_keys)]] = None
    optional: bool = False
    #: contract.states vocabulary the enum's words map onto; ``states`` maps the words that are not already its own
    vocabulary: Optional[str] = None
    states: Optional[dict[str, str]] = None

    @model_validator(mode="after")
    def _vocabulary(self) -> "ValueDoc":
        if self.vocabulary is None:
            if self.states is not None:
                raise ValueError("states: needs vocabulary: (the contract.states vocabulary its words belong to)")
            if self.enum and self.field == "state":
                raise ValueError(f"vocabulary: a state field needs vocabulary: (one of {', '.join(sorted(VOCABULARIES))}), "
                                 "see docs/conventions.md")
            return self
        if not self.enum:
            raise ValueError("vocabulary: needs enum: (the vendor's words to map)")
        problems = mapping_problems(self.vocabulary, self.enum.values(), self.states or {})
        if problems:
            key = "vocabulary" if any(p.startswith("unknown vocabulary") for p in problems) else "states"
            raise ValueError(f"{key}: " + "; ".join(problems))
        return self

    def has_target(self) -> bool:
        return bool(self.field or self.tag or self.units_from is not None)


class ByIndexDoc(Strict):
    position: int = Field(ge=0)
    fields: dict[int, ValueDoc]


class ColumnDoc(ValueDoc):
    col: ColRef
    by_index: Optional[ByIndexDoc] = None

    @model_validator(mode="after")
    def _target(self) -> "ColumnDoc":
        if self.by_index is None and not self.has_target():
            raise ValueError("needs 'field' (or 'tag', 'units_from', 'by_index')")
        return self


class ScalarDoc(ValueDoc):
    oid: Oid

    @model_validator(mode="after")
    def _scalar(self) -> "ScalarDoc":
        rel = [k for k in ("decimals_from", "divisor_from", "scale_from", "units_from") if getattr(self, k) is not None]
        if rel:
            raise ValueError(f"{', '.join(rel)}: only allowed in table columns")
        if not self.has_target():
            raise ValueError("needs 'field' (or 'tag')")
        return self


class RowFilterDoc(Strict):
    """Read only the rows whose ``col`` holds one of ``values`` (generic variable tables, e.g. Rittal CMC III)."""

    col: ColRef
    values: list[Raw] = Field(min_length=1)


def _flag_values(v: Any) -> Any:
    """``values: {1.3.6.1.2.1.33.1.6.3.2: alarm_on_battery, 3: …}``: keys are OIDs or integers, as text."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(k, bool) or not isinstance(k, (int, str)) or (isinstance(k, str) and not (
                    _OID_RE.match(k) or k.lstrip("-").isdigit())):
                raise ValueError(f"key {k!r} must be an OID (upsWellKnownAlarms member) or an integer")
            out[_oid(str(k))] = x
        return out
    return v


class FlagsDoc(Strict):
    """A column read as a set of known values, one boolean field each (see ``Flags``)."""

    col: ColRef
    values: Annotated[dict[str, FieldName], BeforeValidator(_flag_values)] = Field(min_length=1)
    #: a scalar (e.g. upsAlarmsPresent) whose answer says the table is implemented, so no rows = no flag set
    when: Optional[Oid] = None
    #: flag field -> {field: value} written while the flag is true (a state word, e.g. state: battery)
    sets: dict[FieldName, dict[FieldName, Union[str, int, float, bool]]] = {}

    @model_validator(mode="after")
    def _sets_name_flags(self) -> "FlagsDoc":
        unknown = sorted(set(self.sets) - set(self.values.values()))
        if unknown:
            raise ValueError(f"sets: {', '.join(unknown)} not among the fields under values:")
        return self


class GroupDoc(Strict):
    measurement: Literal[MEASUREMENTS]  # type: ignore[valid-type]
    tags: Annotated[dict[Annotated[str, AfterValidator(component_tag)], str], BeforeValidator(_text_values)] = {}
    optional: bool = False
    comment: str = ""
    table: Optional[Oid] = None
    walk: Literal["columns", "table"] = "columns"
    index: Optional[list[Optional[Annotated[str, AfterValidator(component_tag)]]]] = None
    columns: Optional[list[ColumnDoc]] = None
    scalars: Optional[list[ScalarDoc]] = None
    filter: Optional[RowFilterDoc] = None
    flags: Optional[FlagsDoc] = None

    @model_validator(mode="after")
    def _table_or_scalars(self) -> "GroupDoc":
        if self.flags is not None:
            if self.table is None or self.columns is not None or self.filter is not None or self.walk == "table":
                raise ValueError("flags: needs a 'table' (the Entry OID) and 'index', and no 'columns', 'filter' "
                                 "or 'walk: table'")
            if not self.index:
                raise ValueError("index: must list one entry per index sub-id ('~' for sub-ids that are not tags)")
            return self
        if self.table is None:
            if self.columns is not None or self.index is not None:
                raise ValueError("'columns' and 'index' need a 'table' (the Entry OID)")
            if not self.scalars:
                raise ValueError("needs either 'table' + 'index' + 'columns' or a non-empty 'scalars' list")
            return self
        if self.scalars is not None:
            raise ValueError("a group is either a table or scalars, not both")
        if self.filter is not None and self.walk == "table":
            raise ValueError("filter: needs walk: columns (the filter column is walked on its own)")
        if not self.index:
            raise ValueError("index: must list one tag name per index sub-id ('~' for sub-ids that are not tags)")
        if not self.columns:
            raise ValueError("columns: a table group needs a non-empty 'columns' list")
        idx = _index_tags(self.index)
        for i, c in enumerate(self.columns):
            if c.by_index is not None and (c.by_index.position >= len(idx) or idx[c.by_index.position] is not None):
                raise ValueError(f"columns[{i}].by_index.position: must point at an index sub-id marked '~'")
        return self


class DetectDoc(Strict):
    sysobjectid: list[Oid] = []
    require: Optional[Oid] = None
    #: a column OID (no instance): detection asks for its first row; rows present -> this generation
    probe: Optional[Oid] = None
    #: the MIB generation, e.g. "rPDU2" or "PX2/PX3", named by ``dcim probe``
    generation: str = ""
    require_invalid: list[Raw] = []
    generic: bool = False
    priority: int = 0


class ProfileDoc(Strict):
    """A whole SNMP profile file (see README.md for every key)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: str = ""
    mib: str = ""
    source: str = ""
    #: another profile (by name, its file beside this one) whose groups come first: a vendor
    #: profile that speaks the standard UPS-MIB says ``extends: ups-mib`` and adds its own tables
    extends: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]] = None
    max_repetitions: int = Field(25, ge=1, le=255)
    detect: Annotated[DetectDoc, BeforeValidator(lambda v: {} if v is None else v)] = DetectDoc()
    groups: list[GroupDoc] = Field(min_length=1)


def _index_tags(index: list[str | None]) -> tuple[str | None, ...]:
    return tuple(None if x in (None, "~") else str(x) for x in index)


# ---- compile: schema -> the plain tuples the hot path uses ----

def _spec(d: dict[str, Any], table: str | None) -> ValueSpec:
    """One validated value mapping (a column, a scalar, a unit or a by_index entry) -> ValueSpec."""
    tag = d.get("tag")
    typ = d.get("type") or ("enum" if d.get("enum") else ("string" if tag else "number"))
    conv = d.get("convert")

    def rel(key: str) -> str | None:
        v = d.get(key)
        if v is None or table is None:
            return None
        return f"{table}.{v}" if isinstance(v, int) else v

    units = d.get("units")
    vocabulary, enum = d.get("vocabulary"), d.get("enum")
    states = {w: (d.get("states") or {}).get(w, w) for w in enum.values()} if vocabulary and enum else None
    return ValueSpec(
        field=d.get("field"), tag=tag, type=typ, multiply=d.get("multiply", 1.0), divide=d.get("divide", 1.0),
        convert=conv, invalid=frozenset(d.get("invalid") or ()), enum=dict(d["enum"]) if d.get("enum") else None,
        counter=d.get("counter"), decimals_from=rel("decimals_from"), divisor_from=rel("divisor_from"),
        scale_from=rel("scale_from"),
        units_from=rel("units_from"),
        units={k: _spec(v, table) for k, v in units.items()} if units is not None else None,
        optional=bool(d.get("optional", False)), vocabulary=vocabulary if states is not None else None, states=states,
        simple=(typ == "number" and not tag and d.get("counter") is None and conv is None
                and d.get("decimals_from") is None and d.get("divisor_from") is None and d.get("units_from") is None
                and d.get("scale_from") is None),
    )


def _values(doc: BaseModel, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys the file set (so a by_index entry overrides only what it says)."""
    out = doc.model_dump(exclude_unset=True, exclude=set(drop))
    if isinstance(doc, ValueDoc) and doc.units is not None:
        out["units"] = {k: _values(v) for k, v in doc.units.items()}
    return out


def _group(g: GroupDoc) -> Group:
    columns: list[Column] = []
    scalars: list[tuple[str, ValueSpec]] = []
    table = g.table
    for c in g.columns or ():
        coid = f"{table}.{c.col}" if isinstance(c.col, int) else c.col
        if c.by_index is not None:
            base = _values(c, ("col", "by_index"))
            specs = {k: _spec({**base, **_values(v)}, table) for k, v in c.by_index.fields.items()}
            columns.append(Column(coid, None, (c.by_index.position, specs)))
        else:
            columns.append(Column(coid, _spec(_values(c, ("col",)), table)))
    for sc in g.scalars or ():
        scalars.append((sc.oid, _spec(_values(sc, ("oid",)), None)))
    row_filter = None
    if g.filter is not None:
        fcol = f"{table}.{g.filter.col}" if isinstance(g.filter.col, int) else g.filter.col
        row_filter = (fcol, frozenset(g.filter.values))
    flags = None
    if g.flags is not None:
        fcol = f"{table}.{g.flags.col}" if isinstance(g.flags.col, int) else g.flags.col
        flags = Flags(fcol, dict(g.flags.values), g.flags.when, {k: dict(v) for k, v in g.flags.sets.items()})
    return Group(g.measurement, dict(g.tags), table, _index_tags(g.index or []), tuple(columns), tuple(scalars),
                 g.optional, g.walk == "table" and table is not None, row_filter, flags)


def _compile(prof: Profile) -> Profile:
    gets: list[str] = []
    walks: list[str] = []
    for g in prof.groups:
        for oid, _ in g.scalars:
            if oid not in gets:
                gets.append(oid)
        if g.flags is not None:
            if g.flags.when and g.flags.when not in gets:
                gets.append(g.flags.when)
            if g.flags.column not in walks:
                walks.append(g.flags.column)
        for col in g.columns:
            specs = [col.spec] if col.spec else list(col.by_index[1].values())
            roots = [col.oid]
            for s in specs:
                roots += [x for x in (s.decimals_from, s.divisor_from, s.scale_from, s.units_from) if x]
                for u in (s.units or {}).values():
                    if u:
                        roots += [x for x in (u.decimals_from, u.divisor_from, u.scale_from) if x]
            if g.row_filter and g.row_filter[0] not in roots:
                roots.append(g.row_filter[0])
            if g.walk_table:
                roots = [g.table] + [r for r in roots if not r.startswith(g.table + ".")]
            for r in roots:
                if r not in walks:
                    walks.append(r)
    tables = frozenset(g.table for g in prof.groups if g.walk_table)
    return Profile(**{**{f: getattr(prof, f) for f in prof.__dataclass_fields__},
                      "get_oids": tuple(gets), "walk_roots": tuple(walks), "table_roots": tables})


def load_profile(path: Path) -> Profile:
    """Parse, validate and compile one profile file; raise ProfileError listing every problem."""
    return _load(Path(path))[0]


def _load(path: Path, chain: tuple[str, ...] = ()) -> tuple[Profile, int | None]:
    """The compiled profile and the line of its ``name:`` (for a clash between two files).

    ``extends: NAME`` loads ``NAME.yaml`` beside this file first and puts its groups before
    this profile's own, so a vendor's groups, decoded later, win on a field both set.
    """
    doc, _, lines = parse_profile(read_profile(path), str(path), ProfileDoc, docs="collectors/snmp/README.md",
                              what="a profile is a mapping with name, detect and groups")
    base_groups: tuple[Group, ...] = ()
    if doc.extends is not None:
        base_groups = _base_groups(path, doc.extends, lines.get(("extends",)), chain + (doc.name,))
    det = doc.detect
    prof = Profile(
        name=doc.name, description=doc.description, mib=doc.mib, source=str(path),
        sysobjectid=tuple(det.sysobjectid), require=det.require, require_invalid=frozenset(det.require_invalid),
        priority=det.priority, generic=det.generic or not det.sysobjectid,
        groups=base_groups + tuple(_group(g) for g in doc.groups), max_repetitions=doc.max_repetitions,
        probe=det.probe, generation=det.generation,
    )
    return _compile(prof), lines.get(("name",))


def _base_groups(path: Path, name: str, line: int | None, chain: tuple[str, ...]) -> tuple[Group, ...]:
    """The groups of the profile ``name`` that ``path`` extends (its file: ``name.yaml`` beside it)."""
    def refuse(message: str) -> ProfileError:
        return ProfileError([InventoryIssue(str(path), line, "extends", message)])

    if name in chain:
        raise refuse(f"{' -> '.join(chain + (name,))}: a profile cannot extend itself")
    base_path = path.with_name(f"{name}.yaml")
    if not base_path.is_file():
        raise refuse(f"no profile file {base_path.name} beside this one (extends names a profile by its file name)")
    base, _ = _load(base_path, chain)
    if base.name != name:
        raise refuse(f"{base_path.name} defines the profile {base.name!r}, not {name!r}")
    return base.groups


def load_profiles(directory: Path = PROFILE_DIR) -> dict[str, Profile]:
    """Every ``*.yaml`` in ``directory``; one ProfileError naming every problem in every file."""
    profiles: dict[str, Profile] = {}
    problems: list[InventoryIssue] = []
    for p in sorted(Path(directory).glob("*.yaml")):
        try:
            prof, line = _load(p)
        except ProfileError as exc:
            problems += exc.issues
            continue
        if prof.name in profiles:
            problems.append(InventoryIssue(str(p), line, "name", f"{prof.name!r} already defined in {profiles[prof.name].source}"))
        profiles[prof.name] = prof
    if problems:
        raise ProfileError(problems)
    return profiles


@lru_cache(maxsize=1)
def default_profiles() -> dict[str, Profile]:
    """The shipped profiles, loaded and compiled once per process."""
    return load_profiles(PROFILE_DIR)
