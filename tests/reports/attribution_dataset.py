"""A small site with known power everywhere, as the collectors would have written it.

Three GPU nodes (two GPUs each, two workloads per node), outlets on two PDUs
(2N), one UPS with its output meter, a grid boundary meter whose power is a
fixed multiple of the UPS output each month (so each month's PUE is known).
Every power is constant over a stretch, so every energy is power x hours and
the tests compute the expected figures by hand from the constants below, never
through the report code.  Hand-written on purpose: data with a known truth.
"""
from __future__ import annotations

import calendar

H = 3600
STEP = 600                      # readings every 10 min


def epoch(y: int, m: int, d: int, hh: int = 0) -> int:
    return calendar.timegm((y, m, d, hh, 0, 0))


START = epoch(2026, 2, 28)
END = epoch(2026, 3, 2)
T_MID = epoch(2026, 2, 28, 12)      # n1's second GPU: job ft-b until here, idle after
MARCH = epoch(2026, 3, 1)
PUE = {"2026-02": 1.25, "2026-03": 1.4}
EMISSION = {"2026-02": 0.5, "2026-03": 0.7}
PDU_OWN_W = {"pdu-a": 50.0, "pdu-b": 30.0}     # each PDU's draw beyond its wired outlets
UPS_OWN_W = 70.0                                 # UPS output not going to its PDUs
#: DCGM counter of n1 GPU 0 restarts from zero just after this reading; outlet pdu-b:2 likewise
GPU_RESET_AT = epoch(2026, 3, 1, 6) + STEP
OUTLET_RESET_AT = epoch(2026, 2, 28, 20) + STEP

SITE_YAML = """
site: {id: hand, name: Hand-computed site, grid_emission_kgco2e_per_kwh: 0.6}
tenants:
  - {id: atlas, name: Atlas AI, namespaces: [atlas-train, atlas-infer]}
  - {id: noor, name: Noor Labs, namespaces: [noor-research]}
devices:
  - {id: grid, kind: utility}
  - {id: tx, kind: transformer, fed_by: [grid]}
  - {id: meter-grid, kind: meter, measures: tx, meter: {role: boundary, source: grid}}
halls:
  - id: h1
    devices:
      - {id: ups-1, kind: ups, rated_kw: 100, fed_by: [tx]}
      - {id: meter-ups-1, kind: meter, measures: ups-1, meter: {role: it, category: 1}}
    rows:
      - id: h1-r1
        racks:
          - id: r1
            redundancy: 2N
            devices:
              - {id: pdu-a, kind: pdu, fed_by: [ups-1]}
              - {id: pdu-b, kind: pdu, fed_by: [ups-1]}
              - {id: n1, kind: gpu_node, gpus: 2, fed_by: ["pdu-a:1", "pdu-b:1"]}
              - {id: n2, kind: gpu_node, gpus: 2, fed_by: ["pdu-a:2", "pdu-b:2"]}
          - id: r2
            devices:
              - {id: n3, kind: gpu_node, gpus: 2, fed_by: ["pdu-a:3", "pdu-b:3"]}
"""

# (node, gpu) -> [(from_s, to_s, watts, tags)]: what ran, and the GPU's power meanwhile
_LLM0 = {"namespace": "atlas-train", "pod": "llm-a-0", "job": "llm-a"}
_LLM1 = {"namespace": "atlas-train", "pod": "llm-a-1", "job": "llm-a"}
_FTB0 = {"namespace": "noor-research", "pod": "ft-b-0", "job": "ft-b"}
_FTB1 = {"namespace": "noor-research", "pod": "ft-b-1", "job": "ft-b"}
_SERVE = {"namespace": "atlas-infer", "pod": "serve-c-7f9", "job": ""}
_HPC = {"namespace": "", "pod": "", "job": "x"}
T0, T1 = START - H, END + H        # readings span an hour either side: the counters' edge anchors
GPUS = {
    ("n1", "0"): [(T0, T1, 400.0, _LLM0)],
    ("n1", "1"): [(T0, T_MID, 600.0, _FTB0), (T_MID, T1, 100.0, {})],
    ("n2", "0"): [(T0, T1, 500.0, _LLM1)],
    ("n2", "1"): [(T0, T1, 300.0, _SERVE)],
    ("n3", "0"): [(T0, T1, 450.0, _HPC)],
    ("n3", "1"): [(T0, T1, 450.0, _FTB1)],
}
HOST_W = {"n1": 300.0, "n2": 200.0, "n3": 100.0}    # node draw beyond its GPUs
POWER_ONLY = {"n3"}                                  # its GPUs report power_w, no energy counter


