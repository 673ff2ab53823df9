"""Capacity and stranded power per PDU, UPS, transformer, rack, row and hall: pure computation.

The inventory says what each element is rated for, what is connected below it
(its *allocation*) and what it can carry with its redundancy kept (*usable*);
storage says what it really carried.  This module joins the two, with no I/O:
:mod:`reports.capacity_query` reads the peaks, these functions turn inventory
and query results into rows, and the renderers print them.

Per element (reports/README.md, "Capacity and stranded power", defines each
per level):

* ``rated_w``: the nameplate; ``allocated_w``: Σ nameplate connected below;
  ``unallocated_w`` = rated − allocated;
* ``peak_w`` / ``p99_w``: the peak and 99th percentile over the window of the
  load the element must carry when the failure its redundancy design survives
  happens (``design_load_w``: a 2N rack's PDU carries the whole rack, a UPS of
  a 2N pair the pair); ``own_peak_w`` / ``own_p99_w``: of its own measured
  load (``load_w``);
* ``headroom_w`` = usable − peak (2N: one side must carry all; N+1: lose the
  largest unit); ``stranded_w`` = allocated − peak: capacity committed to what
  is connected but never drawn, even on a failure.

Why the inventory side comes from :func:`derived.power_chain.capacity_samples`
fed no readings: the derived job and the report then cannot disagree on a
rating, an allocation or a usable capacity, because one function says them all.
"""
from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from contract import derived as D
from contract.sample import Sample

__all__ = ["CapacityRow", "CapacityReport", "Measured", "MEASURED_FIELDS", "compute_capacity",
           "inventory_side", "level_totals", "measured_hash", "top_stranded", "LEVEL_ORDER"]

#: report order: from the room down to the socket, then the feeds
LEVEL_ORDER = (D.LEVEL_HALL, D.LEVEL_ROW, D.LEVEL_RACK, D.LEVEL_PDU, D.LEVEL_UPS, D.LEVEL_TRANSFORMER)

#: what the query returns per element, in this order (the input hash covers these numbers)
MEASURED_FIELDS = ("peak_w", "p99_w", "own_peak_w", "own_p99_w", "samples")


@dataclass(frozen=True)
class Measured:
    """An element's figures over the window as storage answered them (None: no sample)."""

    peak_w: float | None = None
    p99_w: float | None = None
    own_peak_w: float | None = None
    own_p99_w: float | None = None
    samples: int = 0


@dataclass
class CapacityRow:
    level: str
    id: str
    hall: str
    row: str
    redundancy: str
    rated_w: float | None
    allocated_w: float | None
    unrated: int
    unallocated_w: float | None
    usable_w: float | None
    peak_w: float | None
    p99_w: float | None
    own_peak_w: float | None
    own_p99_w: float | None
    samples: int
    headroom_w: float | None
    headroom_pct: float | None
    stranded_w: float | None
    stranded_pct: float | None


@dataclass
class CapacityReport:
    site_id: str
    site_name: str
    start_s: float
    end_s: float
    rows: list[CapacityRow]
    totals: dict[str, dict[str, float | int | None]]
    source: str = ""
    queries: list[str] = field(default_factory=list)
    input_sha256: str = ""
    warnings: list[str] = field(default_factory=list)


def inventory_side(samples: Iterable[Sample]) -> dict[tuple[str, str], Sample]:
    """(level, id) -> the capacity sample the derived job computes with no readings: the inventory's figures."""
    return {(s.tags[D.LEVEL], s.tags[D.ID]): s for s in samples if s.measurement == D.CAPACITY}


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _pct(part: float | None, whole: float | None) -> float | None:
    return 100.0 * part / whole if part is not None and whole else None


def compute_capacity(site_id: str, site_name: str, start_s: float, end_s: float,
                     inventory: Mapping[tuple[str, str], Sample],
                     measured: Mapping[tuple[str, str], Measured]) -> CapacityReport:
    """One row per inventory element, in :data:`LEVEL_ORDER` then inventory order.

    An element storage has nothing for keeps its inventory figures and has no peak,
    headroom or stranded figure (never a zero that would read as "idle").
    """
    rows: list[CapacityRow] = []
    rank = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    order = sorted(enumerate(inventory.items()), key=lambda e: (rank.get(e[1][0][0], len(rank)), e[0]))
    for _, ((level, ident), s) in order:
        f, t = s.fields, s.tags
        m = measured.get((level, ident), Measured())
        rated, allocated, usable = f.get(D.RATED_W), f.get(D.ALLOCATED_W), f.get(D.USABLE_W)
        headroom = _minus(usable, m.peak_w)
        stranded = _minus(allocated, m.peak_w)
        rows.append(CapacityRow(
            level=level, id=ident, hall=t.get("hall", ""), row=t.get("row", ""), redundancy=f.get(D.REDUNDANCY, ""),
            rated_w=rated, allocated_w=allocated, unrated=int(f.get(D.UNRATED, 0)),
            unallocated_w=_minus(rated, allocated), usable_w=usable,
            peak_w=m.peak_w, p99_w=m.p99_w, own_peak_w=m.own_peak_w, own_p99_w=m.own_p99_w, samples=m.samples,
            headroom_w=headroom, headroom_pct=_pct(headroom, usable),
            stranded_w=stranded, stranded_pct=_pct(stranded, allocated)))
    return CapacityReport(site_id, site_name, start_s, end_s, rows, level_totals(rows))


def level_totals(rows: Iterable[CapacityRow]) -> dict[str, dict[str, float | int | None]]:
    """Per level: element count, Σ rated, allocated, unallocated, stranded (of elements with a peak), and
    how many elements have no measurement in the window."""
    out: dict[str, dict[str, float | int | None]] = {}
    for r in rows:
        t = out.setdefault(r.level, {"elements": 0, "rated_w": 0.0, "allocated_w": 0.0, "unallocated_w": 0.0,
                                     "stranded_w": 0.0, "unmeasured": 0, "min_headroom_pct": None})
        t["elements"] += 1  # type: ignore[operator]
        for k in ("rated_w", "allocated_w", "unallocated_w", "stranded_w"):
            v = getattr(r, k)
            if v is not None:
                t[k] += v  # type: ignore[operator]
        if r.peak_w is None:
            t["unmeasured"] += 1  # type: ignore[operator]
        if r.headroom_pct is not None and (t["min_headroom_pct"] is None or r.headroom_pct < t["min_headroom_pct"]):
            t["min_headroom_pct"] = r.headroom_pct
    return out


def top_stranded(rows: Iterable[CapacityRow], level: str = D.LEVEL_RACK, n: int = 10) -> list[CapacityRow]:
    """The ``n`` elements of ``level`` with the most stranded power (ties in report order)."""
    found = [r for r in rows if r.level == level and r.stranded_w is not None]
    return sorted(found, key=lambda r: -r.stranded_w)[:n]  # type: ignore[operator]


def measured_hash(measured: Mapping[tuple[str, str], Measured]) -> str:
    """SHA-256 of the query results in canonical form (reports/README.md, "Capacity ... audit trail").

    For each (level, id) in sorted order: level, NUL, id, NUL, then the
    :data:`MEASURED_FIELDS` as little-endian float64 (NaN where storage had none).
    """
    h = hashlib.sha256()
    for (level, ident) in sorted(measured):
        m = measured[(level, ident)]
        h.update(level.encode() + b"\0" + ident.encode() + b"\0")
        vals = [getattr(m, k) for k in MEASURED_FIELDS]
        h.update(struct.pack("<5d", *(math.nan if v is None else float(v) for v in vals)))
    return h.hexdigest()
