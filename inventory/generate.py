"""Generate site inventories of any size in the shape of the Tétouan campus.

Why a generator: the full 386 MW site (≈2,400 GPU racks, ≈43,000 GPU nodes,
≈5,800 PDUs and UPS modules, the cooling plant and the meters: ≈50,000
endpoints) cannot be written by hand, yet sharding, the rule engine's index,
derived metrics and the scale bench all need it.  The same function makes the
small slices the twin serves on one machine.

Two address plans with one layout (docs/inventory.md, "Addressing plan"):
every endpoint gets its own address, so no two devices share a host and port
(``dcim inventory check`` refuses a file where they do).  Hall ``H`` owns
``A.H.0.0/16``; rack ``i`` of the hall (``i = (row-1) × racks_per_row +
(rack-1)``) owns ``A.H.i.0/24`` with its PDUs at ``.1``/``.2``, GPU node ``n`` at
``.(10+n)`` and BMC ``b`` at ``.(100+b)``; the hall's UPSes sit at
``A.H.240.(u+1)`` and its Modbus gateway (meters, cooling plant) at
``A.H.250.10``; the site-level meters' gateway is ``A.0.250.10``.

- ``production``: ``A`` = 10 on the protocols' standard ports (161, 502, 9400, 80),
  the shape a real file has (never polled from tests);
- ``loopback``: ``A`` = 127 (all of 127.0.0.0/8 is this machine) on unprivileged
  ports (``snmp_port``, ``modbus_port``, ``dcgm_port``, ``redfish_port``), for the
  twin and the scale bench: the whole site fits, one address per device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from inventory.walk import walk_devices

__all__ = ["SiteShape", "FULL_SITE", "generate_site", "dump_site", "iter_devices"]


#: the SNMP profiles of the models the plan places (collectors/snmp/profiles/): pinned, not ``auto``, since
#: the plan knows its models; detection costs an agent three to five more round trips on its first poll,
#: and on a loaded full-site shard, where those often timed out, it was redone poll after poll (7 % of the
#: shard's CPU, py-spy).  An AP8886 (Rack PDU 2G) answers PowerNet-MIB rPDU2; a 93PM's Network-M2 card
#: answers RFC 1628 UPS-MIB.
_PDU_PROFILE = "apc-rpdu2"
_UPS_PROFILE = "ups-mib"
#: the CDU register map for a number of secondary loops (collectors/modbus/profiles/template_cdu*.yaml):
#: every loop the inventory declares is one the collector reads
_CDU_TEMPLATE = {1: "template_cdu", 2: "template_cdu_2loop"}


@dataclass(frozen=True)
class SiteShape:
    halls: int = 24
    rows_per_hall: int = 5
    racks_per_row: int = 20
    nodes_per_rack: int = 18          # 8-GPU nodes; ≈7 kW average each at the site's mix
    ups_per_hall: int = 40            # 2N: half on side a, half on side b
    cdus_per_hall: int = 8
    loops_per_cdu: int = 2            # secondary loops per CDU; racks take loops in turn
    crahs_per_hall: int = 4
    chillers_per_hall: int = 2
    bmc_per_rack: int = 1             # Redfish BMCs polled beside DCGM (one per rack in this plan)
    address_plan: str = "production"  # or "loopback"
    interval_s: float = 10.0          # defaults.interval_s: the site polls every 10 s
    #: loopback plan's ports (the production plan uses the protocols' standard ports)
    snmp_port: int = 16100
    modbus_port: int = 15020
    dcgm_port: int = 19400
    redfish_port: int = 18080

    def __post_init__(self) -> None:
        if self.loops_per_cdu not in _CDU_TEMPLATE:
            raise ValueError(f"loops_per_cdu must be one of {sorted(_CDU_TEMPLATE)} "
                             "(the Modbus CDU templates that map that many loops)")


#: the 386 MW campus: 24 halls × 100 racks × 18 nodes = 43,200 GPU nodes
FULL_SITE = SiteShape()


#: fourth octet of each endpoint kind inside its rack's /24 (see the module doc)
_PDU_SLOT = {"a": 1, "b": 2}
_NODE_SLOT0, _BMC_SLOT0 = 10, 100
_UPS_NET, _GATEWAY_NET, _GATEWAY_HOST = 240, 250, 10


def _check_fits(shape: SiteShape) -> None:
    """The plan's limits, as a clear error instead of two devices on one address."""
    limits = [
        (shape.halls <= 254, f"halls={shape.halls}: the address plan has room for 254 halls"),
        (shape.rows_per_hall * shape.racks_per_row <= _UPS_NET,
         f"rows×racks={shape.rows_per_hall * shape.racks_per_row} per hall: the address plan has room for {_UPS_NET}"),
        (shape.nodes_per_rack < _BMC_SLOT0 - _NODE_SLOT0,
         f"nodes={shape.nodes_per_rack} per rack: the address plan has room for {_BMC_SLOT0 - _NODE_SLOT0 - 1}"),
        (shape.bmc_per_rack <= 154, f"bmcs={shape.bmc_per_rack} per rack: the address plan has room for 154"),
        (shape.ups_per_hall <= 254, f"ups={shape.ups_per_hall} per hall: the address plan has room for 254"),
    ]
    for ok, message in limits:
        if not ok:
            raise ValueError(message)


