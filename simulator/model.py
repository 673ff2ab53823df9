"""One physical model of the site, deterministic for a seed and a time.

GPU utilisation (training jobs with checkpoint dips) -> GPU and node power ->
PDU outlets and phases (2N: half a node on each feed) -> UPS output, losses
and input -> transformer and utility meters; IT heat -> CDUs, CRAH ->
chillers whose COP moves with Tétouan's outside temperature; solar from the
sun's elevation at the site's latitude, wind from a seeded slow random walk.
Every device integrates its power into an energy counter, so counters are
exactly the integral of the power the endpoints report.  PUE is not a
constant: it comes out of losses and cooling (≈1.2-1.3 here).

Faults change the model, not the endpoints: a tripped breaker moves a node's
load to the other feed, a UPS on battery draws nothing from the grid and
drains its battery, a tripped chiller stops and its loop warms up, a failed CDU pump
starves its loop and the GPUs on that loop heat up and slow down (simulator/cooling.py).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from inventory.loops import resolve_loop
from inventory.model import IMPLICIT_LOOP, Device, Site
from inventory.topology import PowerGraph
from simulator import cooling as cool
from simulator.jobs import gpu_labels, namespaces_for
from simulator.stable_random import unit as _unit

__all__ = ["SiteModel", "STEP_CHUNK", "FAULTS", "ENDPOINT_FAULTS", "FAULT_PARAMS", "outside_temp_c", "sun_elevation_deg"]

FAULTS = {
    "pdu_breaker_trip": "pdu",      # the PDU's output breaker opens: its outlets go dark
    "ups_on_battery": "ups",        # input lost: the UPS carries its load from the battery
    "chiller_trip": "chiller",      # compressor stops; its loop warms up
    "cdu_leak": "cdu",              # a leak: a detector sees it, the reservoir drains (params: detector, pct_per_min)
    "cdu_pump_fail": "cdu",         # a pump fails (param pump: an id, or all, the default): standby takes over or flow stops
    "cdu_low_flow": "cdu",          # a loop's flow (param loop; default every loop) falls to pct (default 20) % (air lock, closed valve)
    "cdu_filter_clog": "cdu",       # the strainer clogs (param severity, default 0.97): ΔP rises, then flow falls
    "gpu_overtemp": "gpu_node",     # one GPU of the node runs 32 °C hot, at least past the 89 °C slowdown
    "xid_storm": "gpu_node",        # XID errors on every GPU of the node while it lasts
    "no_answer": "*",               # the endpoint stops answering
    "slow": "*",                    # the endpoint answers after a delay
    "garbage": "*",                 # the endpoint answers with bytes that are not the protocol
}
#: the faults of an endpoint rather than of the physics, in the order they win when several are set
ENDPOINT_FAULTS = ("no_answer", "slow", "garbage")

#: parameters a fault takes: a (low, high) range for a number, or what a word names ("pump", "loop", "detector")
FAULT_PARAMS: dict[str, dict[str, object]] = {
    "cdu_pump_fail": {"pump": "pump"},
    "cdu_low_flow": {"pct": (0.0, 100.0), "loop": "loop"},
    "cdu_filter_clog": {"severity": (0.0, 0.995)},
    "cdu_leak": {"detector": "detector", "pct_per_min": (0.0, 100.0)},
}

GPU_IDLE_W, GPU_MAX_W = 70.0, 700.0
HOST_W = 1800.0          # CPUs, memory, NICs, fans of an 8-GPU node at full load
PSU_EFF = 0.94
VOLTAGE = 230.0
PF = 0.98
#: GPU nodes (and loads' feeds) a chunked step (SiteModel.step_iter) does between two yields:
#: ≈1/30 of the full site, ≈30 ms of CPU
STEP_CHUNK = 1500


def outside_temp_c(t: float) -> float:
    """Tétouan in late autumn: 16 °C mean, ±5 °C over the day, warmest at 15:00 local (UTC+1)."""
    hour = (t / 3600.0 + 1.0) % 24.0
    return 16.0 + 5.0 * math.cos(2 * math.pi * (hour - 15.0) / 24.0)


def sun_elevation_deg(t: float, latitude: float, longitude: float) -> float:
    day = (t / 86400.0) % 365.25
    decl = -23.44 * math.cos(2 * math.pi * (day + 10) / 365.25)
    solar_hour = (t / 3600.0 + longitude / 15.0) % 24.0
    ha = math.radians(15.0 * (solar_hour - 12.0))
    lat, d = math.radians(latitude), math.radians(decl)
    return math.degrees(math.asin(math.sin(lat) * math.sin(d) + math.cos(lat) * math.cos(d) * math.cos(ha)))


@dataclass
class GpuState:
    util: float = 0.0
    power_w: float = 0.0
    temp_c: float = 30.0
    memory_temp_c: float = 35.0
    energy_mj: float = 0.0
    xid: int = 0
    clock_reasons: int = 0          # DCGM clock event reasons bitmask (simulator/cooling.py)
    sm_clock_mhz: float = 345.0
    #: the workload's dcgm-exporter labels (namespace, pod, container); () while the GPU is idle
    labels: tuple = ()


@dataclass
class DeviceState:
    power_w: float = 0.0            # what the device's own meter/agent reports (output for UPS, input otherwise)
    input_w: float = 0.0            # drawn from upstream
    energy_kwh: float = 0.0         # ∫ power_w dt
    input_energy_kwh: float = 0.0   # ∫ input_w dt
    values: dict = field(default_factory=dict)
    gpus: list[GpuState] = field(default_factory=list)
    outlets: dict[int, float] = field(default_factory=dict)        # outlet -> W
    outlet_energy: dict[int, float] = field(default_factory=dict)  # outlet -> kWh
    cooling: cool.CduCooling | None = None  # a CDU's loops, pumps, filter, reservoir, detectors


class SiteModel:
    def __init__(self, site: Site, seed: int = 1, start: float = 0.0) -> None:
        self.site = site
        self.seed = seed
        self.graph = PowerGraph(site)
        self.devices = {d.id: d for d in site.all_devices()}
        self.state: dict[str, DeviceState] = {d: DeviceState() for d in self.devices}
        self.faults: dict[tuple[str, str], dict] = {}
        #: device -> its winning endpoint fault, kept by inject/clear: asked on every request served
        self._endpoint: dict[str, str] = {}
        self.t = start
        self._last: float | None = None
        #: the chunked step in progress (step_iter), until it ends or someone else finishes it
        self._stepping: Iterator[None] | None = None
        for dev in self.devices.values():
            if dev.kind == "gpu_node":
                self.state[dev.id].gpus = [GpuState() for _ in range(dev.gpus or 8)]
            if dev.kind == "ups":
                self.state[dev.id].values["charge_pct"] = 100.0
        self._chiller_warm: dict[str, float] = {}
        self._by_kinds: dict[tuple[str, ...], list[Device]] = {}
        self._feeds: list[tuple[str, list[tuple[str, int]]]] | None = None
        #: CDU id -> its loops, pumps, filter, reservoir, leak detectors (simulator/cooling.py)
        self.cooling: dict[str, cool.CduCooling] = {}
        #: GPU node id -> the loop that cools it (absent: air-cooled, or a CDU the inventory lacks)
        self.node_loop: dict[str, cool.LoopState] = {}
        self._build_loops()
        self.namespaces = namespaces_for(site)

    # -- faults --------------------------------------------------------------------
    def inject(self, fault: str, device: str, **params) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        if device not in self.devices:
            raise ValueError(f"no device {device!r} in the site")
        kind = FAULTS[fault]
        if kind != "*" and self.devices[device].kind != kind:
            raise ValueError(f"fault {fault} applies to {kind} devices; {device} is a {self.devices[device].kind}")
        params = self._checked_params(fault, device, params)
        self.finish_step()  # from the next step on, for every node
        self.faults[(fault, device)] = params
        self._endpoint_changed(device)

    def _checked_params(self, fault: str, device: str, params: dict) -> dict:
        """``params`` typed and in range (they may come as text from the control API), or ValueError."""
        allowed = FAULT_PARAMS.get(fault, {})
        out: dict = {}
        for name, value in params.items():
            if name not in allowed:
                known = ", ".join(allowed) or "none"
                raise ValueError(f"fault {fault} has no parameter {name!r} (parameters: {known})")
            rule = allowed[name]
            if isinstance(rule, tuple):
                lo, hi = rule
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{fault} {name}={value!r}: expected a number from {lo:g} to {hi:g}") from None
                if not lo <= number <= hi:
                    raise ValueError(f"{fault} {name}={value!r}: expected a number from {lo:g} to {hi:g}")
                out[name] = number
                continue
            text = str(value)
            c = self.cooling.get(device)
            if c is None:
                known = []
            elif rule == "pump":
                known = [p.id for p in c.pumps] + ["all"]
            elif rule == "loop":
                known = list(c.loops)
            else:
                known = list(c.detectors)
            if text not in known:
                raise ValueError(f"{fault} {name}={text!r}: {device} has {', '.join(known)}")
            out[name] = text
        return out

    def clear(self, fault: str, device: str) -> None:
        self.finish_step()
        self.faults.pop((fault, device), None)
        self._endpoint_changed(device)

    def has(self, fault: str, device: str) -> bool:
        return (fault, device) in self.faults

    def endpoint_behaviour(self, device: str) -> str:
        """How the device's endpoint answers: ``ok``, or the first of :data:`ENDPOINT_FAULTS` set on
        it.  One dict lookup, because every request the twin serves asks it."""
        return self._endpoint.get(device, "ok")

    def _endpoint_changed(self, device: str) -> None:
        mode = next((b for b in ENDPOINT_FAULTS if (b, device) in self.faults), None)
        if mode is None:
            self._endpoint.pop(device, None)
        else:
            self._endpoint[device] = mode

    # -- the model -----------------------------------------------------------------
    def step(self, t: float) -> None:
        """Advance to time ``t`` (seconds since the epoch) and integrate energy, all at once.

        A chunked step still in progress (:meth:`step_iter`) is finished first."""
        for _ in self.step_iter(t):
            pass

    def step_iter(self, t: float, chunk: int = STEP_CHUNK) -> Iterator[None]:
        """The step to ``t`` as an iterator: it yields between chunks of ``chunk`` GPU nodes (phase 1),
        of ``chunk`` loads' feeds (phase 2) and after phase 2.

        Why: on the full site (43,200 nodes, 345,600 GPUs) one step is ≈1 s of CPU, and a twin
        that steps without yielding answers none of its endpoints meanwhile: its refresh loop
        awaits between chunks instead.  The results equal :meth:`step`'s exactly.  A step still in
        progress is finished first (here, and by :meth:`step`, :meth:`inject` and :meth:`clear`),
        so no node is integrated twice or over a stale dt; the iterator of a step that someone
        else finished just stops."""
        self.finish_step()
        self._stepping = steps = self._steps(t, max(1, chunk))
        return steps

    def finish_step(self) -> None:
        """Run a chunked step still in progress to its end (nothing when none is)."""
        steps, self._stepping = self._stepping, None
        if steps is not None:
            for _ in steps:
                pass

    @property
    def stepping(self) -> bool:
        """A chunked step is in progress: some devices hold this step's values, others the last step's."""
        return self._stepping is not None

    def _steps(self, t: float, chunk: int) -> Iterator[None]:
        dt = 0.0 if self._last is None else max(0.0, t - self._last)
        self._last = self.t = t
        st = self.state
        # 0. CDU loops: pumps, flow and supply temperature from the faults and the last heat
        for cdu_id, c in self.cooling.items():
            cdu = self.devices[cdu_id]
            chillers = cdu.cooler_ids()
            warm = self._chiller_warm.get(chillers[0], 0.0) if chillers else 0.0
            cool.step_cdu(c, {f: p for (f, d), p in self.faults.items() if d == cdu_id}, cool.PRIMARY_SUPPLY_C + warm, dt)
        # 1. GPU nodes, a chunk at a time.  Each loop's heat is summed aside and set once every
        # node has reported, so that an endpoint served between two chunks reads no partial sum.
        nodes = self._kind("gpu_node")
        loop_heat: dict[int, float] = {}  # id(LoopState) -> W
        air_w = 0.0  # the nodes' heat into the room
        for start in range(0, len(nodes), chunk):
            if start:
                yield
            air_w = self._step_nodes(nodes[start:start + chunk], t, dt, loop_heat, air_w)
        for c in self.cooling.values():
            for lp in c.loops.values():
                lp.heat_w = loop_heat.get(id(lp), 0.0)
        yield
        # other loads in racks (BMC/servers without their own model) draw a little
        for dev in self._kind("server", "switch"):
            st[dev.id].power_w = 0.0  # BMC: its node is modelled as the gpu_node
        # 2. PDUs: split node load over live feeds, a chunk of loads at a time; the outlets are
        # summed aside and set at the end, so that a PDU served meanwhile reads no partial sum
        pdus = self._kind("pdu", "rpp", "busway")
        outlets: dict[str, dict[int, float]] = {dev.id: {} for dev in pdus}
        faults = self.faults
        plan = self._feed_plan()
        for start in range(0, len(plan), chunk):
            if start:
                yield
            for dev_id, feeds in plan[start:start + chunk]:
                live = [(d, o) for d, o in feeds if ("pdu_breaker_trip", d) not in faults]
                if not live:
                    continue
                share = st[dev_id].power_w / len(live)
                for d, outlet in live:
                    ps = outlets.get(d)
                    if ps is None:  # a load fed straight from upstream of another kind: its own outlets
                        ps = st[d].outlets
                    ps[outlet] = ps.get(outlet, 0.0) + share
        for dev in pdus:
            ps = st[dev.id]
            ps.outlets = outlets[dev.id]
            ps.power_w = ps.input_w = sum(ps.outlets.values())
            phases = [0.0, 0.0, 0.0]
            for outlet, w in ps.outlets.items():
                phases[(outlet - 1) % 3] += w
                ps.outlet_energy[outlet] = ps.outlet_energy.get(outlet, 0.0) + w * dt / 3.6e6
            ps.values["phase_w"] = phases
        yield
        # 3. UPS
        for dev in self._kind("ups"):
            us = st[dev.id]
            out = sum(st[c].power_w for c in self.graph.children(dev.id) if c in st)
            rated = (dev.rated_kw or 1000.0) * 1000.0
            load = out / rated
            eff = 0.975 - 0.05 * (1.0 - min(1.0, load)) ** 4
            us.power_w = out
            us.values["load_pct"] = 100.0 * load
            us.values["efficiency"] = eff
            if self.has("ups_on_battery", dev.id):
                us.input_w = 0.0
                charge = us.values.get("charge_pct", 100.0)
                runtime_s = 600.0  # at this load, from full charge
                us.values["charge_pct"] = max(0.0, charge - 100.0 * dt / runtime_s)
                us.values["on_battery_s"] = us.values.get("on_battery_s", 0.0) + dt
            else:
                us.input_w = out / eff
                us.values["charge_pct"] = min(100.0, us.values.get("charge_pct", 100.0) + 100.0 * dt / 3600.0)
                us.values["on_battery_s"] = 0.0
            us.values["runtime_s"] = 600.0 * us.values["charge_pct"] / 100.0 * (0.5 / max(load, 0.05))
        # 4. cooling
        t_out = outside_temp_c(t)
        ups_loss = sum(max(0.0, st[d.id].input_w - st[d.id].power_w) for d in self._kind("ups"))
        for dev in self._kind("cdu"):
            cs = st[dev.id]
            c = self.cooling[dev.id]
            cool.finish_cdu(c)
            loops = list(c.loops.values())
            first = loops[0]
            lead = next((p for p in c.pumps if p.state == "running"), c.pumps[0])
            # flat values: the unit's totals and its first loop (Modbus maps, /truth)
            cs.values.update(heat_w=c.heat_w, flow_lpm=sum(l.flow_lpm for l in loops), primary_flow_lpm=c.primary_flow_lpm,
                             secondary_supply_c=first.supply_c, secondary_return_c=first.return_c,
                             primary_supply_c=c.primary_supply_c, primary_return_c=c.primary_return_c,
                             dp_kpa=first.dp_kpa, pump_rpm=lead.rpm, reservoir_pct=c.reservoir_pct,
                             filter_dp_kpa=c.filter_dp_kpa, unit_state=c.unit_state,
                             leak=c.leaking is not None)
            cs.power_w = cs.input_w = cool.pump_power_w(c)
        for dev in self._kind("crah", "crac"):
            hs = st[dev.id]
            heat = air_w / max(1, len(self._kind("crah", "crac"))) + ups_loss / max(1, len(self._kind("crah", "crac")))
            rated = (dev.rated_kw or 60.0) * 1000.0
            frac = min(1.0, heat / rated)
            hs.values.update(heat_w=heat, fan_pct=30.0 + 70.0 * frac, supply_air_c=22.0, return_air_c=22.0 + 12.0 * frac)
            hs.power_w = hs.input_w = 400.0 + 2600.0 * frac ** 3
        chiller_load: dict[str, float] = {}
        for dev in self._kind("cdu", "crah", "crac"):
            for ch in dev.cooler_ids():
                chiller_load[ch] = chiller_load.get(ch, 0.0) + st[dev.id].values.get("heat_w", 0.0) + st[dev.id].power_w
        for dev in self._kind("chiller"):
            chs = st[dev.id]
            load = chiller_load.get(dev.id, 0.0)
            cop = max(2.5, 7.0 - 0.12 * (t_out - 10.0))
            tripped = self.has("chiller_trip", dev.id)
            warm = self._chiller_warm.get(dev.id, 0.0)
            warm = min(15.0, warm + 0.05 * dt) if tripped else max(0.0, warm - 0.1 * dt)
            self._chiller_warm[dev.id] = warm
            chs.power_w = chs.input_w = 0.0 if tripped else load / cop + 0.01 * load + 500.0  # compressors + fans/controls
            chs.values.update(cooling_w=0.0 if tripped else load, cop=0.0 if tripped else cop, running=not tripped,
                              supply_c=7.0 + warm, return_c=7.0 + warm + 5.0 * min(1.0, load / ((dev.rated_kw or 1000.0) * 1000.0)),
                              cw_supply_c=t_out + 4.0, cw_return_c=t_out + 9.0, outside_c=t_out)
        # 5. the upstream chain: each device draws what its children draw, plus its own loss
        # (GPU nodes and PDUs draw what they report: set beside their power in phases 1 and 2)
        for dev in self._kind("transformer", "switchgear", "ats"):
            s = st[dev.id]
            child_in = sum(st[c].input_w for c in self.graph.children(dev.id) if c in st)
            s.input_w = child_in * 1.008 + 0.001 * (dev.rated_kva or 1000) * 1000  # copper + iron losses
            s.input_w += 0.02 * child_in  # lighting, offices, misc on the same board
            s.power_w = s.input_w
        lat, lon = self.site.site.latitude or 35.57, self.site.site.longitude or -5.37
        for dev in self._kind("pv_inverter"):
            elev = sun_elevation_deg(t, lat, lon)
            st[dev.id].power_w = (dev.rated_kw or 0.0) * 1000.0 * 0.8 * max(0.0, math.sin(math.radians(elev)))
        for dev in self._kind("wind_turbine"):
            slow = math.sin(t / 1800.0 + 6.0 * _unit(self.seed, dev.id)) * 0.25 + math.sin(t / 347.0) * 0.05
            st[dev.id].power_w = (dev.rated_kw or 0.0) * 1000.0 * min(1.0, max(0.0, 0.35 + slow))
        for dev in self._kind("utility", "generator"):
            s = st[dev.id]
            s.power_w = s.input_w = sum(st[c].input_w for c in self.graph.children(dev.id) if c in st)
        # 6. meters read the device they measure (UPS meters: the output; others: the input)
        for dev in self._kind("meter"):
            ms = st[dev.id]
            target = dev.measures
            if target and target in st:
                tdev = self.devices[target]
                ms.power_w = st[target].power_w if tdev.kind in ("ups", "pv_inverter", "wind_turbine") else st[target].input_w
            elif dev.meter is not None and dev.meter.role == "water":
                evaporated_lps = sum(st[c.id].values.get("cooling_w", 0.0) for c in self._kind("chiller")) / 2.4e6 * 0.3
                ms.values["flow_lpm"] = evaporated_lps * 60.0
                ms.values["volume_l"] = ms.values.get("volume_l", 0.0) + evaporated_lps * dt
        # 7. energy counters
        for s in st.values():
            s.energy_kwh += s.power_w * dt / 3.6e6
            s.input_energy_kwh += s.input_w * dt / 3.6e6
        self._stepping = None  # done (finish_step, which may have run it to here, has already let go of it)

    def _step_nodes(self, nodes: list[Device], t: float, dt: float, loop_heat: dict[int, float], air_w: float) -> float:
        """Phase 1 of a step for ``nodes``: demand from the job, temperature and throttling from the
        node's loop; adds each node's liquid heat to ``loop_heat`` and returns ``air_w`` plus its air heat."""
        st = self.state
        floor_w = 0.35 * GPU_MAX_W  # lowest clocks at full utilisation
        span_w = GPU_MAX_W - GPU_IDLE_W
        t_max = cool.GPU_MAX_OPERATING_C
        for dev in nodes:
            s = st[dev.id]
            base = self._node_util(dev.id, t)
            loop = self.node_loop.get(dev.id)
            supply, r = (loop.supply_c, loop.r_k_per_w) if loop is not None else (cool.SUPPLY_SETPOINT_C, cool.R0_K_PER_W)
            overtemp = self.has("gpu_overtemp", dev.id)
            storm = self.has("xid_storm", dev.id)
            total = 0.0
            work = gpu_labels(self.seed, dev.id, dev.rack or "", len(s.gpus), t, self.namespaces)
            busy = sum(1 for w in work if w) / max(1, len(s.gpus))
            for i, g in enumerate(s.gpus):
                g.labels = work[i]
                # an idle GPU (no job scheduled on it) draws its idle power
                g.util = util = min(1.0, max(0.0, base + 0.04 * (_unit(self.seed, dev.id, i) - 0.5))) if work[i] else 0.0
                demand = GPU_IDLE_W + util * span_w
                temp = supply + r * demand
                if temp <= t_max:  # the common case, inline: the full site has ≈344,000 GPUs
                    power, reasons = demand, (cool.SW_POWER_CAP if util > 0.97 else 0)
                    clock = 1980.0 if util > 0.1 else 345.0
                else:
                    power, temp, reasons = cool.gpu_thermal(supply, r, demand, floor_w)
                    clock = 1980.0 * (power / demand) ** (1.0 / 3.0)
                    if reasons & cool.HW_THERMAL:
                        clock = min(clock, 990.0)  # the hardware slowdown halves the clocks
                if overtemp and i == 0:
                    # a cold plate that lost contact: its sensor reads 32 °C hotter, and never below the
                    # hardware slowdown, since without the plate even an idle GPU (no job on it: 36 °C
                    # on the loop) heats until it throttles
                    temp = max(temp + 32.0, cool.GPU_SLOWDOWN_C + 1.0)
                    reasons |= cool.SW_THERMAL | cool.HW_THERMAL
                g.power_w, g.temp_c, g.memory_temp_c = power, temp, temp + 6.0
                g.clock_reasons, g.sm_clock_mhz = reasons, clock
                g.energy_mj += power * dt * 1000.0
                if storm:
                    g.xid += 1 + int(dt)
                else:
                    g.xid = 0  # DCGM's XID gauge reads 0 again once no new XID arrives
                total += power
            node_dc = total + HOST_W * (0.55 + 0.45 * base * busy)
            s.power_w = s.input_w = node_dc / PSU_EFF
            s.values["util_pct"] = 100.0 * base * busy   # the GPUs the schedule gives a job
            if loop is not None:  # a node on no loop: its liquid share goes nowhere the model follows
                loop_heat[id(loop)] = loop_heat.get(id(loop), 0.0) + s.power_w * cool.LIQUID_FRACTION
            air_w += s.power_w * (1.0 - cool.LIQUID_FRACTION)
        return air_w

    def _build_loops(self) -> None:
        """Each CDU's loops from the inventory, and which loop cools each GPU node."""
        for dev in self.devices.values():
            if dev.kind != "cdu":
                continue
            declared = dev.loops
            rated = (dev.rated_kw or 1000.0) * 1000.0
            specs = []
            for lp in declared:  # a loop without its own rating gets an even share of the unit's
                lr = lp.rated_kw * 1000.0 if lp.rated_kw else rated / len(declared)
                specs.append(cool.LoopSpec(lp.id, lr, lp.design_flow_lpm or cool.design_flow_lpm(lr),
                                           lp.design_supply_c or cool.SUPPLY_SETPOINT_C))
            if not specs:  # no loops: declared: the one implicit loop
                specs = [cool.LoopSpec(IMPLICIT_LOOP, rated, cool.design_flow_lpm(rated))]
            self.cooling[dev.id] = self.state[dev.id].cooling = cool.CduCooling(loops={sp.id: cool.LoopState(sp) for sp in specs},
                                                   pumps=[cool.Pump("1"), cool.Pump("2")], detectors={cool.UNIT_DETECTOR: "dry"})
        for dev in self.devices.values():
            if dev.kind != "gpu_node":
                continue
            for ref in dev.cooling():  # its own cooled_by, or its rack's
                key = resolve_loop(self.site, ref)
                if key is None:
                    continue
                c = self.cooling[key[0]]
                self.node_loop[dev.id] = c.loops[key[1]]
                if dev.rack and dev.rack not in c.detectors:
                    c.detectors[dev.rack] = "dry"  # the leak rope under each rack on the unit's loops
                break

    def _feed_plan(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """Per rack load (GPU node, server, switch): the (PDU, outlet) feeds its power is split over.

        Built once: the inventory never changes, and on the full site resolving 43,000 nodes' feeds
        every step cost more than their share of the step's arithmetic."""
        if self._feeds is None:
            plan = []
            for dev in self._kind("gpu_node", "server", "switch"):
                feeds = [(f.device, f.outlet) for f in dev.fed_by
                         if self.devices.get(f.device) and self.devices[f.device].kind in ("pdu", "rpp", "busway")]
                if not feeds:
                    feeds = [(p, None) for p in self.graph.upstream(dev.id)]
                plan.append((dev.id, [(d, int(o) if isinstance(o, int) or (isinstance(o, str) and o.isdigit()) else 1)
                                      for d, o in feeds]))
            self._feeds = plan
        return self._feeds

    def _kind(self, *kinds: str) -> list[Device]:
        # cached: step() asks a dozen times per second and the inventory never changes
        found = self._by_kinds.get(kinds)
        if found is None:
            found = self._by_kinds[kinds] = [d for d in self.devices.values() if d.kind in kinds]
        return found

    def _node_util(self, node_id: str, t: float) -> float:
        """Training jobs: a steady phase with slow variation and a 30 s checkpoint dip every 10 min.

        Which GPUs run a job at all is the schedule's (:mod:`simulator.jobs`)."""
        u = _unit(self.seed, node_id, "job")
        phase = 600.0 * _unit(self.seed, node_id, "phase")
        in_checkpoint = (t + phase) % 600.0 < 30.0
        if in_checkpoint:
            return 0.25
        return min(1.0, 0.78 + 0.15 * u + 0.05 * math.sin(2 * math.pi * (t + phase) / 300.0))

    # -- what an auditor would compute from the truth ---------------------------------
    def facility_w(self) -> float:
        return sum(self.state[d.id].power_w for d in self._kind("meter") if d.meter and d.meter.role == "boundary")

    def it_w(self) -> float:
        return sum(self.state[d.id].power_w for d in self._kind("ups"))
