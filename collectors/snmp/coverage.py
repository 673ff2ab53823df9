"""What a device has in its vendor subtree that the chosen profile does not read.

``dcim probe --profile auto`` walks the enterprise subtree of the device's sysObjectID
(``1.3.6.1.4.1.<enterprise>``, bounded in objects and seconds) and lists the tables and scalar
groups no group of the chosen profile covers, by table OID, with the MIB name where known
(``mib_tables.yaml``, or the other shipped profile that reads it), so an operator adding a model
sees at once what is left unread.

Grouping walked OIDs into tables needs no MIB: a table column is ``<entry>.<column>.<index…>``
where the entry OID ends in ``1`` (``xxxTable.1``) and the same index appears under several
columns.  ``tables_of`` picks, for each OID, the shallowest such entry below the enterprise
root whose columns share an index; OIDs ending in ``.0`` are scalars, grouped by their parent.
Pure functions apart from ``walk_subtree``, which does the bounded I/O.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from collectors.base import Target
from collectors.snmp.engine import Engine, SnmpEngineError
from collectors.snmp.profiles import Profile

__all__ = ["Gap", "enterprise_root", "tables_of", "uncovered", "walk_subtree", "mib_names", "DEFAULT_LIMIT",
           "DEFAULT_SECONDS", "MIB_TABLES"]

MIB_TABLES = Path(__file__).with_name("mib_tables.yaml")
DEFAULT_LIMIT = 20_000          # objects walked at most
DEFAULT_SECONDS = 30.0          # wall-clock bound for the whole walk
_CHILDREN = 64                  # enterprise.1 .. enterprise.64: where vendors put their MIBs
_ENTERPRISES = (1, 3, 6, 1, 4, 1)


@dataclass(frozen=True, slots=True)
class Gap:
    """One table (or scalar group) the device has and the chosen profile does not read."""

    oid: str                    # the table's Entry OID, or the scalars' parent
    kind: str                   # "table" | "scalars"
    objects: int                # varbinds walked under it
    columns: int                # distinct columns (1 for scalars: the count of scalars is ``objects``)
    rows: int                   # distinct indexes (0 for scalars)
    name: str = ""              # MIB::name where known
    read_by: tuple[str, ...] = ()   # other shipped profiles whose groups read it

    def line(self) -> str:
        what = (f"{self.rows} row(s) x {self.columns} column(s)" if self.kind == "table"
                else f"{self.objects} scalar(s)")
        name = f" {self.name}" if self.name else ""
        other = f"; read by profile {', '.join(self.read_by)}" if self.read_by else ""
        return f"{self.oid}{name} ({self.kind}: {what}){other}"


def _t(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.split("."))


def enterprise_root(sysoid: str) -> str | None:
    """``1.3.6.1.4.1.<n>`` for a sysObjectID under enterprises, else None."""
    try:
        t = _t(sysoid.lstrip("."))
    except ValueError:
        return None
    if len(t) < 7 or t[:6] != _ENTERPRISES:
        return None
    return ".".join(map(str, t[:7]))


def tables_of(oids: Iterable[str], root: str) -> dict[str, tuple[str, list[str]]]:
    """Group OIDs under ``root`` into tables and scalar groups: {group OID: (kind, [oids])}."""
    rlen = len(_t(root))
    ts = [(o, _t(o)) for o in oids]
    # for every candidate entry prefix: index suffix -> columns seen with it
    shared: dict[tuple[int, ...], dict[tuple[int, ...], set[int]]] = {}
    for _, t in ts:
        if t[-1] == 0 and len(t) > rlen + 1:
            continue
        for k in range(rlen + 1, len(t) - 1):
            if t[k - 1] == 1:
                shared.setdefault(t[:k], {}).setdefault(t[k + 1:], set()).add(t[k])

    def is_table(prefix: tuple[int, ...]) -> bool:
        return any(len(cols) > 1 for cols in shared.get(prefix, {}).values())

    out: dict[str, tuple[str, list[str]]] = {}
    for o, t in ts:
        if t[-1] == 0 and len(t) > rlen + 1:
            key, kind = ".".join(map(str, t[:-2])) if len(t) > rlen + 2 else ".".join(map(str, t[:-1])), "scalars"
        else:
            cands = [t[:k] for k in range(rlen + 1, len(t) - 1) if t[k - 1] == 1]
            best = next((c for c in cands if is_table(c)), cands[-1] if cands else t[:-1])
            key, kind = ".".join(map(str, best)), "table"
        out.setdefault(key, (kind, []))[1].append(o)
    return out


def _covers(p: Profile) -> tuple[list[str], set[str]]:
    """(table Entry prefixes, scalar OIDs) a profile's groups read."""
    tables, scalars = [], set()
    for g in p.groups:
        if g.table:
            tables.append(g.table)
        for c in g.columns:
            tables.append(c.oid)
        for oid, _ in g.scalars:
            scalars.add(oid)
    return tables, scalars