def gpu_w(node: str, gpu: str, t: float) -> tuple[float, dict]:
    for a, b, w, tags in GPUS[(node, gpu)]:
        if a <= t < b:
            return w, tags
    raise ValueError(t)


def node_w(node: str, t: float) -> float:
    return HOST_W[node] + sum(gpu_w(node, g, t)[0] for g in ("0", "1"))


def ups_w(t: float) -> float:
    return sum(node_w(n, t) for n in HOST_W) + sum(PDU_OWN_W.values()) + UPS_OWN_W


def _tags(d: dict) -> str:
    return "".join(f",{k}={v}" for k, v in sorted(d.items()) if v)


def lines() -> list[str]:
    """Line protocol (seconds) of every reading: counters integrate the piecewise-constant powers exactly."""
    out: list[str] = []
    times = list(range(T0, T1 + 1, STEP))
    energy: dict[str, float] = {}

    def counter(key: str, watts_before: float, base: float = 1000.0) -> float:
        energy[key] = energy.get(key, base) + watts_before * STEP / 3.6e6
        return energy[key]

    for i, t in enumerate(times):
        mid = t - STEP / 2 if i else t   # the power over the step that ends at t
        first = i == 0
        for (node, gpu), _ in sorted(GPUS.items()):
            # a reading carries the workload that ran over the step ending at it
            w_prev, tags = gpu_w(node, gpu, t if first else mid)
            w_now = w_prev
            series = f"gpu,site=hand,device={node},gpu={gpu}{_tags(tags)}"
            if node in POWER_ONLY:
                out.append(f"{series} power_w={w_now} {t}")
                continue
            key = f"{node}/{gpu}"
            e = counter(key, 0.0 if first else w_prev, 50.0)
            if key == "n1/0" and t == GPU_RESET_AT:
                e = energy[key] = w_prev * STEP / 3.6e6
            out.append(f"{series} energy_kwh={e!r},power_w={w_now} {t}")
        for node in sorted(HOST_W):
            k = int(node[1])
            for pdu in ("pdu-a", "pdu-b"):
                key = f"{pdu}:{k}"
                e = counter(key, 0.0 if first else node_w(node, mid) / 2, 200.0)
                if key == "pdu-b:2" and t == OUTLET_RESET_AT:
                    e = energy[key] = node_w(node, mid) / 2 * STEP / 3.6e6
                out.append(f"pdu,site=hand,device={pdu},outlet={k},feeds={node} energy_kwh={e!r} {t}")
        for pdu in ("pdu-a", "pdu-b"):
            w = sum(node_w(n, mid) / 2 for n in HOST_W) + PDU_OWN_W[pdu]
            e = counter(pdu, 0.0 if first else w, 5000.0)
            out.append(f"pdu,site=hand,device={pdu},pdu=1 energy_kwh={e!r} {t}")
            out.append(f"pdu,site=hand,device={pdu},pdu=1,phase=L1 energy_kwh=1.0 {t}")   # not a total: ignored
        e = counter("ups", 0.0 if first else ups_w(mid), 9000.0)
        out.append(f"meter,site=hand,device=meter-ups-1 energy_kwh={e!r} {t}")
        factor = PUE["2026-02"] if mid < MARCH else PUE["2026-03"]
        e = counter("grid", 0.0 if first else ups_w(mid) * factor, 20000.0)
        out.append(f"meter,site=hand,device=meter-grid energy_kwh={e!r} {t}")
    return out
