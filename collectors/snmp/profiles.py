"""Vendor profiles: YAML data, validated once with ``file:line: field: problem`` errors
and compiled to plain tuples so the hot path does no MIB or YAML work.

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

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from contract.states import VOCABULARIES, mapping_problems
from inventory.yaml_lines import YamlProblem, load_with_lines, read_limited

__all__ = ["ProfileError", "ValueSpec", "Group", "Profile", "load_profile", "load_profiles",
           "PROFILE_DIR", "default_profiles", "MEASUREMENTS"]

PROFILE_DIR = Path(__file__).with_name("profiles")
MEASUREMENTS = ("pdu", "ups", "env", "crah", "meter", "cdu", "chiller", "node")
_OID_RE = re.compile(r"^\.?[0-2](\.\d+)+$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CONVERTS = ("f_to_c",)
_TYPES = ("number", "int", "string", "enum", "bool")


class ProfileError(Exception):
    """A profile that cannot be used; the message says file, line, field and what to do."""


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


class _Ctx:
    def __init__(self, path: str, lines: dict) -> None:
        self.path, self.lines, self.issues = path, lines, []

    def err(self, p: tuple, msg: str) -> None:
        line = None
        q = p
        while q is not None:
            if q in self.lines:
                line = self.lines[q]
                break
            q = q[:-1] if q else None
        where = f"{self.path}:{line}" if line else self.path
        dotted = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in p).replace(".[", "[")
        self.issues.append(f"{where}: {dotted}: {msg}" if dotted else f"{where}: {msg}")


_SPEC_KEYS = {"field", "tag", "type", "multiply", "divide", "convert", "invalid", "enum", "counter",
              "decimals_from", "divisor_from", "units_from", "units", "optional", "col", "oid", "by_index",
              "vocabulary", "states"}


def _vocabulary(c: _Ctx, d: dict, p: tuple, enum: dict | None) -> tuple[str | None, dict | None]:
    """``vocabulary:`` + ``states:``: the enum's vendor words mapped onto a contract.states vocabulary."""
    vocabulary, states = d.get("vocabulary"), d.get("states") or {}
    if vocabulary is None:
        if "states" in d:
            c.err(p + ("states",), "needs vocabulary: (the contract.states vocabulary its words belong to)")
        elif enum and d.get("field") == "state":
            c.err(p + ("vocabulary",), "a state field needs vocabulary: (one of "
                                        f"{', '.join(sorted(VOCABULARIES))}), see docs/conventions.md")
        return None, None
    if not enum:
        c.err(p + ("vocabulary",), "needs enum: (the vendor's words to map)")
        return None, None
    if not isinstance(states, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in states.items()):
        c.err(p + ("states",), "must map the enum's vendor words to vocabulary words")
        return None, None
    problems = mapping_problems(str(vocabulary), enum.values(), states)
    for msg in problems:
        c.err(p + ("vocabulary" if msg.startswith("unknown vocabulary") else "states",), msg)
    if problems:
        return None, None
    return str(vocabulary), {w: states.get(w, w) for w in enum.values()}


def _spec(c: _Ctx, d: Any, p: tuple, table: str | None, need_target: bool = True) -> ValueSpec | None:
    if not isinstance(d, dict):
        c.err(p, "must be a mapping like {field: power_w, ...}")
        return None
    for k in d:
        if k not in _SPEC_KEYS:
            c.err(p + (k,), f"unknown key (known: {', '.join(sorted(_SPEC_KEYS))})")
    fld, tag = d.get("field"), d.get("tag")
    if need_target and not fld and not tag and "units_from" not in d and "by_index" not in d:
        c.err(p, "needs 'field' (or 'tag', 'units_from', 'by_index')")
    if fld is not None and (not isinstance(fld, str) or not _FIELD_RE.match(fld)):
        c.err(p + ("field",), "must be snake_case with its unit as suffix, e.g. current_a")
    typ = d.get("type", "enum" if "enum" in d else ("string" if tag else "number"))
    if typ not in _TYPES:
        c.err(p + ("type",), f"must be one of {', '.join(_TYPES)}")
    nums = {}
    for k in ("multiply", "divide"):
        v = d.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v == 0:
            c.err(p + (k,), "must be a non-zero number")
            v = 1
        nums[k] = float(v)
    conv = d.get("convert")
    if conv is not None and conv not in _CONVERTS:
        c.err(p + ("convert",), f"must be one of {', '.join(_CONVERTS)}")
    inv = d.get("invalid", [])
    if not isinstance(inv, list):
        c.err(p + ("invalid",), "must be a list of raw values that mean 'not available'")
        inv = []
    enum = d.get("enum")
    if enum is not None and (not isinstance(enum, dict) or not all(isinstance(k, int) for k in enum)):
        c.err(p + ("enum",), "must map integers to strings")
        enum = None
    vocabulary, states = _vocabulary(c, d, p, enum)
    counter = d.get("counter")
    if counter is not None and counter not in (0, 31, 32, 64):
        c.err(p + ("counter",), "must be 32 or 64 (wrap width in bits), 31 for INTEGER, 0 for reset detection only")

    def rel(key: str) -> str | None:
        v = d.get(key)
        if v is None:
            return None
        if table is None:
            c.err(p + (key,), "only allowed in table columns")
            return None
        if isinstance(v, int):
            return f"{table}.{v}"
        if isinstance(v, str) and _OID_RE.match(v):
            return _oid(v)
        c.err(p + (key,), "must be a column number or a full OID")
        return None

    units = None
    if "units" in d:
        if not isinstance(d["units"], dict):
            c.err(p + ("units",), "must map a unit string to {field: ...}")
        else:
            units = {str(k): _spec(c, v, p + ("units", k), table) for k, v in d["units"].items()}
    return ValueSpec(
        field=fld, tag=tag, type=typ, multiply=nums["multiply"], divide=nums["divide"], convert=conv,
        invalid=frozenset(inv), enum=dict(enum) if enum else None, counter=counter,
        decimals_from=rel("decimals_from"), divisor_from=rel("divisor_from"), units_from=rel("units_from"),
        units=units, optional=bool(d.get("optional", False)), vocabulary=vocabulary, states=states,
        simple=(typ == "number" and not tag and counter is None and conv is None and not d.get("decimals_from")
                and not d.get("divisor_from") and not d.get("units_from")),
    )