def _plan(shape: SiteShape):
    """Address allocators for the chosen plan: one address per endpoint (see the module doc)."""
    if shape.address_plan not in ("production", "loopback"):
        raise ValueError(f"address_plan {shape.address_plan!r}: use production or loopback")
    _check_fits(shape)
    loopback = shape.address_plan == "loopback"
    first = 127 if loopback else 10
    ports = ({"snmp": shape.snmp_port, "dcgm": shape.dcgm_port, "redfish": shape.redfish_port} if loopback else {})

    def endpoint(protocol: str, hall: int, net: int, host: int) -> dict[str, Any]:
        out: dict[str, Any] = {"host": f"{first}.{hall}.{net}.{host}"}
        if protocol in ports:
            out["port"] = ports[protocol]
        return out

    def gateway(hall: int) -> dict[str, Any]:
        return {"host": f"{first}.{hall}.{_GATEWAY_NET}.{_GATEWAY_HOST}",
                "port": shape.modbus_port if loopback else 502}

    return endpoint, gateway


#: a GPU rack's rating in this plan (18 nodes × 10.2 kW and the rack's switches)
RACK_KW = 200
#: secondary supply the loops are designed for (ASHRAE W32-class facility water behind it)
DESIGN_SUPPLY_C = 32
#: the loop ΔT at rated heat the design flow is sized for
DESIGN_DELTA_T_K = 10.0


