"""The derived measurements: what the derived-metrics job writes and dashboards and the live view read.

``site_power`` (per site, and per hall with a ``hall`` tag): facility, IT (by
ISO/IEC 30134-2 category), cooling and renewable power, with the sources used
and the count of expected inputs that had no fresh reading.  ``pue``:
instantaneous PUE and pPUE(cooling) (tag ``kind=instantaneous``).
``capacity``: load, rating, allocation and redundancy-aware headroom per
``level`` (pdu, ups, rack, row, hall, transformer) and ``id``; the capacity
report (``reports/capacity.py``) reads its peaks from these samples.  Written by ``derived.power_chain``; read by
``dashboards/catalog.py`` and ``dcim/live_view.py``.
``cooling_loop``: per CDU secondary loop (tags ``site``, ``hall``, ``device`` = the CDU,
``loop``): ΔT, flow, the IT heat of the GPU nodes on the loop, flow per kW, approach,
how many of the loop's GPUs run hot or throttle thermally, and whether the loop is
degraded and why.  ``cooling_loop_node``: one per GPU node on a loop (tags as
``cooling_loop`` plus ``node``): its hottest GPU, its hot and throttled GPUs and the OR of
its GPUs' clock-event reasons; it is also how the liquid-cooling dashboard lists a loop's
nodes (the inventory's list, through the job).  Written by ``derived.cooling_loops``; read by
the cooling rules (``alerts/rules/site.yaml``) and the liquid-cooling dashboard.
"""
from __future__ import annotations

from contract import gpu as G

__all__ = ["SITE_POWER", "PUE", "CAPACITY", "FACILITY_W", "IT_W", "COOLING_W", "RENEWABLE_W", "CATEGORY",
           "SOURCES", "MISSING", "it_category_w", "PUE_VALUE", "PPUE_COOLING", "PUE_KIND", "INSTANTANEOUS",
           "LEVEL", "ID", "LOAD_W", "RATED_W", "LOAD_PCT", "HEADROOM_W", "REDUNDANCY", "LEVELS",
           "LEVEL_PDU", "LEVEL_UPS", "LEVEL_RACK", "LEVEL_ROW", "LEVEL_HALL", "LEVEL_TRANSFORMER",
           "ALLOCATED_W", "UNRATED", "USABLE_W", "DESIGN_LOAD_W", "HEADROOM_PCT",
           "COOLING_LOOP", "DELTA_T_C", "LOOP_FLOW_LPM", "IT_HEAT_W", "FLOW_LPM_PER_KW", "APPROACH_C", "GPUS",
           "GPUS_HOT", "GPUS_THROTTLED", "DEGRADED", "DEGRADED_REASON", "LOW_FLOW", "HIGH_SUPPLY_TEMP",
           "PUMP_FAILED", "LEAK", "DEGRADED_REASONS", "GPUS_AT_RISK", "LEAKS",
           "COOLING_LOOP_NODE", "MEASUREMENTS", "NODE", "GPU_TEMP_MAX_C", "CLOCK_EVENT_REASONS"]

# -- measurements ---------------------------------------------------------------------------
SITE_POWER = "site_power"
PUE = "pue"
CAPACITY = "capacity"
COOLING_LOOP = "cooling_loop"
COOLING_LOOP_NODE = "cooling_loop_node"
#: every measurement the derived job writes: on a sharded site only the site-level job
#: (``dcim derived run``) computes them, so a collector shard's rule engine never judges their rules
MEASUREMENTS = (SITE_POWER, PUE, CAPACITY, COOLING_LOOP, COOLING_LOOP_NODE)

# -- site_power fields (W) ------------------------------------------------------------------
FACILITY_W = "facility_w"
IT_W = "it_w"
COOLING_W = "cooling_w"
RENEWABLE_W = "renewable_w"
#: the lowest ISO/IEC 30134-2 IT category (1, 2, 3) with data: the one ``it_w`` and ``pue`` use
CATEGORY = "category"
#: comma-separated device ids the value was computed from
SOURCES = "sources"
#: expected inputs that had no fresh reading
MISSING = "missing"


def it_category_w(category: int) -> str:
    """IT power measured at one category's point (``it_cat1_w``: UPS output, ... ``it_cat3_w``: IT input)."""
    return f"it_cat{category}_w"


