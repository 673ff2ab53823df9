"""Which profile reads a device: sysObjectID first, then a probe of the candidate's own objects.

Vendors keep one enterprise number across several MIB generations (APC rPDU / rPDU2 / xPDU,
Raritan PX1 / PX2-PX3, Geist V3 / V4 / VERTIV-V5, ServerTech Sentry3 / Sentry4), and a
sysObjectID prefix alone cannot tell them apart: an rPDU2 unit and a legacy rPDU unit share
``.318.1.3.4``.  So each candidate profile may name what must answer before it is chosen:

- ``detect.require``: one instance, fetched with GET (a scalar such as ``xPDUSystemOutputTotalPower.0``);
- ``detect.probe``: one *column* of the table the generation introduced, asked with a walk that
  stops at the first row (GETNEXT semantics): any row under the column means the table is there.

Either answer counts only when it is a real value, not one listed in ``require_invalid``
(APC answers ``-1`` on objects a model does not implement).

The decision is a pure function of the sysObjectID and the answers (``decide``) so it is tested
on recorded values; the collector does the I/O (:meth:`SnmpCollector._resolve_profile`) and
keeps the :class:`Detection`, which ``dcim probe`` prints: the profile, the generation, the
prefix that matched and the object that answered, and why each other candidate was passed over.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from collectors.snmp.profiles import Profile

__all__ = ["Detection", "Verdict", "candidates", "plan", "decide", "detect_profile"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One candidate considered: taken or passed over, and why (words an operator reads)."""

    profile: str
    taken: bool
    why: str


@dataclass(frozen=True, slots=True)
class Detection:
    """The outcome of ``--profile auto`` for one device."""

    sysobjectid: str
    profile: Profile | None
    prefix: str | None          # the sysObjectID prefix that matched ('' = a generic fallback)
    evidence: str               # the object that answered, or why no answer was needed
    verdicts: tuple[Verdict, ...] = field(default=())

    def explain(self) -> str:
        """Lines for ``dcim probe``: what was picked and why, then the candidates passed over."""
        if self.profile is None:
            head = f"no profile matches sysObjectID {self.sysobjectid}"
        else:
            gen = f" ({self.profile.generation})" if self.profile.generation else ""
            how = (f"sysObjectID {self.sysobjectid} under {self.prefix}" if self.prefix
                   else f"sysObjectID {self.sysobjectid} matched no vendor profile; generic fallback")
            head = f"profile {self.profile.name}{gen}: {how}; {self.evidence}"
        rest = [f"  passed over {v.profile}: {v.why}" for v in self.verdicts if not v.taken]
        return "\n".join([head, *rest])


def _prefix(sysoid: str, p: Profile) -> str | None:
    best = None
    for pre in p.sysobjectid:
        if (sysoid == pre or sysoid.startswith(pre + ".")) and (best is None or len(pre) > len(best)):
            best = pre
    return best


def candidates(sysoid: str, profiles: Mapping[str, Profile]) -> list[tuple[Profile, str]]:
    """Profiles to try, in order, each with the prefix that matched ('' for generic fallbacks).

    Vendor profiles whose sysObjectID prefix matches come first, the most specific prefix
    first, then by priority; the generic profiles (no prefix, or ``generic: true``) follow.
    """
    vendor = []
    for p in profiles.values():
        pre = _prefix(sysoid, p)
        if pre is not None:
            vendor.append((pre, p))
    vendor.sort(key=lambda t: (-len(t[0]), -t[1].priority, t[1].name))
    taken = {p.name for _, p in vendor}
    generic = sorted((p for p in profiles.values() if p.generic and p.name not in taken),
                     key=lambda p: (-p.priority, p.name))
    return [(p, pre) for pre, p in vendor] + [(p, "") for p in generic]


def plan(sysoid: str, profiles: Mapping[str, Profile]) -> tuple[list[str], list[str]]:
    """What to ask the device before deciding: (instances to GET, columns to probe)."""
    gets: list[str] = []
    cols: list[str] = []
    for p, _ in candidates(sysoid, profiles):
        if p.require and p.require not in gets:
            gets.append(p.require)
        if p.probe and p.probe not in cols:
            cols.append(p.probe)
    return gets, cols


def _valid(value: Any, p: Profile) -> bool:
    return value is not None and not isinstance(value, BaseException) and value not in p.require_invalid


def decide(sysoid: str, gets: Mapping[str, Any], columns: Mapping[str, tuple[str, Any] | None],
           profiles: Mapping[str, Profile]) -> Detection:
    """Pure choice: the first candidate whose checks all answered with valid values.

    ``gets`` maps each ``require`` OID to its GET value (None: noSuchObject/noSuchInstance);
    ``columns`` maps each ``probe`` column to the first ``(oid, value)`` found under it, or None
    when the column has no rows.
    """
    verdicts: list[Verdict] = []
    for p, pre in candidates(sysoid, profiles):
        evidence: list[str] = []
        failed = None
        if p.require:
            v = gets.get(p.require)
            if _valid(v, p):
                evidence.append(f"{p.require} = {_show(v)}")
            else:
                failed = f"{p.require} " + ("absent" if v is None else f"= {_show(v)} (not supported)")
        if failed is None and p.probe:
            row = columns.get(p.probe)
            if row is not None and _valid(row[1], p):
                evidence.append(f"column {p.probe} present (first row {row[0]} = {_show(row[1])})")
            else:
                failed = f"column {p.probe} " + ("has no rows" if row is None else
                                                 f"answers {_show(row[1])} (not supported)")
        if failed is not None:
            verdicts.append(Verdict(p.name, False, failed))
            continue
        why = "; ".join(evidence) if evidence else "no probe needed (the sysObjectID prefix is this family's alone)"
        verdicts.append(Verdict(p.name, True, why))
        return Detection(sysoid, p, pre, why, tuple(verdicts))
    return Detection(sysoid, None, None, "no candidate answered", tuple(verdicts))


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def detect_profile(sysoid: str, required: Mapping[str, Any], profiles: Mapping[str, Profile],
                   columns: Mapping[str, tuple[str, Any] | None] | None = None) -> Profile | None:
    """The chosen profile alone (``decide`` without the explanation)."""
    return decide(sysoid, required, columns or {}, profiles).profile
