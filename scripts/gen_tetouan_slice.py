import yaml
L = []
def w(s=""): L.append(s)
w("# A small but realistic slice of the Iozera Tétouan AI campus (386 MW site).")
w("# One hall, two rows of liquid-cooled GPU racks, 2N power from two UPS systems,")
w("# a chiller plant with CDUs and a CRAH, energy meters at the utility input, the")
w("# UPS outputs and the renewable supply.  Endpoints are on loopback so the digital")
w("# twin (`dcim simulate`) can serve them; a production file names real addresses.")
w("# Secrets are references only: export DCIM_SNMP_COMMUNITY, DCIM_BMC_USER, DCIM_BMC_PASSWORD.")
w("site:")
w("  id: tetouan")
w("  name: Iozera Tétouan AI Campus")
w("  timezone: Africa/Casablanca")
w("  latitude: 35.57")
w("  longitude: -5.37")
w("  grid_emission_kgco2e_per_kwh: 0.61")
w()
w("defaults:")
w("  interval_s: 10")
w("  timeout_s: 2")
w("  retries: 1")
w("  credentials: {snmp: snmp-ro, redfish: bmc}")
w()
w("credentials:")
w("  snmp-ro:")
w("    version: 2c")
w("    community: {env: DCIM_SNMP_COMMUNITY}")
w("  bmc:")
w("    username: {env: DCIM_BMC_USER}")
w("    password: {env: DCIM_BMC_PASSWORD}")
w()
w("devices:")
def dev(ind, **kv):
    first = True
    for k, v in kv.items():
        pre = ind + ("- " if first else "  ")
        first = False
        w(f"{pre}{k}: {yaml.safe_dump(v, default_flow_style=True, width=1000, sort_keys=k != 'loops').strip().removesuffix(chr(10)+'...')}")
I = "  "
dev(I, id="grid-a", kind="utility", name="ONEE 225 kV feeder A")
dev(I, id="grid-b", kind="utility", name="ONEE 225 kV feeder B")
dev(I, id="tx-a", kind="transformer", rated_kva=4000, fed_by=["grid-a"])
dev(I, id="tx-b", kind="transformer", rated_kva=4000, fed_by=["grid-b"])
dev(I, id="gen-1", kind="generator", rated_kw=3000, name="Diesel standby generator")
dev(I, id="pv-1", kind="pv_inverter", rated_kw=150, name="Rooftop PV (this slice's share)")
dev(I, id="wind-1", kind="wind_turbine", rated_kw=250, name="PPA wind (this slice's share)")
port = 15020
meters = [
    ("meter-util-a", "eastron", "SDM630", dict(role="boundary", source="grid"), "tx-a", "eastron_sdm630"),
    ("meter-util-b", "eastron", "SDM630", dict(role="boundary", source="grid"), "tx-b", "eastron_sdm630"),
    ("meter-gen-1", "siemens", "PAC2200", dict(role="boundary", source="diesel"), "gen-1", "siemens_pac2200"),
    ("meter-pv-1", "janitza", "UMG 604", dict(role="renewable", source="solar"), "pv-1", "janitza_umg"),
    ("meter-wind-1", "schneider", "PM5560", dict(role="renewable", source="ppa"), "wind-1", "schneider_iem3000"),
]
unit = 1
for mid, vendor, model, role, measures, profile in meters:
    dev(I, id=mid, kind="meter", vendor=vendor, model=model, protocol="modbus", host="127.0.0.1", port=port, unit=unit,
        profile=profile, measures=measures, meter=dict(role=role["role"], source=role["source"], commissioned="2026-01-01"))
    unit += 1
dev(I, id="meter-water-1", kind="meter", name="Make-up water", protocol="modbus", host="127.0.0.1", port=port, unit=unit, profile="generic_water_meter", meter=dict(role="water", commissioned="2026-01-01"))
unit += 1
for i, fed in ((1, "tx-a"), (2, "tx-b")):
    dev(I, id=f"chiller-{i}", kind="chiller", vendor="trane", model="RTHD", rated_kw=1200, protocol="modbus", host="127.0.0.1", port=port, unit=unit, profile="trane_rthd_pic", fed_by=[fed])
    unit += 1