# -- pue ------------------------------------------------------------------------------------
PUE_VALUE = "pue"
PPUE_COOLING = "ppue_cooling"
#: tag: how the PUE was computed
PUE_KIND = "kind"
INSTANTANEOUS = "instantaneous"

# -- capacity -------------------------------------------------------------------------------
#: tag: pdu | ups | rack | row | hall | transformer
LEVEL = "level"
#: tag: the inventory id of the thing at that level
ID = "id"
LEVEL_PDU, LEVEL_UPS, LEVEL_RACK, LEVEL_ROW, LEVEL_HALL = "pdu", "ups", "rack", "row", "hall"
LEVEL_TRANSFORMER = "transformer"
LEVELS = (LEVEL_PDU, LEVEL_UPS, LEVEL_RACK, LEVEL_ROW, LEVEL_HALL, LEVEL_TRANSFORMER)
LOAD_W = "load_w"
RATED_W = "rated_w"
LOAD_PCT = "load_pct"
HEADROOM_W = "headroom_w"
#: N, N+1, 2N, 2N+1
REDUNDANCY = "redundancy"
#: nameplate the inventory connects below this element (W); definitions per level in reports/README.md
ALLOCATED_W = "allocated_w"
#: connected devices with no nameplate (``rated_kw``): ``allocated_w`` is low by their share
UNRATED = "unrated"
#: what the element can carry with its redundancy design kept (W): 2N one side, N+1 all but the largest
USABLE_W = "usable_w"
#: the load the element must carry when the failure its design survives happens (W): a 2N rack's
#: PDU carries the whole rack, a UPS of a 2N pair the pair's load; ``load_w`` for N
DESIGN_LOAD_W = "design_load_w"
#: ``headroom_w`` as a percentage of ``usable_w``: what the headroom rules compare with a margin
HEADROOM_PCT = "headroom_pct"

# -- cooling_loop (tags: site, hall, device = the CDU, loop = contract.cooling.LOOP) --------------
#: secondary return − secondary supply, K
DELTA_T_C = "delta_t_c"
#: secondary flow, L/min
LOOP_FLOW_LPM = "flow_lpm"
#: input power of the GPU nodes on the loop (W): the heat the loop must carry away
IT_HEAT_W = "it_heat_w"
#: ``flow_lpm`` per kW of ``it_heat_w``
FLOW_LPM_PER_KW = "flow_lpm_per_kw"
#: secondary supply − primary supply, K: how close the heat exchanger gets to facility water
APPROACH_C = "approach_c"
#: GPUs on the loop with a fresh temperature or clock-event reading
GPUS = G.GPUS
#: of those, above the hot threshold
GPUS_HOT = "gpus_hot"
#: of those, clocks slowed for a thermal reason (SW or HW thermal slowdown)
GPUS_THROTTLED = G.GPUS_THROTTLED
#: bool: one of :data:`DEGRADED_REASONS` holds
DEGRADED = "degraded"
#: the reasons that hold, comma-separated in :data:`DEGRADED_REASONS` order ("" when healthy)
DEGRADED_REASON = "degraded_reason"
#: the reasons; each is also a bool field of its own (``low_flow: true``), for rules on one reason
LOW_FLOW = "low_flow"
HIGH_SUPPLY_TEMP = "high_supply_temp"
PUMP_FAILED = "pump_failed"
LEAK = "leak"
DEGRADED_REASONS = (PUMP_FAILED, LEAK, LOW_FLOW, HIGH_SUPPLY_TEMP)
#: GPUs on the loop that are hot or thermally throttled (each once) while the loop is degraded; 0 when
#: it is healthy: the loop is then the root cause of their heat (rule cooling-loop-degraded)
GPUS_AT_RISK = "gpus_at_risk"
#: leak detectors of the loop (or of its unit, untagged) reporting ``leak``
LEAKS = "leaks"

# -- cooling_loop_node (tags: those of cooling_loop, and node) -------------------------------------
#: tag: the GPU node's inventory id
NODE = "node"
#: the node's hottest GPU (°C)
GPU_TEMP_MAX_C = "gpu_temp_max_c"
#: OR of the node's GPUs' clock-event reasons bitmasks (fields ``gpus_hot``, ``gpus_throttled`` as above)
CLOCK_EVENT_REASONS = G.CLOCK_EVENT_REASONS
