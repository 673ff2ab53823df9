"""Trap definitions as data (``collectors/snmp/traps/defs/*.yaml``) and the pure trap -> samples mapping.

Vendor knowledge lives in the YAML, beside the polling profiles: which
notification OID means what, as a sample in the shared vocabulary (e.g.
``ups {stage: output} state=battery``), which varbinds become fields or tags,
and whether the trap asks for an immediate poll of the device (so the polled
state confirms or clears what the trap said: a trap alone never leaves an
alert stuck).  Files are validated with the inventory's loader, so a mistake
is reported as ``file:line: field: message``.

Every notification, known or not, is also kept as a ``trap`` sample (tag
``trap`` = the definition's name or the dotted OID; the varbinds as fields
named by their OIDs) so nothing a device says is dropped silently.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.snmp.ber import oid_text, parse_oid
from collectors.snmp.traps.message import Notification
from contract.sample import TRAP_FIELD, Sample
from contract.measurements import TRAP
from contract.states import VOCABULARIES, raw_field

__all__ = ["TrapDef", "TrapFile", "TrapCatalog", "load_trap_files", "default_catalog", "DEFS_DIR",
           "TRAP_MEASUREMENT", "varbind_text"]

DEFS_DIR = Path(__file__).resolve().parent / "defs"
TRAP_MEASUREMENT = TRAP  # contract.measurements: storage keeps it out of rollups
_OID_RE = re.compile(r"^\d+(\.\d+)+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_VARBIND_FIELDS = 32
_MAX_TEXT = 256
STATE_FIELD = "state"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_oid(v: str) -> str:
    v = str(v).strip(".")
    if not _OID_RE.match(v):
        raise ValueError(f"{v!r} is not a numeric OID like 1.3.6.1.2.1.33.2.1")
    return v


class VarbindMap(_Strict):
    """One varbind (matched by OID prefix: the instance suffix may vary) -> a field or a tag."""

    oid: str
    field: str | None = None
    tag: str | None = None
    multiply: float = 1.0
    divide: float = 1.0
    #: raw value (number, text, or dotted OID) -> word; or the name of a table under the file's ``lookups:``
    lookup: dict[str, str] | str = Field(default_factory=dict)
    #: tags named by the instance suffix after ``oid`` (a table row's index, e.g. ``[pdu, inlet, outlet]``
    #: for ``st4OutletStatus.1.1.5``), named as the polling profile's ``index:`` so the trap's
    #: sample lands on the polled series
    index: list[str] = Field(default_factory=list)
    #: index tag -> lookup (inline or a ``lookups:`` name) turning its sub-id into a word (e.g. a sensor type)
    index_lookup: dict[str, dict[str, str] | str] = Field(default_factory=dict)

    _oid = field_validator("oid")(classmethod(lambda cls, v: _check_oid(v)))

    def model_post_init(self, __context: Any) -> None:
        if bool(self.field) == bool(self.tag):
            raise ValueError("a varbind needs exactly one of field: or tag:")
        for name in (self.field, self.tag, *self.index):
            if name and not _NAME_RE.match(name):
                raise ValueError(f"{name!r}: field and tag names are snake_case (e.g. runtime_s, phase)")
        for name in self.index_lookup:
            if name not in self.index:
                raise ValueError(f"index_lookup {name!r} is not one of index: ({', '.join(self.index) or 'none'})")
        self._prefix = parse_oid(self.oid)


class TrapDef(_Strict):
    name: str
    oid: str
    #: the sample this trap stands for; without it the trap is only kept as a ``trap`` sample
    measurement: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, float | int | bool | str] = Field(default_factory=dict)
    varbinds: list[VarbindMap] = Field(default_factory=list)
    #: the contract.states vocabulary the ``state`` field's word belongs to (checked at load)
    vocabulary: str | None = None
    #: ask the scheduler for an immediate poll of the device
    poll: bool = True
    description: str = ""

    _oid = field_validator("oid")(classmethod(lambda cls, v: _check_oid(v)))

    def model_post_init(self, __context: Any) -> None:
        if (self.fields or self.tags) and not self.measurement:
            raise ValueError("tags:/fields: need measurement:")
        state = self.fields.get(STATE_FIELD)
        if state is not None and self.vocabulary is None:
            raise ValueError(f"fields.{STATE_FIELD} needs vocabulary: (one of {', '.join(sorted(VOCABULARIES))})")
        if self.vocabulary is not None:
            words = VOCABULARIES.get(self.vocabulary)
            if words is None:
                raise ValueError(f"unknown vocabulary {self.vocabulary!r} (known: {', '.join(sorted(VOCABULARIES))})")
            if state not in words:
                raise ValueError(f"state {state!r} is not in vocabulary {self.vocabulary} ({', '.join(words)})")


class TrapFile(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    mib: str
    description: str = ""
    #: named value -> word tables that several traps share (YAML aliases are not accepted)
    lookups: dict[str, dict[str, str]] = Field(default_factory=dict)
    traps: list[TrapDef]

    @model_validator(mode="after")
    def _resolve_lookups(self) -> "TrapFile":
        for t in self.traps:
            for vm in t.varbinds:
                if isinstance(vm.lookup, str):
                    if vm.lookup not in self.lookups:
                        raise ValueError(f"trap {t.name}: lookup {vm.lookup!r} is not one of lookups: "
                                         f"({', '.join(sorted(self.lookups)) or 'none defined'})")
                    vm.lookup = self.lookups[vm.lookup]
                for tag, table in list(vm.index_lookup.items()):
                    if isinstance(table, str):
                        if table not in self.lookups:
                            raise ValueError(f"trap {t.name}: index_lookup {table!r} is not one of lookups: "
                                             f"({', '.join(sorted(self.lookups)) or 'none defined'})")
                        vm.index_lookup[tag] = self.lookups[table]
        return self


def varbind_text(value: object) -> float | str | None:
    """A varbind value as a sample field: numbers as floats, OIDs dotted, printable text as text, else hex."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return float(value)
    if isinstance(value, tuple):
        return oid_text(value)
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return value[:_MAX_TEXT].hex()
        if text.isprintable():
            return text[:_MAX_TEXT]
        return value[:_MAX_TEXT].hex()
    return str(value)[:_MAX_TEXT]


