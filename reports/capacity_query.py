"""Reads the capacity report's peaks from storage (the derived ``capacity`` samples), and records how.

One InfluxQL statement per level, every element of the level at once
(``GROUP BY "id"``), bounded by the window: the server does the maxima and
percentiles, so a month of the full site returns one row per element rather
than millions of readings.

Which tier answers (``--tier auto``):

* raw readings for windows up to :data:`RAW_MAX_SPAN_S` (7 days), or when no
  rollup tier is recorded or none holds both ends of the window:
  peak and p99 exact over every derived sample;
* beyond, the finest recorded rollup tier that holds capacity buckets on the
  window's first and last day (``1m`` by default, else ``1h``): the peak is
  still exact (``max`` of each bucket's ``<field>_max``, the largest raw value
  in it), the p99 is the 99th percentile of the bucket means, which smooths
  spikes shorter than a bucket (it can only be lower than raw's).

The statements run and a SHA-256 over the results (:func:`reports.capacity.measured_hash`)
go into the report, as the PUE report does.
"""
from __future__ import annotations

from reports.energy import iso_utc
from typing import Sequence

from contract import derived as D
from contract.tags import SITE
from derived.chain_plan import ChainPlan
from derived.power_chain import ReadingIndex, capacity_samples
from inventory.model import Site
from reports.capacity import LEVEL_ORDER, CapacityReport, Measured, compute_capacity, inventory_side, measured_hash
from reports.pue import ReportError
from sinks.influx_query import InfluxQuery, QueryError
from storage.fields import MAX_SUFFIX
from storage.influxql import literal
from storage.read import RAW, TierSource

__all__ = ["RAW_MAX_SPAN_S", "plan_capacity_queries", "fetch_capacity", "choose_capacity_source",
           "build_capacity_report", "QueryError"]

#: the longest window ``auto`` reads from raw readings
RAW_MAX_SPAN_S = 7 * 86400


def plan_capacity_queries(site_id: str, start_s: float, end_s: float, source: TierSource = RAW,
                          levels: Sequence[str] = LEVEL_ORDER) -> list[tuple[str, str]]:
    """(level, InfluxQL) per level: peak and p99 of ``design_load_w`` and ``load_w``, and the sample count."""
    frm = f'"{D.CAPACITY}"' if source.is_raw else f'"{source.rp}"."{D.CAPACITY}"'
    peak = "" if source.is_raw else MAX_SUFFIX
    out = []
    for level in levels:
        out.append((level,
                    f'SELECT max("{D.DESIGN_LOAD_W}{peak}") AS "peak_w", percentile("{D.DESIGN_LOAD_W}", 99) AS "p99_w", '
                    f'max("{D.LOAD_W}{peak}") AS "own_peak_w", percentile("{D.LOAD_W}", 99) AS "own_p99_w", '
                    f'count("{D.DESIGN_LOAD_W}") AS "samples" FROM {frm} WHERE "{SITE}" = {literal(site_id)} '
                    f'AND "{D.LEVEL}" = {literal(level)} AND time >= \'{iso_utc(start_s)}\' AND time < \'{iso_utc(end_s)}\' '
                    f'GROUP BY "{D.ID}"'))
    return out


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fetch_capacity(client: InfluxQuery, site_id: str, start_s: float, end_s: float,
                   source: TierSource = RAW) -> tuple[dict[tuple[str, str], Measured], list[str], str]:
    """(level, id) -> :class:`Measured`, the statements run, and the SHA-256 of the results."""
    plan = plan_capacity_queries(site_id, start_s, end_s, source)
    measured: dict[tuple[str, str], Measured] = {}
    for level, stmt in plan:
        for series in client.query(stmt, epoch="ms"):
            ident = series.tags.get(D.ID, "")
            for row in series.rows():
                measured[(level, ident)] = Measured(
                    _num(row.get("peak_w")), _num(row.get("p99_w")), _num(row.get("own_peak_w")),
                    _num(row.get("own_p99_w")), int(row.get("samples") or 0))
    return measured, [q for _, q in plan], measured_hash(measured)


def _holds(client: InfluxQuery, tier: TierSource, site_id: str, a_s: float, b_s: float) -> bool:
    try:
        series = client.query(f'SELECT count("{D.LOAD_W}") FROM "{tier.rp}"."{D.CAPACITY}" WHERE '
                              f'"{SITE}" = {literal(site_id)} AND time >= {int(a_s) * 10**9} '
                              f'AND time < {int(b_s) * 10**9}')
    except QueryError:
        return False
    return any(v for s in series for row in s.values for v in row[1:] if v)


def choose_capacity_source(client: InfluxQuery, tier: str, site_id: str, start_s: float,
                           end_s: float) -> tuple[TierSource, str]:
    """Where the report reads (see module doc), and the sentence that says so in the report."""
    from storage.admin import read_tiers

    if tier == "raw":
        return RAW, "raw readings (as asked): peak and p99 over every derived sample"
    tiers = read_tiers(client)
    if tier != "auto":
        named = [t for t in tiers if t.name == tier or t.rp == tier]
        if not named:
            raise ReportError(f"--tier {tier}: no such tier on this database (run `dcim storage init`)")
        t = named[0]
        return t, f"rollup tier {t.name} ({t.rp}, {t.step_s} s buckets; as asked): peak exact, p99 of bucket means"
    if end_s - start_s <= RAW_MAX_SPAN_S or not tiers:
        return RAW, ("raw readings (a window up to 7 days, or no rollup tier recorded): "
                     "peak and p99 over every derived sample")
    day = 86400
    for t in tiers:  # finest first: the first that holds the whole window answers it
        if _holds(client, t, site_id, start_s, start_s + day) and _holds(client, t, site_id, end_s - day, end_s):
            return t, (f"rollup tier {t.name} ({t.rp}, {t.step_s} s buckets): peak exact (max of each bucket's max), "
                       "p99 of the bucket means")
    return RAW, "raw readings (no rollup tier holds capacity buckets at both ends of the window)"


def build_capacity_report(site: Site, client: InfluxQuery, start_s: float, end_s: float,
                          tier: str = "auto", plan: ChainPlan | None = None) -> CapacityReport:
    """Inventory figures (the derived job's own, fed no readings) joined with the window's peaks."""
    plan = plan or ChainPlan(site)
    inventory = inventory_side(capacity_samples(plan, ReadingIndex(), 0))
    source, why = choose_capacity_source(client, tier, site.site.id, start_s, end_s)
    measured, queries, sha = fetch_capacity(client, site.site.id, start_s, end_s, source)
    report = compute_capacity(site.site.id, site.site.name or site.site.id, start_s, end_s, inventory, measured)
    report.source, report.queries, report.input_sha256 = why, queries, sha
    unmeasured = sum(1 for r in report.rows if r.peak_w is None)
    if unmeasured:
        report.warnings.append(f"{unmeasured} of {len(report.rows)} elements have no capacity sample with a "
                               "design load in the window (is the derived job running? are their meters polled?)")
    unknown = sorted(k for k in measured if k not in inventory)
    if unknown:
        report.warnings.append(f"{len(unknown)} elements in storage are not in the inventory and are left out "
                               f"(first: {unknown[0][0]} {unknown[0][1]})")
    return report