def _group(c: _Ctx, g: Any, p: tuple) -> Group | None:
    if not isinstance(g, dict):
        c.err(p, "must be a mapping")
        return None
    for k in g:
        if k not in ("measurement", "tags", "table", "index", "columns", "scalars", "optional", "comment", "walk"):
            c.err(p + (k,), "unknown key (known: measurement, tags, table, index, columns, scalars, optional, walk)")
    if g.get("walk", "columns") not in ("columns", "table"):
        c.err(p + ("walk",), "must be 'columns' (one walk per column, default) or 'table' (one walk of the Entry)")
    meas = g.get("measurement")
    if meas not in MEASUREMENTS:
        c.err(p + ("measurement",), f"must be one of {', '.join(MEASUREMENTS)}")
    tags = g.get("tags", {}) or {}
    if not isinstance(tags, dict):
        c.err(p + ("tags",), "must map tag names to strings")
        tags = {}
    table = g.get("table")
    columns: list[Column] = []
    scalars: list[tuple[str, ValueSpec]] = []
    index: tuple = ()
    if table is not None:
        if not isinstance(table, str) or not _OID_RE.match(table):
            c.err(p + ("table",), "must be the table Entry OID, e.g. 1.3.6.1.4.1.318.1.1.26.4.3.1")
            return None
        table = _oid(table)
        idx = g.get("index", [])
        if not isinstance(idx, list) or not idx:
            c.err(p + ("index",), "must list one tag name per index sub-id ('~' for sub-ids that are not tags)")
            idx = []
        index = tuple(None if x in (None, "~") else str(x) for x in idx)
        cols = g.get("columns")
        if not isinstance(cols, list) or not cols:
            c.err(p + ("columns",), "a table group needs a non-empty 'columns' list")
            cols = []
        for i, col in enumerate(cols):
            cp = p + ("columns", i)
            if not isinstance(col, dict) or "col" not in col:
                c.err(cp, "needs 'col' (column number under the Entry OID, or a full OID)")
                continue
            cv = col["col"]
            coid = f"{table}.{cv}" if isinstance(cv, int) else (_oid(cv) if isinstance(cv, str) and _OID_RE.match(cv) else None)
            if coid is None:
                c.err(cp + ("col",), "must be a column number or a full OID")
                continue
            if "by_index" in col:
                bi = col["by_index"]
                if not isinstance(bi, dict) or not isinstance(bi.get("position"), int) or not isinstance(bi.get("fields"), dict):
                    c.err(cp + ("by_index",), "needs {position: N, fields: {SUBID: {field: ...}}}")
                    continue
                if bi["position"] >= len(index) or index[bi["position"]] is not None:
                    c.err(cp + ("by_index", "position"), "must point at an index sub-id marked '~'")
                specs = {}
                for k, v in bi["fields"].items():
                    if not isinstance(k, int):
                        c.err(cp + ("by_index", "fields", k), "keys must be integers (sub-id values)")
                        continue
                    base = {kk: vv for kk, vv in col.items() if kk not in ("col", "by_index")}
                    merged = {**base, **v} if isinstance(v, dict) else v
                    s = _spec(c, merged, cp + ("by_index", "fields", k), table)
                    if s:
                        specs[k] = s
                columns.append(Column(coid, None, (bi["position"], specs)))
            else:
                s = _spec(c, col, cp, table)
                if s:
                    columns.append(Column(coid, s))
    scal = g.get("scalars")
    if scal is not None:
        if table is not None:
            c.err(p + ("scalars",), "a group is either a table or scalars, not both")
        elif not isinstance(scal, list) or not scal:
            c.err(p + ("scalars",), "must be a non-empty list")
        else:
            for i, sc in enumerate(scal):
                sp = p + ("scalars", i)
                if not isinstance(sc, dict) or not isinstance(sc.get("oid"), str) or not _OID_RE.match(sc["oid"]):
                    c.err(sp + ("oid",), "needs a numeric 'oid' like 1.3.6.1.2.1.33.1.2.4.0")
                    continue
                s = _spec(c, sc, sp, None)
                if s:
                    scalars.append((_oid(sc["oid"]), s))
    elif table is None:
        c.err(p, "needs either 'table' + 'columns' or 'scalars'")
    return Group(meas or "", {str(k): str(v) for k, v in tags.items()}, table, index, tuple(columns),
                 tuple(scalars), bool(g.get("optional", False)), g.get("walk") == "table" and table is not None)