# cooling sub-meters on the chillers' supplies (for pPUE of cooling); units after the hall's
# devices so the older unit numbers stay put
for i, unit_no in ((1, 14), (2, 15)):
    dev(I, id=f"meter-chiller-{i}", kind="meter", vendor="schneider", model="PM5560", protocol="modbus", host="127.0.0.1", port=port,
        unit=unit_no, profile="schneider_iem3000", measures=f"chiller-{i}", meter=dict(role="cooling", commissioned="2026-01-01"))
w()
w("halls:")
w("  - id: h1")
w("    name: Hall 1 (GPU training)")
w("    rated_kw: 1200")
w("    devices:")
I2 = "      "
snmp_port = 16100
for side, tx in (("a", "tx-a"), ("b", "tx-b")):
    snmp_port += 1
    dev(I2, id=f"ups-1{side}", kind="ups", vendor="eaton", model="93PM", rated_kw=300, rated_kva=300, protocol="snmp", host="127.0.0.1", port=snmp_port, profile="auto", fed_by=[tx])
for side in ("a", "b"):
    dev(I2, id=f"meter-ups-1{side}", kind="meter", vendor="schneider", model="PM5560", protocol="modbus", host="127.0.0.1", port=port, unit=unit, profile="schneider_iem3000", measures=f"ups-1{side}", meter=dict(role="it", category=1, commissioned="2026-01-01"))
    unit += 1
# cdu-1 speaks Modbus (the template map), cdu-2 Redfish (ThermalEquipment/CDUs); cdu-2 keeps its
# Modbus unit number unused so the units after it stay put
loop = [dict(id="1", name="Row secondary loop", rated_kw=1350, design_flow_lpm=1935, design_supply_c=32)]
dev(I2, id="cdu-1", kind="cdu", vendor="vertiv", model="XDU1350", rated_kw=1350, protocol="modbus", host="127.0.0.1", port=port, unit=unit, profile="template_cdu", fed_by=["tx-a"], cooled_by=["chiller-1"], loops=loop)
unit += 2
dev(I2, id="cdu-2", kind="cdu", vendor="kenmec", name="Row 2 CDU (Redfish)", rated_kw=1350, protocol="redfish", host="127.0.0.1", port=18100, fed_by=["tx-b"], cooled_by=["chiller-2"], loops=loop)
dev(I2, id="crah-1", kind="crah", vendor="apc", model="ACRC602", rated_kw=60, protocol="modbus", host="127.0.0.1", port=port, unit=unit, profile="apc_inrow_rc_gen2", fed_by=["tx-b"], cooled_by=["chiller-2"])
unit += 1
w("    rows:")
node_port = 19400
bmc_port = 18000
for r in (1, 2):
    w(f"      - id: h1-r{r:02d}")
    w("        racks:")
    for k in (1, 2, 3):
        rack = f"h1-r{r:02d}-k{k:02d}"
        w(f"          - id: {rack}")
        w("            rated_kw: 45")
        w("            redundancy: 2N")
        w(f"            cooled_by: ['{'cdu-1' if r == 1 else 'cdu-2'}:1']")
        w("            devices:")
        I3 = "              "
        for side in ("a", "b"):
            snmp_port += 1
            dev(I3, id=f"{rack}-pdu-{side}", kind="pdu", vendor="apc", model="AP8886", rated_kw=43, rated_a=63, protocol="snmp", host="127.0.0.1", port=snmp_port, profile="auto", fed_by=[f"ups-1{side}"])
        for n in (1, 2, 3, 4):
            node_port += 1
            dev(I3, id=f"{rack}-n{n}", kind="gpu_node", vendor="supermicro", model="SYS-821GE-TNHR", gpus=8, gpu_model="H100 SXM5 80GB", rated_kw=10.2, protocol="dcgm", host="127.0.0.1", port=node_port,
                fed_by=[f"{rack}-pdu-a:{n}", f"{rack}-pdu-b:{n}"])
        bmc_port += 1
        dev(I3, id=f"{rack}-n1-bmc", kind="server", vendor="supermicro", model="X13 BMC", protocol="redfish", host="127.0.0.1", port=bmc_port, fed_by=[f"{rack}-pdu-a:1", f"{rack}-pdu-b:1"], labels={"node": f"{rack}-n1"})
print("\n".join(L))
