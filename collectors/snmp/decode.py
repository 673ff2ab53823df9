"""Pure decoding: fetched varbinds + compiled profile + target tags -> Samples.

No sockets here: tests feed recorded values straight in.  Problems that do not
invalidate the rest (a column of the wrong type, a row missing from one column
of a table, noSuchObject on a required scalar) are returned beside the samples
so the collector can raise a PollError whose ``partial`` holds the good data.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from contract.sample import Sample
from contract.states import RAW_SUFFIX, UNKNOWN
from collectors.snmp.counters import CounterState
from collectors.snmp.profiles import Flags, Group, Profile, ValueSpec

__all__ = ["Fetched", "Problem", "decode", "decode_flags"]

Problem = tuple[str, str]          # (PollError kind, message)


class Fetched:
    """What the collector read for one poll: GET results and walk results by root OID."""

    __slots__ = ("gets", "walks", "failed_walks")

    def __init__(self, gets: Mapping[str, Any] | None = None, walks: Mapping[str, Sequence[tuple[str, Any]]] | None = None,
                 failed_walks: Mapping[str, str] | None = None) -> None:
        self.gets = dict(gets or {})
        self.walks = dict(walks or {})
        self.failed_walks = dict(failed_walks or {})


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, (int, float)):
        return raw
    if isinstance(raw, bytes):
        try:
            return float(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").strip().strip("\x00").strip()
    return str(raw).strip()


def _scale_divisor(scale: Any) -> float | None:
    """A signed scale column (Rittal cmcIIIVarScale): -10 = divide by 10, 10 = multiply by 10, 0/1 = as is."""
    s = _number(scale)
    if not s or s == 1:
        return None
    return -s if s < 0 else 1.0 / s


def _apply(spec: ValueSpec, raw: Any, where: str, problems: list[Problem], *, decimals: Any = None,
           divisor: Any = None, counters: CounterState | None = None, ckey: tuple = ()) -> tuple[Any, str | None]:
    """Convert one raw value per ``spec``; return (value or None, counter flag)."""
    if raw is None:
        return None, None
    if spec.type in ("string",):
        return _text(raw), None
    n = _number(raw)
    if n is None:
        problems.append(("decode", f"{where}: expected a number, got {type(raw).__name__} {_text(raw)[:40]!r}"))
        return None, None
    if n in spec.invalid:
        return None, None
    if spec.type in ("enum", "int") and isinstance(n, float) and not math.isfinite(n):
        problems.append(("decode", f"{where}: expected an integer, got {_text(raw)[:40]!r}"))
        return None, None
    if spec.type == "enum":
        return spec.enum.get(int(n), f"unknown({int(n)})") if spec.enum else str(int(n)), None
    if spec.type == "bool":
        return bool(n), None
    if spec.type == "int":
        return int(n), None
    flag = None
    if spec.counter is not None:
        if n < 0 or not isinstance(n, int):
            problems.append(("decode", f"{where}: energy counter reads {n}, not a non-negative integer"))
            return None, None
        if counters is not None:
            n, flag = counters.update(ckey, n, spec.counter)
    value = float(n)
    if decimals is not None:
        d = _number(decimals)
        if d is None or not 0 <= d <= 9:
            problems.append(("decode", f"{where}: decimal digits {decimals!r} unusable"))
            return None, None
        value /= 10 ** int(d)
    if divisor is not None:
        d = _number(divisor)
        if not d:
            problems.append(("decode", f"{where}: divisor {divisor!r} unusable"))
            return None, None
        value /= d
    value = value * spec.multiply / spec.divide
    if spec.convert == "f_to_c":
        value = (value - 32.0) * 5.0 / 9.0
    return round(value, 6), flag


#: (index names, index text) -> parsed index; rows repeat every poll, so each is parsed once
_INDEX_CACHE: dict[tuple, tuple[dict[str, str], tuple[int, ...]] | None] = {}
_MISS = object()


def _index_tags(group: Group, idx: str) -> tuple[dict[str, str], tuple[int, ...]] | None:
    """(index tags, index as integers) of a table row; the tags dict is shared: read it, never change it."""
    key = (group.index, idx)
    hit = _INDEX_CACHE.get(key, _MISS)
    if hit is not _MISS:
        return hit
    found = _parse_index(group, idx)
    if len(_INDEX_CACHE) >= 100_000:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[key] = found
    return found


def _parse_index(group: Group, idx: str) -> tuple[dict[str, str], tuple[int, ...]] | None:
    parts = idx.split(".")
    n = len(group.index)
    if len(parts) < n:
        return None
    if len(parts) > n:  # the last named sub-id takes the remainder (string-indexed tables)
        parts = parts[: n - 1] + [".".join(parts[n - 1:])]
    tags = {name: p for name, p in zip(group.index, parts) if name}
    try:
        ints = tuple(int(p) for p in parts)
    except ValueError:
        ints = ()
    return tags, ints


def decode_flags(flags: Flags, walk: Sequence[tuple[str, Any]], when_answered: bool) -> dict[str, Any] | None:
    """The boolean fields of a set-like table (``Flags``): each known value true while some row holds it.

    Returns None when nothing can be said: the table gave no rows and the ``when`` scalar (which
    proves the agent implements it) did not answer.  A row value not among the known ones sets no
    field (the vendor's own alarm OIDs; the alarm count still counts them).  A true flag named
    under ``sets`` also writes those fields (e.g. ``state: battery``).
    """
    if not walk and flags.when is not None and not when_answered:
        return None
    if not walk and flags.when is None:
        return None
    seen = {_text(v).lstrip(".") for _, v in walk if v is not None}
    out: dict[str, Any] = {field: value in seen for value, field in flags.fields.items()}
    for flag, fields in flags.sets.items():
        if out.get(flag):
            out.update(fields)
    return out


def _rows(walk: Sequence[tuple[str, Any]], prefix_len: int) -> dict[str, Any]:
    return {oid[prefix_len:]: v for oid, v in walk}


def decode(profile: Profile, fetched: Fetched, tags: Mapping[str, str], time_ns: int, *,
           device_id: str = "", counters: CounterState | None = None) -> tuple[list[Sample], list[Problem]]:
    problems: list[Problem] = []
    merged: dict[tuple, Sample] = {}
    order: list[tuple] = []
    base_tags = dict(tags)

    def emit(measurement: str, row_tags: dict[str, str], fields: dict[str, Any], first_wins: bool = False) -> None:
        if not fields:
            return
        key = (measurement, tuple(sorted(row_tags.items())))
        s = merged.get(key)
        if s is None:
            merged[key] = Sample(measurement, {**base_tags, **row_tags}, fields, time_ns)
            order.append(key)
        elif first_wins:
            for k, v in fields.items():
                s.fields.setdefault(k, v)
        else:
            s.fields.update(fields)

    for gi, g in enumerate(profile.groups):
        gname = f"{profile.name} group {gi} ({g.table or 'scalars'})"
        if g.table is None:
            fields: dict[str, Any] = {}
            for oid, spec in g.scalars:
                raw = fetched.gets.get(oid)
                if raw is None:
                    if not (spec.optional or g.optional):
                        problems.append(("device", f"{oid} ({spec.field}): noSuchObject/noSuchInstance"))
                    continue
                val, flag = _apply(spec, raw, f"{oid} ({spec.field})", problems, counters=counters,
                                   ckey=(device_id, g.measurement, spec.field, oid))
                if val is not None:
                    if spec.tag:
                        continue
                    if spec.states is not None:  # vendor word kept beside the vocabulary word
                        fields[spec.field + RAW_SUFFIX] = val
                        val = spec.states.get(val, UNKNOWN)
                    fields[spec.field] = val
                    if flag:
                        fields[flag] = True
            emit(g.measurement, dict(g.tags), fields)
            continue
        if g.flags is not None:
            if g.flags.column not in fetched.failed_walks:
                flag_fields = decode_flags(g.flags, fetched.walks.get(g.flags.column, ()),
                                           g.flags.when is not None and fetched.gets.get(g.flags.when) is not None)
                if flag_fields:
                    emit(g.measurement, dict(g.tags), flag_fields)
            continue
        # ---- table
        col_rows: list[tuple[Any, dict[str, Any]]] = []
        all_idx: dict[str, Any] = {}
        for col in g.columns:
            if col.oid in fetched.failed_walks:
                continue
            rows = _rows(fetched.walks.get(col.oid, ()), len(col.oid) + 1)
            col_rows.append((col, rows))
            all_idx.update(rows)  # an ordered set of the indexes (values unused)
        if not all_idx:
            walk_failed = getattr(g, "table", None) in fetched.failed_walks or any(
                col.oid in fetched.failed_walks for col in g.columns)
            if not g.optional and not walk_failed:  # a failed walk says why itself (below), not "empty"
                problems.append(("device", f"{gname}: table empty or not supported by the agent"))
            continue
        def _key(i: str) -> tuple:
            return tuple(int(x) if x.isdigit() else 0 for x in i.split("."))

        # Walks arrive in OID order, so each column's last row is its last key.
        # A column whose walk stopped before the table's last row was cut short
        # (endOfMibView / truncated reply); gaps in the middle are sparse tables.
        lasts = {id(rows): _key(next(reversed(rows))) for _, rows in col_rows if rows}
        table_last = max(lasts.values())
        for col, rows in col_rows:
            if rows and col.spec is not None and not col.spec.optional and lasts[id(rows)] < table_last:
                mine = lasts[id(rows)]
                missing = [i for i in all_idx if i not in rows and _key(i) > mine][:5]
                problems.append(("protocol", f"{gname}: column {col.oid} ends before rows {missing} that other "
                                             f"columns have (truncated walk)"))
        aux_cache: dict[str, dict[str, Any]] = {}

        def aux(oid: str | None, idx: str) -> Any:
            if oid is None:
                return None
            if oid not in aux_cache:
                aux_cache[oid] = _rows(fetched.walks.get(oid, ()), len(oid) + 1)
            rows = aux_cache[oid]
            hit = rows.get(idx)
            if hit is None and len(rows) == 1 and "0" in rows:
                return rows["0"]        # a scalar (.0) named as units/scale source applies to every row
            return hit

        units_rows = any(c.spec is not None and c.spec.units_from for c in g.columns)
        for idx in all_idx:
            if g.row_filter is not None and aux(g.row_filter[0], idx) not in g.row_filter[1]:
                continue
            parsed = _index_tags(g, idx)
            if parsed is None:
                problems.append(("protocol", f"{gname}: index {idx!r} shorter than {len(g.index)} sub-ids"))
                continue
            itags, ints = parsed
            row_tags = {**g.tags, **itags}
            fields = {}
            for col, rows in col_rows:
                raw = rows.get(idx)
                if raw is None:
                    continue
                spec = col.spec
                if spec is None:
                    pos, specs = col.by_index
                    if not ints:
                        continue
                    spec = specs.get(ints[pos])
                    if spec is None:
                        continue
                if spec.tag:
                    row_tags[spec.tag] = _text(raw)
                    continue
                if spec.units_from:
                    unit_raw = aux(spec.units_from, idx)
                    unit = "" if unit_raw is None else _text(unit_raw)   # 0 is a unit code (Geist: Fahrenheit)
                    uspec = (spec.units or {}).get(unit)
                    if uspec is None:
                        continue
                    divisor = aux(spec.divisor_from, idx) if spec.divisor_from else None
                    scale_col = uspec.scale_from or spec.scale_from
                    if scale_col:
                        divisor = _scale_divisor(aux(scale_col, idx))
                    decimals = aux(spec.decimals_from, idx) if spec.decimals_from else None
                    val, flag = _apply(uspec, raw, f"{col.oid}.{idx}", problems, divisor=divisor, decimals=decimals)
                    if val is not None:
                        # Self-describing tables list one sensor in several units
                        # (APC InRow: C and F, CFM and L/s); the first row wins.
                        fields.setdefault(uspec.field, val)
                    continue
                if spec.simple and type(raw) is int:       # fast path: most PDU columns
                    if raw not in spec.invalid:
                        fields[spec.field] = (raw / spec.divide if spec.multiply == 1.0
                                              else raw * spec.multiply / spec.divide)
                    continue
                where = f"{col.oid}.{idx} ({spec.field})"
                val, flag = _apply(spec, raw, where, problems,
                                   decimals=aux(spec.decimals_from, idx) if spec.decimals_from else None,
                                   divisor=(aux(spec.divisor_from, idx) if spec.divisor_from else
                                            _scale_divisor(aux(spec.scale_from, idx)) if spec.scale_from else None),
                                   counters=counters, ckey=(device_id, g.measurement, spec.field, col.oid, idx))
                if val is not None:
                    if spec.states is not None:
                        fields[spec.field + RAW_SUFFIX] = val
                        val = spec.states.get(val, UNKNOWN)
                    fields[spec.field] = val
                    if flag:
                        fields[flag] = True
            emit(g.measurement, row_tags, fields, first_wins=units_rows)
    # the walk failures first: "garbage from the agent" is the news, an empty table its consequence
    problems[:0] = [("protocol", msg) for msg in fetched.failed_walks.values()]
    return [merged[k] for k in order], problems
