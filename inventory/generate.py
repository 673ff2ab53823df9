"""Generate site inventories of any size in the shape of the Tétouan campus.

Why a generator: the full 386 MW site (≈2,400 GPU racks, ≈43,000 GPU nodes,
≈5,800 PDUs and UPS modules, the cooling plant and the meters: ≈50,000
endpoints) cannot be written by hand, yet sharding, the rule engine's index,
derived metrics and the scale bench all need it.  The same function makes the
small slices the twin serves on one machine.

Two address plans:
- ``production``: RFC 1918 addresses per hall/row/rack on standard ports, the
  shape a real file has (never polled from tests);
- ``loopback``: every endpoint on 127.0.0.1 with its own port (SNMP agents on
  UDP ports from ``snmp_base``, HTTP endpoints on TCP ports from ``http_base``,
  one Modbus gateway per hall), for the twin and the scale bench.  Loopback has
  ≈64k ports per protocol, so loopback slices are capped well below that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["SiteShape", "FULL_SITE", "generate_site", "dump_site", "iter_devices"]


@dataclass(frozen=True)
class SiteShape:
    halls: int = 24
    rows_per_hall: int = 5
    racks_per_row: int = 20
    nodes_per_rack: int = 18          # 8-GPU nodes; ≈7 kW average each at the site's mix
    ups_per_hall: int = 40            # 2N: half on side a, half on side b
    cdus_per_hall: int = 8
    crahs_per_hall: int = 4
    chillers_per_hall: int = 2
    bmc_per_rack: int = 1             # Redfish BMCs polled beside DCGM (one per rack in this plan)
    address_plan: str = "production"  # or "loopback"
    snmp_base: int = 20000
    http_base: int = 30000
    modbus_base: int = 15100


#: the 386 MW campus: 24 halls × 100 racks × 18 nodes = 43,200 GPU nodes
FULL_SITE = SiteShape()


def _plan(shape: SiteShape):
    """Address allocators for the chosen plan."""
    counters = {"snmp": shape.snmp_base, "http": shape.http_base}

    def endpoint(kind: str, hall: int, row: int = 0, rack: int = 0, slot: int = 0) -> dict[str, Any]:
        if shape.address_plan == "loopback":
            proto_space = "snmp" if kind == "snmp" else "http"
            counters[proto_space] += 1
            if counters[proto_space] > 65535:
                raise ValueError("loopback plan ran out of ports: make the slice smaller")
            return {"host": "127.0.0.1", "port": counters[proto_space]}
        third = row if kind != "snmp" else 200 + row
        return {"host": f"10.{hall}.{third}.{(rack * 10 + slot) % 250 + 1}"}

    def gateway(hall: int) -> dict[str, Any]:
        if shape.address_plan == "loopback":
            return {"host": "127.0.0.1", "port": shape.modbus_base + hall}
        return {"host": f"10.{hall}.250.10", "port": 502}

    return endpoint, gateway


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
        "defaults": {"interval_s": 10, "timeout_s": 2, "retries": 1,
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
                                 "protocol": "snmp", **endpoint("snmp", h, 0, 0, u), "fed_by": [side_tx[s]]})
        for s in "ab":
            for uid in ups_ids[s]:
                hall_devices.append({"id": f"{uid}-meter", "kind": "meter", "profile": "schneider_iem3000",
                                     "measures": uid, "meter": {"role": "it", "category": 1}, **modbus(h)})
        cdus = []
        for c in range(1, shape.cdus_per_hall + 1):
            cid = f"{hid}-cdu-{c}"
            cdus.append(cid)
            hall_devices.append({"id": cid, "kind": "cdu", "rated_kw": 2500, "profile": "generic_cdu",
                                 "fed_by": [side_tx["ab"[c % 2]]], "cooled_by": [chillers[c % len(chillers)]], **modbus(h)})
        for c in range(1, shape.crahs_per_hall + 1):
            hall_devices.append({"id": f"{hid}-crah-{c}", "kind": "crah", "rated_kw": 120, "profile": "apc_inrow_rc_gen2",
                                 "fed_by": [side_tx["ab"[c % 2]]], "cooled_by": [chillers[c % len(chillers)]], **modbus(h)})
        rows = []
        rack_no = 0
        for r in range(1, shape.rows_per_hall + 1):
            racks = []
            for k in range(1, shape.racks_per_row + 1):
                rid = f"{hid}-r{r:02d}-k{k:02d}"
                ups_a = ups_ids["a"][rack_no % len(ups_ids["a"])]
                ups_b = ups_ids["b"][rack_no % len(ups_ids["b"])]
                cdu = cdus[rack_no % len(cdus)]
                rack_no += 1
                rdevs: list[dict[str, Any]] = []
                for s, ups in (("a", ups_a), ("b", ups_b)):
                    rdevs.append({"id": f"{rid}-pdu-{s}", "kind": "pdu", "vendor": "apc", "model": "AP8886",
                                  "rated_kw": 17.3 * 8, "rated_a": 200, "protocol": "snmp",
                                  **endpoint("snmp", h, r, k, 1 if s == "a" else 2), "fed_by": [ups]})
                for n in range(1, shape.nodes_per_rack + 1):
                    rdevs.append({"id": f"{rid}-n{n:02d}", "kind": "gpu_node", "gpus": 8, "gpu_model": "H100 SXM5 80GB",
                                  "rated_kw": 10.2, "protocol": "dcgm", **endpoint("http", h, r, k, 10 + n),
                                  "fed_by": [f"{rid}-pdu-a:{n}", f"{rid}-pdu-b:{n}"], "cooled_by": [cdu]})
                for b in range(1, shape.bmc_per_rack + 1):
                    rdevs.append({"id": f"{rid}-n{b:02d}-bmc", "kind": "server", "protocol": "redfish",
                                  **endpoint("http", h, r, k, 100 + b), "labels": {"node": f"{rid}-n{b:02d}"},
                                  "fed_by": [f"{rid}-pdu-a:{b}", f"{rid}-pdu-b:{b}"]})
                racks.append({"id": rid, "rated_kw": 200, "redundancy": "2N", "devices": rdevs})
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
    yield from site["devices"]
    for hall in site["halls"]:
        yield from hall["devices"]
        for row in hall["rows"]:
            for rack in row["racks"]:
                yield from rack["devices"]
