"""The twin's liquid cooling: CDU secondary loops, their pumps, filter, reservoir and leak
detectors, the heat exchanger to the facility water, and the GPU cold plates on each loop.

Why a module of its own: a failing pump is the cause and hot GPUs the symptom, so the
model must carry the cause through to the symptom the way the site does (pump stops ->
flow falls -> the loop's heat is carried away worse -> supply temperature rises and each
cold plate's thermal resistance rises -> GPU temperatures rise -> the driver slows the
clocks and sets the thermal bits of ``clock_event_reasons``), on exactly the nodes of that
loop.  Everything here is a plain function of numbers, cheap per step (the twin serves the
full site: ≈43,000 nodes, one step a second), and deterministic for a sequence of steps.

The physics, kept simple and stated:

* **Pump control** holds the loop's design ΔT: the flow asked for is the last step's heat
  over ``cp·ΔT_design``, never below the pumps' minimum (:data:`MIN_FLOW_FRACTION` of the
  design flow).  One pump carries the unit (N+1): the lead runs, the other stands by and
  takes over when the lead fails.  Pump speed follows the affinity laws on a quadratic
  system curve: flow ∝ speed / √resistance, ΔP ∝ speed².
* **Filter clogging** raises the filter's share of the loop resistance; the pumps speed up to
  hold the flow until they reach full speed, then the flow falls.
* **Low flow** (an air lock, a closed isolation valve): the flow of one loop (or of every
  loop) is a fraction of what the control asks for, whatever the pumps do (they run flat out).
* **Heat exchanger**: the secondary supply is held at its set point by the primary valve
  while the exchanger can; its approach to the facility water grows with the loop's ΔT
  (``approach = HX_APPROACH_PER_DT · ΔT``), so a starved loop's supply rises above set point.
* **Reservoir** (expansion tank with auto-fill): a leak drains it, auto-fill tops it up once
  the leak is fixed; below :data:`LOW_LEVEL_PCT` the unit stops its pumps to protect them.
* **Cold plate**: ``T_gpu = T_supply + R·P``; ``R`` rises as the plate's flow falls
  (convection ∝ flow^0.8).  Past the GPU's max operating temperature (87 °C) the driver
  lowers clocks and power to hold it (SW thermal slowdown, 0x20); when even the lowest
  clocks cannot, the hardware slowdown (0x40) engages and the GPU settles at its slowdown
  temperature (89 °C).  These are NVML's ``nvmlClocksEventReasonSwThermalSlowdown`` and
  ``...HwThermalSlowdown`` bits, as DCGM's ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS`` reports them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from contract import gpu as G

__all__ = ["LoopSpec", "Pump", "LoopState", "CduCooling", "step_cdu", "finish_cdu", "cold_plate_r", "gpu_thermal",
           "design_flow_lpm", "pump_power_w", "UNIT_DETECTOR", "SW_THERMAL", "HW_THERMAL", "SW_POWER_CAP",
           "GPU_MAX_OPERATING_C", "GPU_SLOWDOWN_C", "LIQUID_FRACTION", "PRIMARY_SUPPLY_C", "SUPPLY_SETPOINT_C"]

#: NVML/DCGM clock event reason bits, as the collectors and the derived job read them
SW_POWER_CAP, SW_THERMAL, HW_THERMAL = G.SW_POWER_CAP, G.SW_THERMAL_SLOWDOWN, G.HW_THERMAL_SLOWDOWN
#: H100 SXM5 thresholds as ``nvidia-smi -q`` lists them (max operating, slowdown)
GPU_MAX_OPERATING_C = 87.0
GPU_SLOWDOWN_C = 89.0

#: share of a liquid-cooled node's power that leaves in the coolant (the rest warms the room air)
LIQUID_FRACTION = 0.8
#: water-glycol (25 %): kJ per litre and kelvin
CP_KJ_PER_L_K = 4.0
DESIGN_DELTA_T_K = 10.0
#: the pumps' minimum speed keeps at least this share of the design flow moving
MIN_FLOW_FRACTION = 0.05
#: facility water (ASHRAE W27 class) and the secondary supply set point of a DLC loop
PRIMARY_SUPPLY_C = 27.0
SUPPLY_SETPOINT_C = 32.0
#: heat-exchanger approach per kelvin of secondary ΔT ((1-ε)/ε at ε ≈ 0.77)
HX_APPROACH_PER_DT = 0.3
#: the loop ΔT the model lets a starved loop reach (the GPUs throttle long before)
MAX_DELTA_T_K = 45.0
#: what still carries heat when the pumps stop (thermosiphon, the coolant's own mass over minutes)
RESIDUAL_FLOW_FRACTION = 0.1
MIN_PUMP_SPEED = 0.3
DP_DESIGN_KPA = 100.0          # loop differential pressure at full pump speed
FILTER_DP_DESIGN_KPA = 15.0    # clean filter at design flow
FILTER_SHARE = 0.15            # the clean filter's share of the loop's resistance
RETURN_PRESSURE_KPA = 150.0    # expansion-tank static pressure at the pump suction
PRIMARY_SUPPLY_KPA = 300.0     # facility water at the unit's inlet
PRIMARY_DP_KPA = 40.0          # across the heat exchanger while facility water flows
PUMP_MAX_RPM = 3600.0
RESERVOIR_L = 200.0
LEAK_PCT_PER_S = 1.0 / 60.0    # a leak drains 1 % of the reservoir a minute unless told otherwise
REFILL_PCT_PER_S = 5.0 / 60.0  # auto-fill, once the leak is fixed
LOW_LEVEL_PCT = 15.0
FILTER_RATED_HOURS = 8760.0
#: the leak detector in the unit's own drip tray; the others are named for the rack they lie under
UNIT_DETECTOR = "unit"
#: cold plate: thermal resistance at the loop's normal flow, and its convective share
R0_K_PER_W = 0.06
_CONVECTIVE = 0.4


@dataclass(frozen=True)
class LoopSpec:
    """One secondary loop as the inventory declares it (or the CDU's implicit loop ``"1"``)."""
    id: str
    rated_w: float
    design_flow_lpm: float
    setpoint_c: float = SUPPLY_SETPOINT_C


@dataclass
class Pump:
    id: str
    state: str = "standby"      # vocabulary ``pump``: running standby off fault
    speed_pct: float = 0.0
    rpm: float = 0.0
    service_h: float = 0.0


@dataclass
class LoopState:
    spec: LoopSpec
    flow_lpm: float = 0.0
    normal_flow_lpm: float = 0.0   # what the control asks for at this heat
    flow_rel: float = 1.0          # flow / normal flow: what each cold plate on the loop gets
    supply_c: float = SUPPLY_SETPOINT_C
    return_c: float = SUPPLY_SETPOINT_C
    dp_kpa: float = 0.0
    supply_kpa: float = RETURN_PRESSURE_KPA
    return_kpa: float = RETURN_PRESSURE_KPA
    heat_w: float = 0.0            # carried to the CDU this step (the nodes' liquid share)
    last_heat_w: float = 0.0       # the previous step's: what the pump control acted on
    r_k_per_w: float = R0_K_PER_W  # cold-plate resistance at this flow


@dataclass
class CduCooling:
    loops: dict[str, LoopState]
    pumps: list[Pump]
    #: detector id -> vocabulary ``leak`` word; "unit" is the CDU's own drip tray, others are racks
    detectors: dict[str, str]
    filter_dp_kpa: float = 0.0
    filter_state: str = "ok"        # vocabulary ``status``
    filter_hours: float = 0.0
    reservoir_pct: float = 100.0
    reservoir_state: str = "ok"     # vocabulary ``status``
    unit_state: str = "running"     # vocabulary ``unit``
    primary_supply_c: float = PRIMARY_SUPPLY_C
    primary_return_c: float = PRIMARY_SUPPLY_C
    primary_flow_lpm: float = 0.0
    heat_w: float = 0.0
    leaking: str | None = None      # the detector that sees the leak, while it lasts


def design_flow_lpm(rated_w: float) -> float:
    """The flow (L/min) that carries ``rated_w`` at the design ΔT."""
    return rated_w / 1000.0 / (CP_KJ_PER_L_K * DESIGN_DELTA_T_K) * 60.0


def cold_plate_r(flow_rel: float) -> float:
    """A cold plate's thermal resistance at ``flow_rel`` of its normal flow (K/W)."""
    f = max(flow_rel, 0.05)
    return R0_K_PER_W * ((1.0 - _CONVECTIVE) + _CONVECTIVE * f ** -0.8)


def gpu_thermal(supply_c: float, r: float, demand_w: float, floor_w: float) -> tuple[float, float, int]:
    """(power W, temperature °C, thermal reason bits) of one GPU asking for ``demand_w``.

    ``floor_w`` is what it draws at its lowest clocks: below that the driver cannot hold
    the max operating temperature and the hardware slowdown takes over."""
    t = supply_c + r * demand_w
    if t <= GPU_MAX_OPERATING_C:
        return demand_w, t, 0
    p_sw = (GPU_MAX_OPERATING_C - supply_c) / r
    if p_sw >= floor_w:
        return p_sw, GPU_MAX_OPERATING_C, SW_THERMAL
    p = max(floor_w * 0.3, min(demand_w, (GPU_SLOWDOWN_C - supply_c) / r))
    return p, supply_c + r * p, SW_THERMAL | HW_THERMAL


def step_cdu(c: CduCooling, faults: dict[str, dict], primary_c: float, dt: float) -> None:
    """Advance one CDU by ``dt`` seconds under ``faults`` (fault name -> params).

    Uses each loop's ``last_heat_w`` (what the controller last measured) for the flow it
    asks for; the model then sets ``heat_w`` to this step's heat from the loop's nodes, once
    they all have reported (:func:`finish_cdu` computes the return temperatures from it)."""
    # reservoir: a leak drains it, auto-fill tops it up again
    leak = faults.get("cdu_leak")
    if leak is not None:
        rate = float(leak.get("pct_per_min", LEAK_PCT_PER_S * 60.0)) / 60.0
        c.reservoir_pct = max(0.0, c.reservoir_pct - rate * dt)
        # by default under the first rack on the unit's loops (manifolds and quick
        # disconnects leak more often than the unit itself)
        racks = [d for d in c.detectors if d != UNIT_DETECTOR]
        det = str(leak.get("detector") or (racks[0] if racks else UNIT_DETECTOR))
        c.leaking = det if det in c.detectors else UNIT_DETECTOR
    else:
        c.reservoir_pct = min(100.0, c.reservoir_pct + REFILL_PCT_PER_S * dt)
        c.leaking = None
    for d in c.detectors:
        c.detectors[d] = "leak" if d == c.leaking else "dry"
    low_level = c.reservoir_pct < LOW_LEVEL_PCT
    c.reservoir_state = "fault" if low_level else "ok"
    # pumps: N+1, the first healthy one runs
    fail = faults.get("cdu_pump_fail")
    # pump= is one pump's id or "all" (the default), as SiteModel.inject checked it
    which = None if fail is None else fail.get("pump", "all")
    failed = set() if which is None else ({p.id for p in c.pumps} if which == "all" else {str(which)})
    lead = None if low_level else next((p for p in c.pumps if p.id not in failed), None)
    # hydraulics: resistance relative to the clean loop
    clog = faults.get("cdu_filter_clog")
    severity = min(0.995, max(0.0, float(clog.get("severity", 0.97)))) if clog is not None else 0.0
    filter_mult = 1.0 / (1.0 - severity) ** 2
    resistance = (1.0 - FILTER_SHARE) + FILTER_SHARE * filter_mult
    design_total = sum(l.spec.design_flow_lpm for l in c.loops.values()) or 1.0
    for l in c.loops.values():
        # the flow that carries the last heat at the design ΔT, never below the loop's minimum
        l.normal_flow_lpm = max(design_flow_lpm(l.last_heat_w), MIN_FLOW_FRACTION * l.spec.design_flow_lpm)
    asked = sum(l.normal_flow_lpm for l in c.loops.values())
    low = faults.get("cdu_low_flow")
    low_frac = min(1.0, max(0.0, float(low.get("pct", 20.0)) / 100.0)) if low is not None else 1.0
    low_loop = None if low is None or low.get("loop") is None else str(low["loop"])
    starved = {l.spec.id for l in c.loops.values() if low is not None and low_loop in (None, l.spec.id)}
    if lead is None:
        speed, total = 0.0, 0.0
    else:  # below its minimum speed the pump recirculates the excess through the bypass valve
        needed = min(1.0, asked / design_total * math.sqrt(resistance))
        speed = 1.0 if starved else max(MIN_PUMP_SPEED, needed)  # flat out against a starved loop
        total = design_total * needed / math.sqrt(resistance)
    for p in c.pumps:
        if p.id in failed:
            p.state, p.speed_pct, p.rpm = "fault", 0.0, 0.0
        elif p is lead:
            p.state, p.speed_pct, p.rpm = "running", 100.0 * speed, PUMP_MAX_RPM * speed
            p.service_h += dt / 3600.0
        else:
            p.state, p.speed_pct, p.rpm = ("off" if low_level else "standby"), 0.0, 0.0
    share = total / asked if asked > 0 else 0.0
    c.filter_dp_kpa = FILTER_DP_DESIGN_KPA * (total / design_total) ** 2 * filter_mult
    c.filter_state = "fault" if severity >= 0.9 else "ok"
    if lead is not None:
        c.filter_hours += dt / 3600.0
    dp = DP_DESIGN_KPA * speed ** 2
    for l in c.loops.values():
        l.flow_lpm = l.normal_flow_lpm * share * (low_frac if l.spec.id in starved else 1.0)
        l.flow_rel = l.flow_lpm / l.normal_flow_lpm if l.normal_flow_lpm > 0 else 0.0
        l.r_k_per_w = cold_plate_r(l.flow_rel)
        l.dp_kpa = max(0.0, dp - c.filter_dp_kpa)
        l.return_kpa = RETURN_PRESSURE_KPA * (0.3 if low_level else 1.0)
        l.supply_kpa = l.return_kpa + l.dp_kpa
        dT = _delta_t(l.last_heat_w, l.flow_lpm, l.normal_flow_lpm)
        l.supply_c = max(l.spec.setpoint_c, primary_c + HX_APPROACH_PER_DT * dT)
    c.primary_supply_c = primary_c
    c.unit_state = "alarm" if (failed or low_level or c.leaking or starved or c.filter_state != "ok") else "running"


def _delta_t(heat_w: float, flow_lpm: float, normal_lpm: float) -> float:
    carrying = max(flow_lpm, RESIDUAL_FLOW_FRACTION * normal_lpm)
    if carrying <= 0:
        return 0.0
    return min(MAX_DELTA_T_K, heat_w / 1000.0 / (carrying / 60.0 * CP_KJ_PER_L_K))


def loop_low_flow(l: LoopState) -> bool:
    """The loop carries under half its normal flow: the unit's low-flow alarm."""
    return l.flow_rel < 0.5


def loop_warm(l: LoopState) -> bool:
    """The loop's supply runs over 3 K above its setpoint: the unit's high-supply-temperature alarm."""
    return l.supply_c > l.spec.setpoint_c + 3.0


def primary_dp_kpa(c: CduCooling) -> float:
    """The facility water's pressure drop across the heat exchanger (none while its valve is shut)."""
    return PRIMARY_DP_KPA if c.primary_flow_lpm > 0 else 0.0


def pump_power_w(c: CduCooling) -> float:
    """Electrical draw: controls plus the running pump (hydraulic power ∝ speed³ at 60 % efficiency)."""
    design_total = sum(l.spec.design_flow_lpm for l in c.loops.values())
    full = design_total / 60.0 * DP_DESIGN_KPA / 0.6  # L/s · kPa = W
    return 300.0 + sum(full * (p.speed_pct / 100.0) ** 3 for p in c.pumps)


def finish_cdu(c: CduCooling) -> None:
    """Return temperatures and the primary side from the heat the loops' nodes reported."""
    total = 0.0
    for l in c.loops.values():
        l.return_c = l.supply_c + _delta_t(l.heat_w, l.flow_lpm, l.normal_flow_lpm)
        l.last_heat_w = l.heat_w
        total += l.heat_w
    c.heat_w = total
    # primary: the valve opens to carry the heat at a 6 K rise on the facility water
    c.primary_flow_lpm = total / 1000.0 / (CP_KJ_PER_L_K * 6.0) * 60.0 if total > 0 else 0.0
    c.primary_return_c = c.primary_supply_c + (6.0 if total > 0 else 0.0)
