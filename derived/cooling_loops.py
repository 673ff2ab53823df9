"""Per-loop cooling health: each CDU secondary loop beside the GPUs it cools (``cooling_loop``).

Hot GPUs are a symptom; a failed pump is the cause.  For every loop of the
inventory (:class:`inventory.loops.LoopIndex`) this computes, from the latest
``cdu`` and ``gpu`` readings:

* ΔT = secondary return − secondary supply; flow; the IT heat = input power of
  the GPU nodes on the loop (chassis power, else the node's BMC, else the sum
  of its GPUs: :func:`derived.power_chain.node_input_w`, the same rule as IT
  power); flow per kW of that heat; approach = secondary supply − primary supply;
* how many of the loop's GPUs report a temperature above ``gpu_hot_c`` and how
  many report a thermal clock-event reason (NVML/DCGM ``clock_event_reasons``
  bits SW thermal slowdown 0x20 and HW thermal slowdown 0x40; power brake 0x80
  and the other power/idle bits are not thermal and not counted);
* ``degraded`` and ``degraded_reason`` (``contract.derived.DEGRADED_REASONS``):
  ``pump_failed`` (a pump of the loop, or of the unit when pumps carry no
  ``loop`` tag, reports ``fault``), ``leak`` (a detector of the loop or the unit
  reports ``leak``), ``low_flow`` (flow per kW below ``low_flow_fraction`` of the
  design flow per kW, ``design_flow_lpm / rated_kw``, or of
  ``default_lpm_per_kw`` without a design point; or flow below
  ``low_flow_fraction`` × ``design_flow_lpm`` while the loop carries heat), and
  ``high_supply_temp`` (secondary supply above ``design_supply_c`` +
  ``supply_margin_c``, or above ``default_max_supply_c`` without a design point).

The rules (``alerts/rules/cooling.yaml``) name the loop as the root cause when it is
degraded and GPUs on it are hot or throttled, and suppress those GPUs' alerts.

Why a plan: the full site has hundreds of loops and 43,000 nodes; which nodes
and detectors belong to which loop is worked out once per inventory load
(:class:`LoopPlan`), so an interval only looks readings up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from contract import cooling as C
from contract import derived as D
from contract import gpu as G
from contract.gpu import is_thermal_throttle
from contract import tags as T
from contract.sample import Sample
from inventory.loops import LoopIndex, LoopKey
from inventory.model import Site

__all__ = ["LoopThresholds", "LoopPlan", "LoopReadings", "loop_samples", "node_figures", "hot_nodes", "node_gpu_figures", "is_thermal_throttle", "DEFAULT_THRESHOLDS"]


@dataclass(frozen=True, slots=True)
class LoopThresholds:
    """What counts as hot, low and high (docs/conventions.md, "Cooling loops"; defaults below)."""

    #: a GPU above this die temperature is hot (H100 SXM slows down near 87-90 °C)
    gpu_hot_c: float = 85.0
    #: flow below this fraction of what the heat needs is low
    low_flow_fraction: float = 0.5
    #: L/min per kW a loop without a design point needs (≈10 K ΔT in water)
    default_lpm_per_kw: float = 1.43
    #: K above the loop's design supply temperature that is high
    supply_margin_c: float = 3.0
    #: °C secondary supply that is high for a loop without ``design_supply_c`` (ASHRAE W45's ceiling)
    default_max_supply_c: float = 45.0
    #: below this heat (W) a loop is idle and its flow per kW says nothing
    min_heat_w: float = 1000.0


DEFAULT_THRESHOLDS = LoopThresholds()


@dataclass(frozen=True, slots=True)
class _Loop:
    key: LoopKey
    hall: str | None
    nodes: tuple[str, ...]
    rated_kw: float | None
    design_flow_lpm: float | None
    design_supply_c: float | None


class LoopPlan:
    """Every loop with its GPU nodes and design point, as plain data, built once per inventory."""

    def __init__(self, site: Site, index: LoopIndex | None = None) -> None:
        index = index or LoopIndex(site)
        self.site_id = site.site.id
        self.loops: list[_Loop] = []
        for key in index.loops():
            cdu = site.device(key[0])
            lp = index.loop(key)
            self.loops.append(_Loop(key, cdu.hall, tuple(d.id for d in index.gpu_nodes_on(key)),
                                    lp.rated_kw, lp.design_flow_lpm, lp.design_supply_c))
        self.cdus = frozenset(k[0] for k in index.loops())


class LoopReadings:
    """The latest CDU connector/pump/detector readings, GPU temperatures and clock events, and GPU
    nodes' summaries of them (``gpu_node``).

    ``consume`` is on the collectors' hot path: it stores values in dicts and
    nothing else; :func:`loop_samples` reads them once per interval.
    """

    def __init__(self) -> None:
        #: cdu -> (side, loop) -> field -> (value, time)
        self.connectors: dict[str, dict[tuple[str, str], dict[str, tuple[float, int]]]] = {}
        #: cdu -> (component tag, id, loop or None) -> (state, time)
        self.components: dict[str, dict[tuple[str, str, str | None], tuple[str, int]]] = {}
        #: node -> gpu -> [temp, temp time, reasons, reasons time]
        self.gpus: dict[str, dict[str, list]] = {}
        #: node -> its latest ``gpu_node`` summary (collectors/gpu/node_summary.py):
        #: (time, GPUs reporting, hottest temperature or None, OR of reasons, GPUs thermally throttled)
        self.nodes: dict[str, tuple[int, int, float | None, int, int]] = {}

    def consume(self, s: Sample) -> None:
        """Keep what a loop figure reads from one sample (``cdu`` or ``gpu``; others are ignored)."""
        tags = s.tags
        dev = tags.get(T.DEVICE)
        if dev is None:
            return
        if s.measurement == G.GPU:
            gpu = tags.get(T.GPU)
            if gpu is None:
                return
            f = s.fields
            temp, reasons = f.get(G.TEMP_C), f.get(G.CLOCK_EVENT_REASONS)
            if temp is None and reasons is None:
                return
            slot = self.gpus.setdefault(dev, {}).setdefault(gpu, [None, 0, None, 0])
            t = s.time_ns
            if _number(temp) and t >= slot[1]:
                slot[0], slot[1] = float(temp), t
            if _number(reasons) and t >= slot[3]:
                slot[2], slot[3] = int(reasons), t
            return
        if s.measurement == G.GPU_NODE:
            f = s.fields
            n = f.get(G.GPUS)
            if not _number(n) or not n:
                return
            prev = self.nodes.get(dev)
            if prev is None or prev[0] <= s.time_ns:
                temp, reasons, throttled = f.get(G.TEMP_MAX_C), f.get(G.CLOCK_EVENT_REASONS), f.get(G.GPUS_THROTTLED)
                self.nodes[dev] = (s.time_ns, int(n), float(temp) if _number(temp) else None,
                                   int(reasons) if _number(reasons) else 0, int(throttled) if _number(throttled) else 0)
            return
        if s.measurement != C.CDU:
            return
        side = tags.get(C.SIDE)
        if side is not None:
            key = (side, tags.get(C.LOOP, C.DEFAULT_LOOP))
            fields = self.connectors.setdefault(dev, {}).setdefault(key, {})
            for name in (C.SUPPLY_TEMP_C, C.RETURN_TEMP_C, C.FLOW_LPM, C.HEAT_REMOVED_W):
                v = s.fields.get(name)
                if _number(v):
                    prev = fields.get(name)
                    if prev is None or prev[1] <= s.time_ns:
                        fields[name] = (float(v), s.time_ns)
            return
        state = s.fields.get(C.STATE)
        if not isinstance(state, str):
            return
        for comp in (C.PUMP, C.DETECTOR):
            cid = tags.get(comp)
            if cid is not None:
                ckey = (comp, cid, tags.get(C.LOOP))
                table = self.components.setdefault(dev, {})
                prev = table.get(ckey)
                if prev is None or prev[1] <= s.time_ns:
                    table[ckey] = (state, s.time_ns)
                return


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def loop_samples(plan: LoopPlan, readings: LoopReadings, node_power: Callable[[str], float | None],
                 now_ns: int, oldest_ns: int, thresholds: LoopThresholds = DEFAULT_THRESHOLDS) -> list[Sample]:
    """One ``cooling_loop`` sample per loop with any fresh reading (connector, components or GPUs), and
    one ``cooling_loop_node`` per GPU node on it with fresh GPU readings."""
    out: list[Sample] = []
    th = thresholds

    def fresh(entry: tuple | None) -> float | None:
        return entry[0] if entry is not None and entry[1] >= oldest_ns else None

    for lp in plan.loops:
        cdu, loop = lp.key
        connectors = readings.connectors.get(cdu, {})
        sec = connectors.get((C.SECONDARY, loop), {})
        supply, ret = fresh(sec.get(C.SUPPLY_TEMP_C)), fresh(sec.get(C.RETURN_TEMP_C))
        flow = fresh(sec.get(C.FLOW_LPM))
        primary = [v for (side, _), f in connectors.items() if side == C.PRIMARY
                   if (v := fresh(f.get(C.SUPPLY_TEMP_C))) is not None]
        fields: dict[str, object] = {}
        if supply is not None and ret is not None:
            fields[D.DELTA_T_C] = round(ret - supply, 3)
        if flow is not None:
            fields[D.LOOP_FLOW_LPM] = flow
        if supply is not None and primary:
            fields[D.APPROACH_C] = round(supply - min(primary), 3)
        heat, heat_sources = 0.0, 0
        for node in lp.nodes:
            w = node_power(node)
            if w is not None:
                heat += w
                heat_sources += 1
        if heat_sources:
            fields[D.IT_HEAT_W] = round(heat, 3)
            if flow is not None and heat >= th.min_heat_w:
                fields[D.FLOW_LPM_PER_KW] = round(flow / (heat / 1000.0), 4)
        tags = {T.SITE: plan.site_id, T.DEVICE: cdu, C.LOOP: loop}
        if lp.hall:
            tags[T.HALL] = lp.hall
        gpus = hot = throttled = at_risk = 0
        for node in lp.nodes:
            figures = node_figures(readings, node, oldest_ns, th.gpu_hot_c)
            if figures is None:
                continue
            n_gpus, n_hot, n_throttled, n_reasons, t_max, n_at_risk = figures
            if n_gpus:
                gpus, hot, throttled = gpus + n_gpus, hot + n_hot, throttled + n_throttled
                at_risk += n_at_risk
                node_fields: dict[str, object] = {D.GPUS: n_gpus, D.GPUS_HOT: n_hot, D.GPUS_THROTTLED: n_throttled,
                                                  D.CLOCK_EVENT_REASONS: n_reasons}
                if t_max is not None:
                    node_fields[D.GPU_TEMP_MAX_C] = t_max
                out.append(Sample(D.COOLING_LOOP_NODE, {**tags, D.NODE: node}, node_fields, now_ns))
        states = [(comp, st) for (comp, _, cl), (st, t) in readings.components.get(cdu, {}).items()
                  if t >= oldest_ns and (cl is None or cl == loop)]
        if not fields and not gpus and not states:
            continue
        fields[D.GPUS], fields[D.GPUS_HOT], fields[D.GPUS_THROTTLED] = gpus, hot, throttled
        reasons_found = _reasons(lp, states, supply, flow, heat if heat_sources else None, th)
        fields[D.DEGRADED] = bool(reasons_found)
        fields[D.DEGRADED_REASON] = ",".join(reasons_found)
        for reason in D.DEGRADED_REASONS:
            fields[reason] = reason in reasons_found
        fields[D.GPUS_AT_RISK] = at_risk if reasons_found else 0
        fields[D.LEAKS] = sum(1 for comp, st in states if comp == C.DETECTOR and st == "leak")

        out.append(Sample(D.COOLING_LOOP, tags, fields, now_ns))
    return out


def node_figures(readings: LoopReadings, node: str, oldest_ns: int,
                 hot_c: float) -> tuple[int, int, int, int, float | None, int] | None:
    """One node's GPU figures as :func:`node_gpu_figures` gives them, from its fresh ``gpu_node``
    summary where none of its GPUs is past ``hot_c`` (no GPU hot: ``at_risk`` is the throttled
    ones), else from its GPUs' own readings; None when it has neither.

    Why the summary first: the sharded site's job reads the per-GPU rows back from InfluxDB only
    for the nodes whose summary is hot (derived/from_influx.py), and the job fed in process must
    compute the same.  A hot summary with no fresh GPU readings (they could not be read) counts
    one hot GPU: the least that is true."""
    summary = readings.nodes.get(node)
    fresh = summary is not None and summary[0] >= oldest_ns
    if fresh and (summary[2] is None or summary[2] <= hot_c):
        _, n, t_max, reasons, throttled = summary
        return n, 0, throttled, reasons, t_max, throttled
    slots = readings.gpus.get(node)
    if slots:
        figures = node_gpu_figures(slots.values(), oldest_ns, hot_c)
        if figures[0]:
            return figures
    if fresh:
        _, n, t_max, reasons, throttled = summary
        return n, 1, throttled, reasons, t_max, max(throttled, 1)
    return None


def hot_nodes(readings: LoopReadings, oldest_ns: int, hot_c: float) -> list[str]:
    """The nodes whose fresh ``gpu_node`` summary has a GPU past ``hot_c``: those whose per-GPU
    readings :func:`node_figures` needs.  A node with no fresh summary has no fresh GPU readings
    either (both come from one poll, in one batch)."""
    return [node for node, (t, _, t_max, _, _) in readings.nodes.items()
            if t >= oldest_ns and t_max is not None and t_max > hot_c]


def node_gpu_figures(slots: Iterable[list], oldest_ns: int, hot_c: float) -> tuple[int, int, int, int, float | None, int]:
    """One node's GPUs from their latest readings (``[temp, temp time, reasons, reasons time]`` each,
    as :class:`LoopReadings` keeps them), counting only readings no older than ``oldest_ns``:
    ``(GPUs with a reading, hot, thermally throttled, the OR of their clock-event reasons, the
    hottest temperature or None, GPUs hot or throttled)``.

    A pure function, called for each of the full site's 43,200 nodes per interval: when every
    GPU reported both readings recently and none is hot or throttled (a healthy site), it
    answers from ``min``/``max``/``any`` over the columns instead of a step per GPU."""
    temps, t_temps, reasons, t_reasons = zip(*slots)
    if min(t_temps) >= oldest_ns and min(t_reasons) >= oldest_ns:
        t_max = max(temps)
        mask = 0
        if any(reasons):
            for r in reasons:
                mask |= r
        if t_max <= hot_c and not is_thermal_throttle(mask):
            return len(temps), 0, 0, mask, t_max, 0
    n_gpus = n_hot = n_throttled = n_reasons = at_risk = 0
    hottest: float | None = None
    for temp, t_temp, reason, t_reason in zip(temps, t_temps, reasons, t_reasons):
        temp = temp if t_temp >= oldest_ns else None
        reason = reason if t_reason >= oldest_ns else None
        if temp is None and reason is None:
            continue
        n_gpus += 1
        is_hot = temp is not None and temp > hot_c
        is_throttled = is_thermal_throttle(reason)
        n_hot += is_hot
        n_throttled += is_throttled
        at_risk += is_hot or is_throttled
        if temp is not None and (hottest is None or temp > hottest):
            hottest = temp
        if reason is not None:
            n_reasons |= reason
    return n_gpus, n_hot, n_throttled, n_reasons, hottest, at_risk


def _reasons(lp: _Loop, states: list[tuple[str, str]], supply: float | None, flow: float | None,
             heat: float | None, th: LoopThresholds) -> list[str]:
    """The degraded reasons that hold, in ``DEGRADED_REASONS`` order (a pure function of readings)."""
    found: set[str] = set()
    if any(comp == C.PUMP and st == "fault" for comp, st in states):
        found.add(D.PUMP_FAILED)
    if any(comp == C.DETECTOR and st == "leak" for comp, st in states):
        found.add(D.LEAK)
    if flow is not None:
        per_kw = (lp.design_flow_lpm / lp.rated_kw if lp.design_flow_lpm and lp.rated_kw
                  else th.default_lpm_per_kw)
        if heat is not None and heat >= th.min_heat_w and flow < th.low_flow_fraction * per_kw * heat / 1000.0:
            found.add(D.LOW_FLOW)
    if supply is not None:
        limit = (lp.design_supply_c + th.supply_margin_c if lp.design_supply_c is not None
                 else th.default_max_supply_c)
        if supply > limit:
            found.add(D.HIGH_SUPPLY_TEMP)
    return [r for r in D.DEGRADED_REASONS if r in found]