def _covered(oid: str, cover: tuple[list[str], set[str]]) -> bool:
    tables, scalars = cover
    return oid in scalars or any(oid.startswith(t + ".") for t in tables)


@lru_cache(maxsize=1)
def mib_names() -> dict[str, str]:
    """Entry OID -> ``MIB::entryName`` for vendor tables no shipped profile reads (data file)."""
    data = yaml.safe_load(MIB_TABLES.read_text()) or {}
    return {str(k).lstrip("."): str(v) for k, v in data.items()}


def uncovered(walked: Sequence[tuple[str, Any]], root: str, picked: Profile,
              profiles: Mapping[str, Profile], names: Mapping[str, str] | None = None) -> list[Gap]:
    """Pure: the tables and scalar groups of ``walked`` that no group of ``picked`` reads."""
    names = mib_names() if names is None else names
    mine = _covers(picked)
    others = {n: _covers(p) for n, p in profiles.items() if n != picked.name}
    left = [o for o, _ in walked if not _covered(o, mine)]
    gaps = []
    for key, (kind, oids) in sorted(tables_of(left, root).items(), key=lambda kv: _t(kv[0])):
        rlen = len(_t(key))
        cols = {_t(o)[rlen] for o in oids if len(_t(o)) > rlen} if kind == "table" else set()
        rows = {_t(o)[rlen + 1:] for o in oids} if kind == "table" else set()
        read_by = tuple(sorted(n for n, cov in others.items() if any(_covered(o, cov) for o in oids)))
        gaps.append(Gap(key, kind, len(oids), len(cols) if kind == "table" else 1, len(rows),
                        names.get(key, ""), read_by))
    return gaps


def children_to_walk(root: str, hints: Iterable[str]) -> list[int]:
    """root.1 … root.64, plus the branch of every hint OID under root (a sysObjectID, the tables a
    profile reads): NetBotz keeps its MIB under .5528.100, beyond the usual low branch numbers."""
    rlen = len(_t(root))
    extra = set()
    for h in hints:
        t = _t(h.lstrip("."))
        if len(t) > rlen and ".".join(map(str, t[:rlen])) == root:
            extra.add(t[rlen])
    return sorted(set(range(1, _CHILDREN + 1)) | extra)


async def walk_subtree(engine: Engine, target: Target, root: str, limit: int = DEFAULT_LIMIT,
                       seconds: float = DEFAULT_SECONDS, hints: Iterable[str] = ()) -> tuple[list[tuple[str, Any]], str]:
    """Walk ``root`` child by child (root.1, root.2, …), stopping at ``limit`` objects or ``seconds``.

    Returns the rows read and a note on what bound stopped the walk ('' when it finished).
    Walking child by child keeps what was read when a bound is hit; an agent error on one
    child ends the walk there with what came before.  The time bound is hard (a child's walk
    is cancelled at the deadline); the object bound is checked after each child, so one child
    may overshoot it, up to the engine's own per-walk cap.
    """
    rows: list[tuple[str, Any]] = []
    deadline = time.monotonic() + seconds
    for child in children_to_walk(root, hints):
        left = deadline - time.monotonic()
        if left <= 0:
            return rows, f"stopped after {seconds:g} s at {root}.{child}"
        try:
            part = await asyncio.wait_for(engine.walk(target, f"{root}.{child}", 25), left)
        except asyncio.TimeoutError:
            return rows, f"stopped after {seconds:g} s inside {root}.{child}"
        except SnmpEngineError as exc:
            rows += exc.partial
            return rows[:limit], f"walk of {root}.{child} ended: {exc.kind}: {exc.message}"
        rows += part
        if len(rows) >= limit:
            return rows[:limit], f"stopped at {limit} objects inside {root}.{child}"
    return rows, ""