def _compile(prof: Profile) -> Profile:
    gets: list[str] = []
    walks: list[str] = []
    for g in prof.groups:
        for oid, _ in g.scalars:
            if oid not in gets:
                gets.append(oid)
        for col in g.columns:
            specs = [col.spec] if col.spec else list(col.by_index[1].values())
            roots = [col.oid]
            for s in specs:
                roots += [x for x in (s.decimals_from, s.divisor_from, s.units_from) if x]
                for u in (s.units or {}).values():
                    if u:
                        roots += [x for x in (u.decimals_from, u.divisor_from) if x]
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
    path = Path(path)
    try:
        data, lines = load_with_lines(read_limited(path))
    except YamlProblem as exc:
        raise ProfileError(f"{path}:{exc.line}: {exc.message}" if exc.line else f"{path}: {exc.message}") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    c = _Ctx(str(path), lines)
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a mapping with name, detect and groups")
    for k in data:
        if k not in ("name", "description", "mib", "source", "detect", "groups", "max_repetitions"):
            c.err((k,), "unknown key (known: name, description, mib, source, detect, groups, max_repetitions)")
    name = data.get("name")
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", name):
        c.err(("name",), "must be a lowercase name like apc-rpdu2")
    det = data.get("detect", {}) or {}
    sysoids = det.get("sysobjectid", []) if isinstance(det, dict) else []
    if not isinstance(sysoids, list) or not all(isinstance(s, str) and _OID_RE.match(s) for s in sysoids):
        c.err(("detect", "sysobjectid"), "must be a list of numeric OID prefixes")
        sysoids = []
    req = det.get("require") if isinstance(det, dict) else None
    if req is not None and not (isinstance(req, str) and _OID_RE.match(req)):
        c.err(("detect", "require"), "must be a numeric OID that the agent must answer")
        req = None
    groups = data.get("groups")
    out_groups = []
    if not isinstance(groups, list) or not groups:
        c.err(("groups",), "must be a non-empty list")
    else:
        for i, g in enumerate(groups):
            gg = _group(c, g, ("groups", i))
            if gg:
                out_groups.append(gg)
    if c.issues:
        raise ProfileError("\n".join(c.issues))
    prof = Profile(
        name=name, description=str(data.get("description", "")), mib=str(data.get("mib", "")),
        source=str(path), sysobjectid=tuple(_oid(s) for s in sysoids), require=_oid(req) if req else None,
        require_invalid=frozenset(det.get("require_invalid", []) or []), priority=int(det.get("priority", 0)),
        generic=bool(det.get("generic", False)) or not sysoids,
        groups=tuple(out_groups), max_repetitions=int(data.get("max_repetitions", 25)),
    )
    return _compile(prof)


def load_profiles(directory: Path = PROFILE_DIR) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    problems = []
    for p in sorted(Path(directory).glob("*.yaml")):
        try:
            prof = load_profile(p)
        except ProfileError as exc:
            problems.append(str(exc))
            continue
        if prof.name in profiles:
            problems.append(f"{p}: name: {prof.name!r} already defined in {profiles[prof.name].source}")
        profiles[prof.name] = prof
    if problems:
        raise ProfileError("\n".join(problems))
    return profiles


@lru_cache(maxsize=1)
def default_profiles() -> dict[str, Profile]:
    """The shipped profiles, loaded and compiled once per process."""
    return load_profiles(PROFILE_DIR)