class TrapCatalog:
    """Compiled definitions: notification OID -> definition; maps a notification to samples (pure)."""

    def __init__(self, files: list[TrapFile]) -> None:
        self.by_oid: dict[tuple[int, ...], TrapDef] = {}
        self.files = files
        for f in files:
            for t in f.traps:
                self.by_oid[parse_oid(t.oid)] = t

    def lookup(self, trap_oid: tuple[int, ...]) -> TrapDef | None:
        """The definition of ``trap_oid``; a v1-translated ``PREFIX.0.N`` also finds ``PREFIX.N``
        (SMIv2 notifications whose next-to-last sub-id is not 0 travel in v1 that way, RFC 3584 2.1.2)."""
        d = self.by_oid.get(trap_oid)
        if d is None and len(trap_oid) > 2 and trap_oid[-2] == 0:
            d = self.by_oid.get(trap_oid[:-2] + trap_oid[-1:])
        return d

    def samples(self, n: Notification, tags: dict[str, str], time_ns: int, *,
                extra_fields: dict[str, Any] | None = None) -> tuple[list[Sample], TrapDef | None]:
        """The ``trap`` sample, plus the domain sample a known trap stands for."""
        d = self.lookup(n.trap_oid)
        name = d.name if d else oid_text(n.trap_oid)
        trap_fields: dict[str, Any] = {"oid": oid_text(n.trap_oid), "version": n.version, "known": d is not None}
        for oid, _tag, value in n.varbinds[:_MAX_VARBIND_FIELDS]:
            v = varbind_text(value)
            if v is not None:
                trap_fields[oid_text(oid)] = v
        if len(n.varbinds) > _MAX_VARBIND_FIELDS:
            trap_fields["varbinds_dropped"] = len(n.varbinds) - _MAX_VARBIND_FIELDS
        if extra_fields:
            trap_fields.update(extra_fields)
        out = [Sample(TRAP_MEASUREMENT, {**tags, "trap": name}, trap_fields, time_ns)]
        if d is not None and d.measurement:
            stags = {**tags, **d.tags}
            fields: dict[str, Any] = dict(d.fields)
            for vm in d.varbinds:
                for oid, _tag, value in n.varbinds:
                    if oid[:len(vm._prefix)] != vm._prefix:
                        continue
                    suffix = oid[len(vm._prefix):]
                    for tag, sub in zip(vm.index, suffix):
                        stags[tag] = vm.index_lookup.get(tag, {}).get(str(sub), str(sub))  # type: ignore[union-attr]
                    raw = oid_text(value) if isinstance(value, tuple) else (
                        value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
                    word = vm.lookup.get(str(raw))  # type: ignore[union-attr]
                    if vm.tag:
                        stags[vm.tag] = word if word is not None else str(raw)[:_MAX_TEXT]
                    elif word is not None:
                        fields[vm.field] = word
                    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
                        fields[vm.field] = float(raw) * vm.multiply / vm.divide
                    elif raw is not None:
                        fields[vm.field] = str(raw)[:_MAX_TEXT]
                    break
            fields[TRAP_FIELD] = d.name
            if STATE_FIELD in d.fields:
                fields[raw_field(STATE_FIELD)] = d.name  # the vendor's own word for it: the trap's name
            out.append(Sample(d.measurement, stags, fields, time_ns))
        return out, d


def load_trap_files(directory: Path = DEFS_DIR) -> list[TrapFile]:
    """Every ``*.yaml`` in ``directory``; raises InventoryError with every ``file:line`` problem."""
    from inventory.errors import InventoryError, InventoryIssue
    from inventory.loader import load_model, read_text

    files: list[TrapFile] = []
    issues: list = []
    seen: dict[str, str] = {}
    for p in sorted(Path(directory).glob("*.yaml")):
        try:
            f, _ = load_model(read_text(p), str(p), TrapFile)
        except InventoryError as exc:
            issues.extend(exc.issues)
            continue
        for t in f.traps:
            if t.oid in seen:
                issues.append(InventoryIssue(str(p), None, f"traps.{t.name}",
                                             f"OID {t.oid} already defined in {seen[t.oid]}"))
            seen[t.oid] = str(p)
        files.append(f)
    if issues:
        raise InventoryError(issues)
    return files


@lru_cache(maxsize=1)
def default_catalog() -> TrapCatalog:
    """The shipped definitions, loaded once per process."""
    return TrapCatalog(load_trap_files(DEFS_DIR))
