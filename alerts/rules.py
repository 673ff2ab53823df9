"""Alert rules as data: a YAML file validated like the inventory.

Rules live in a file people edit and review, so an error must say
``file:line: rules[3].threshold: message`` rather than raise a traceback; we
reuse the inventory's line-aware YAML loader and pydantic error mapping.

The :class:`RuleSet` indexes rules by ``(measurement, field)`` so the engine
does one dict lookup per sample field instead of scanning every rule.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field as dc_field
from pathlib import Path as FsPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract import poll
from contract.alert_event import SEVERITIES
from contract.states import VOCABULARIES, raw_field
from inventory.errors import InventoryError, InventoryIssue
from inventory.loader import line_for, load_model, read_text

__all__ = [
    "Rule", "RuleFile", "RuleSet", "Select", "Annotations", "RuleError",
    "load_rules", "load_rules_text", "template_problem", "MAX_DURATION_S", "KINDS", "SEVERITIES", "SEVERITY_RANK",
]

KINDS = ("threshold", "rate", "stale", "absent", "device_down")
#: lower is more severe; used for sorting and colour
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
EXPLAINS = ("power", "cooling", "reachability")

#: ``any_bits``: the value, an integer bitmask, has any bit of the threshold set (GPU clock-event reasons)
Op = Literal[">", "<", ">=", "<=", "==", "!=", "outside", "any_bits"]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

#: a rule file error is an inventory-style error: same format, same handling in the CLI
RuleError = InventoryError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


StrOrList = str | list[str]


def _as_list(value: StrOrList | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


class Select(_Strict):
    """Which inventory devices a rule applies to (every given key must match)."""

    kind: StrOrList | None = None
    hall: StrOrList | None = None
    row: StrOrList | None = None
    rack: StrOrList | None = None
    device: StrOrList | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def items(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for key in ("kind", "hall", "row", "rack", "device"):
            v = _as_list(getattr(self, key))
            if v is not None:
                out[key] = v
        return out


#: longest annotation template and widest ``{name:>N}`` pad a rule may ask for:
#: a summary is one line in a pager, not a 100 MB string
MAX_TEMPLATE_CHARS = 2000
MAX_FORMAT_WIDTH = 200
#: longest duration a rule may wait (for_s, stale_after_s, renotify_s): 30 days
MAX_DURATION_S = 30 * 86400
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_RE = re.compile(r"\d+")


def template_problem(text: str) -> str | None:
    """Why ``text`` is not a safe annotation template, or None.

    Named fields only (``{device}``, no ``{device.attr}`` or ``{0[1]}``), no
    nested fields in a format spec, and no pad or precision above
    :data:`MAX_FORMAT_WIDTH`, so rendering costs at most a few kilobytes.
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        return f"template is {len(text)} characters; the limit is {MAX_TEMPLATE_CHARS}"
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"template: {exc} (write {{{{ and }}}} for literal braces)"
    for _, name, spec, _ in parts:
        if name is None:
            continue
        if not _FIELD_RE.match(name):
            return f"template field {{{name}}}: use a plain name such as {{device}} or {{value}}"
        if spec and "{" in spec:
            return f"template field {{{name}}}: nested fields in a format spec are not allowed"
        if spec and any(int(n) > MAX_FORMAT_WIDTH for n in _NUMBER_RE.findall(spec)):
            return f"template field {{{name}:{spec[:20]}}}: width or precision above {MAX_FORMAT_WIDTH}"
    return None


class Annotations(_Strict):
    summary: str = "{rule} on {device}: {value} (threshold {threshold})"
    description: str | None = None
    runbook: str | None = None

    @field_validator("summary", "description")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        problem = template_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v