def _loop_rating(shape: SiteShape) -> int:
    """kW a loop is rated for: enough for the most racks any loop gets (racks take CDUs, then loops, in turn)."""
    racks = shape.rows_per_hall * shape.racks_per_row
    per_cdu = -(-racks // max(1, shape.cdus_per_hall))
    return -(-per_cdu // max(1, shape.loops_per_cdu)) * RACK_KW


def _design_flow_lpm(kw: float) -> int:
    """Water flow (L/min) that carries ``kw`` at the design ΔT: Q = P / (ρ·c·ΔT), ρ·c ≈ 4.186 kJ/(L·K)."""
    return round(kw * 60.0 / (4.186 * DESIGN_DELTA_T_K))


def _number(x: float) -> float | int:
    """10.0 is written ``10``, as a person would."""
    return int(x) if float(x).is_integer() else x


def generate_site(shape: SiteShape = FULL_SITE, site_id: str = "tetouan") -> dict[str, Any]:
    """The inventory as plain data (what the YAML file holds)."""
    endpoint, gateway = _plan(shape)
    devices: list[dict[str, Any]] = [
        {"id": "grid-a", "kind": "utility", "name": "ONEE 225 kV feeder A"},
        {"id": "grid-b", "kind": "utility", "name": "ONEE 225 kV feeder B"},
        {"id": "pv-1", "kind": "pv_inverter", "rated_kw": 40000, "name": "On-site PV"},
        {"id": "wind-ppa", "kind": "wind_turbine", "rated_kw": 150000, "name": "Wind PPA share"},
    ]
    site = {
        "site": {"id": site_id, "name": "Iozera Tétouan AI Campus", "timezone": "Africa/Casablanca",
                 "latitude": 35.57, "longitude": -5.37, "grid_emission_kgco2e_per_kwh": 0.61},
        "defaults": {"interval_s": _number(shape.interval_s), "timeout_s": 2, "retries": 1,
                     "credentials": {"snmp": "snmp-ro", "redfish": "bmc"}},
        "credentials": {"snmp-ro": {"version": "2c", "community": {"env": "DCIM_SNMP_COMMUNITY"}},
                        "bmc": {"username": {"env": "DCIM_BMC_USER"}, "password": {"env": "DCIM_BMC_PASSWORD"}}},
        "devices": devices,
        "halls": [],
    }
    unit_of: dict[int, int] = {}

    def modbus(hall: int) -> dict[str, Any]:
        unit_of[hall] = unit_of.get(hall, 0) + 1
        if unit_of[hall] > 247:
            raise ValueError(f"hall {hall}: more than 247 Modbus units on one gateway")
        return {"protocol": "modbus", **gateway(hall), "unit": unit_of[hall]}

    site_gw = 0  # the site-level meters sit on gateway 0
    devices.append({"id": "meter-pv-1", "kind": "meter", "profile": "janitza_umg", "measures": "pv-1",
                    "meter": {"role": "renewable", "source": "solar"}, **modbus(site_gw)})
    devices.append({"id": "meter-wind-ppa", "kind": "meter", "profile": "schneider_iem3000", "measures": "wind-ppa",
                    "meter": {"role": "renewable", "source": "ppa"}, **modbus(site_gw)})
    devices.append({"id": "meter-water-1", "kind": "meter", "profile": "generic_water_meter",
                    "meter": {"role": "water"}, **modbus(site_gw)})
    for h in range(1, shape.halls + 1):
        hid = f"h{h:02d}"
        side_tx = {s: f"{hid}-tx-{s}" for s in "ab"}
        for s, grid in (("a", "grid-a"), ("b", "grid-b")):
            devices.append({"id": side_tx[s], "kind": "transformer", "rated_kva": 16000, "fed_by": [grid]})
            devices.append({"id": f"{hid}-meter-in-{s}", "kind": "meter", "profile": "schneider_iem3000",
                            "measures": side_tx[s], "meter": {"role": "boundary", "source": "grid"}, **modbus(h)})
        hall_devices: list[dict[str, Any]] = []
        chillers = []
        for c in range(1, shape.chillers_per_hall + 1):
            cid = f"{hid}-chiller-{c}"
            chillers.append(cid)
            devices.append({"id": cid, "kind": "chiller", "rated_kw": 8000, "profile": "trane_rthd_pic",
                            "fed_by": [side_tx["ab"[c % 2]]], **modbus(h)})
        ups_ids = {"a": [], "b": []}
        for u in range(shape.ups_per_hall):
            s = "ab"[u % 2]
            uid = f"{hid}-ups-{s}{u // 2 + 1:02d}"
            ups_ids[s].append(uid)
            hall_devices.append({"id": uid, "kind": "ups", "vendor": "eaton", "model": "93PM", "rated_kw": 500,
                                 "protocol": "snmp", "profile": _UPS_PROFILE, **endpoint("snmp", h, _UPS_NET, u + 1),
                                 "fed_by": [side_tx[s]]})
        for s in "ab":
            for uid in ups_ids[s]:
                hall_devices.append({"id": f"{uid}-meter", "kind": "meter", "profile": "schneider_iem3000",
                                     "measures": uid, "meter": {"role": "it", "category": 1}, **modbus(h)})
        cdus = []
        loop_kw = _loop_rating(shape)
        loops = [{"id": str(n), "rated_kw": loop_kw, "design_flow_lpm": _design_flow_lpm(loop_kw),
                  "design_supply_c": DESIGN_SUPPLY_C} for n in range(1, shape.loops_per_cdu + 1)]
        cdu_profile = _CDU_TEMPLATE[shape.loops_per_cdu]
        for c in range(1, shape.cdus_per_hall + 1):
            cid = f"{hid}-cdu-{c}"
            cdus.append(cid)
            hall_devices.append({"id": cid, "kind": "cdu", "rated_kw": loop_kw * shape.loops_per_cdu, "profile": cdu_profile,
                                 "fed_by": [side_tx["ab"[c % 2]]], "cooled_by": [chillers[c % len(chillers)]],
                                 "loops": [dict(lp) for lp in loops], **modbus(h)})
        for c in range(1, shape.crahs_per_hall + 1):
            hall_devices.append({"id": f"{hid}-crah-{c}", "kind": "crah", "rated_kw": 120, "profile": "apc_inrow_rc_gen2",
                                 "fed_by": [side_tx["ab"[c % 2]]], "cooled_by": [chillers[c % len(chillers)]], **modbus(h)})
        rows = []
        rack_no = 0  # also the rack's /24 inside the hall's /16
        for r in range(1, shape.rows_per_hall + 1):
            racks = []
            for k in range(1, shape.racks_per_row + 1):
                rid = f"{hid}-r{r:02d}-k{k:02d}"
                ups_a = ups_ids["a"][rack_no % len(ups_ids["a"])]
                ups_b = ups_ids["b"][rack_no % len(ups_ids["b"])]
                cdu = cdus[rack_no % len(cdus)]
                loop = (rack_no // len(cdus)) % shape.loops_per_cdu + 1
                net = rack_no
                rack_no += 1
                rdevs: list[dict[str, Any]] = []
                for s, ups in (("a", ups_a), ("b", ups_b)):
                    rdevs.append({"id": f"{rid}-pdu-{s}", "kind": "pdu", "vendor": "apc", "model": "AP8886",
                                  "rated_kw": 17.3 * 8, "rated_a": 200, "protocol": "snmp", "profile": _PDU_PROFILE,
                                  **endpoint("snmp", h, net, _PDU_SLOT[s]), "fed_by": [ups]})
                for n in range(1, shape.nodes_per_rack + 1):
                    rdevs.append({"id": f"{rid}-n{n:02d}", "kind": "gpu_node", "gpus": 8, "gpu_model": "H100 SXM5 80GB",
                                  "rated_kw": 10.2, "protocol": "dcgm", **endpoint("dcgm", h, net, _NODE_SLOT0 + n),
                                  "fed_by": [f"{rid}-pdu-a:{n}", f"{rid}-pdu-b:{n}"]})
                for b in range(1, shape.bmc_per_rack + 1):
                    rdevs.append({"id": f"{rid}-n{b:02d}-bmc", "kind": "server", "protocol": "redfish",
                                  **endpoint("redfish", h, net, _BMC_SLOT0 + b), "labels": {"node": f"{rid}-n{b:02d}"},
                                  "fed_by": [f"{rid}-pdu-a:{b}", f"{rid}-pdu-b:{b}"]})
                racks.append({"id": rid, "rated_kw": RACK_KW, "redundancy": "2N", "cooled_by": [f"{cdu}:{loop}"],
                              "devices": rdevs})
            rows.append({"id": f"{hid}-r{r:02d}", "racks": racks})
        site["halls"].append({"id": hid, "rated_kw": 16000, "devices": hall_devices, "rows": rows})
    return site


_GENERATED = ("# Generated by `dcim inventory generate`; edit the shape, not this file.\n"
              "# Secrets are references: export DCIM_SNMP_COMMUNITY, DCIM_BMC_USER, DCIM_BMC_PASSWORD.\n")


def dump_site(site: dict[str, Any], header: str = _GENERATED) -> str:
    """YAML text; flow style per device keeps a 50,000-device file readable by line."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return header + yaml.dump(site, Dumper=dumper, sort_keys=False, width=200, default_flow_style=None, allow_unicode=True)


def iter_devices(site: dict[str, Any]):
    """Every device dict of generated site data, without validating it (fast on the full site)."""
    for _, dev, *_ in walk_devices(site):
        yield dev