class Rule(_Strict):
    """One alert rule.  See alerts/README.md for the meaning of each kind."""

    name: str
    kind: Literal["threshold", "rate", "stale", "absent", "device_down"] = "threshold"
    measurement: str | None = None
    field: str | None = None
    op: Op = ">"
    threshold: float | bool | str | None = None
    band: tuple[float, float] | None = None
    clear: float | None = None
    rate_per_s: float | None = None
    stale_after_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    for_s: float = Field(default=0.0, ge=0, le=MAX_DURATION_S)
    polls: int = Field(default=3, ge=1, le=10_000, description="device_down: consecutive failed polls")
    severity: Literal[SEVERITIES] = "warning"  # type: ignore[valid-type]
    select: Select | None = None
    match: dict[str, StrOrList] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=Annotations)
    renotify_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    explains: list[Literal["power", "cooling", "reachability"]] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"rule name {v!r} must use letters, digits, '.', '_' and '-' (it is an MQTT topic level)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        k = self.kind
        if k == "device_down":
            self.measurement = self.measurement or poll.POLL_MEASUREMENT
            self.field = self.field or poll.OK
            return self
        if not self.measurement:
            raise ValueError(f"a {k} rule needs measurement:")
        if k in ("threshold", "rate") and not self.field:
            raise ValueError(f"a {k} rule needs field:")
        if k in ("stale", "absent"):
            if self.stale_after_s is None:
                raise ValueError(f"a {k} rule needs stale_after_s:")
            return self
        if k == "rate":
            if self.rate_per_s is None:
                raise ValueError("a rate rule needs rate_per_s: (the per-second change that fires)")
            if self.op in ("outside", "==", "!=", "any_bits"):
                raise ValueError("a rate rule compares with >, <, >= or <=")
            if self.clear is not None:
                if self.op in (">", ">=") and self.clear > self.rate_per_s:
                    raise ValueError(f"clear {self.clear} must not be above rate_per_s {self.rate_per_s} for op {self.op!r}")
                if self.op in ("<", "<=") and self.clear < self.rate_per_s:
                    raise ValueError(f"clear {self.clear} must not be below rate_per_s {self.rate_per_s} for op {self.op!r}")
        if k == "threshold":
            if self.op == "outside":
                if self.band is None:
                    raise ValueError("op 'outside' needs band: [low, high]")
                if self.band[0] >= self.band[1]:
                    raise ValueError("band: low must be below high")
                if self.clear is not None:
                    raise ValueError("clear: is not supported with op 'outside'")
            else:
                if self.threshold is None:
                    raise ValueError(f"op {self.op!r} needs threshold:")
                if self.band is not None:
                    raise ValueError("band: is only for op 'outside'")
            if self.op == "any_bits" and (isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float))
                                          or self.threshold != int(self.threshold) or self.threshold <= 0):
                raise ValueError("op 'any_bits' needs a positive integer threshold: the bits, e.g. 96 (0x20 | 0x40)")
            if self.clear is not None:
                if self.op in ("==", "!=", "any_bits"):
                    raise ValueError("clear: (hysteresis) needs an ordering op: >, <, >= or <=")
                if isinstance(self.threshold, (bool, str)):
                    raise ValueError("clear: needs a numeric threshold")
                if self.op in (">", ">=") and self.clear > self.threshold:  # type: ignore[operator]
                    raise ValueError(f"clear {self.clear} must not be above threshold {self.threshold} for op {self.op!r}")
                if self.op in ("<", "<=") and self.clear < self.threshold:  # type: ignore[operator]
                    raise ValueError(f"clear {self.clear} must not be below threshold {self.threshold} for op {self.op!r}")
            if self.op in (">", "<", ">=", "<=") and isinstance(self.threshold, (bool, str)):
                raise ValueError(f"op {self.op!r} needs a numeric threshold")
        return self

    # -- derived, used by the engine ------------------------------------------------
    def threshold_value(self) -> Any:
        if self.kind == "rate":
            return self.rate_per_s
        if self.op == "outside":
            return list(self.band) if self.band else None
        if self.kind in ("stale", "absent"):
            return self.stale_after_s
        if self.kind == "device_down":
            return self.polls
        return self.threshold


class RuleFile(_Strict):
    rules: list[Rule]


@dataclass
class RuleSet:
    """Rules plus the indexes the engine uses on the hot path."""

    rules: list[Rule]
    source: str = "<rules>"
    by_field: dict[tuple[str, str], list[Rule]] = dc_field(default_factory=dict)
    by_name: dict[str, Rule] = dc_field(default_factory=dict)
    timers: list[Rule] = dc_field(default_factory=list)  # stale/absent: need tick
    stale_by_measurement: dict[str, list[Rule]] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.rules:
            self.by_name[r.name] = r
            if r.kind in ("stale", "absent"):
                self.timers.append(r)
                self.stale_by_measurement.setdefault(r.measurement or "", []).append(r)
            else:
                self.by_field.setdefault((r.measurement or "", r.field or ""), []).append(r)

    def __len__(self) -> int:
        return len(self.rules)


def load_rules(path: str | FsPath) -> RuleSet:
    """Load and validate a rule file; :class:`RuleError` lists every problem as file:line."""
    return load_rules_text(read_text(path), str(path))


def load_rules_text(text: str, filename: str = "<rules>") -> RuleSet:
    try:
        rf, lines = load_model(text, filename, RuleFile)
    except InventoryError as exc:  # same format; point people at the rules documentation
        raise RuleError([InventoryIssue(i.file, i.line, i.field, i.message.replace("docs/inventory.md", "alerts/README.md"))
                         for i in exc.issues]) from None
    issues = []
    seen: dict[str, int] = {}
    for i, r in enumerate(rf.rules):
        if r.name in seen:
            issues.append(InventoryIssue(filename, line_for(lines, ("rules", i, "name")), f"rules[{i}].name",
                                         f"duplicate rule name {r.name!r} (first at rules[{seen[r.name]}])"))
            continue
        seen[r.name] = i
        word_problem = _state_word_problem(r)
        if word_problem:
            issues.append(InventoryIssue(filename, line_for(lines, ("rules", i, "threshold")), f"rules[{i}].threshold",
                                         word_problem))
    if issues:
        raise RuleError(issues)
    return RuleSet(rf.rules, source=filename)


def _state_word_problem(rule: Rule) -> str | None:
    """A rule comparing a state field with a word no vocabulary has can never fire: say so.

    State fields (``state``, ``*_state``) hold vocabulary words (contract/states.py); the
    vendor's own word is in ``<field>_raw``, which any word may be compared with.
    """
    f = rule.field or ""
    if rule.kind != "threshold" or rule.op not in ("==", "!=") or not isinstance(rule.threshold, str):
        return None
    if not (f == "state" or f.endswith("_state")):
        return None
    if any(rule.threshold in words for words in VOCABULARIES.values()):
        return None
    return (f"{rule.threshold!r} is not a state word: {f} holds a vocabulary word (docs/conventions.md, States); "
            f"compare {raw_field(f)} for the vendor's own word")
