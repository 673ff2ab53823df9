"""Vendor trap definitions (APC rPDU, ServerTech Sentry4) on datagrams net-snmp's snmptrap really sends:
the trap OID and varbind OIDs each definition names (read from the vendor's MIB) find the definition,
and the sample it becomes carries the polled series' tags and words of the shared vocabularies."""
from __future__ import annotations

import os

import pytest

from collectors.snmp.traps.definitions import default_catalog
from collectors.snmp.traps.message import decode_community, decode_pdu
from contract.states import ALARM, LEAK, LOAD, OUTLET, STATUS, VOCABULARIES
from tests.traps.conftest import capture

RPDU = "1.3.6.1.4.1.318.1.1.12"       # PowerNet-MIB rPDU
ST4 = "1.3.6.1.4.1.1718.4.1"          # Sentry4-MIB st4Objects
VERSION = {0: "1", 1: "2c"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("netsnmp")
    e = {k: v for k, v in os.environ.items() if not k.startswith("SNMP")}
    e.update({"SNMP_PERSISTENT_DIR": str(d), "SNMPCONFPATH": str(d), "MIBS": "", "MIBDIRS": str(d)})
    return e


def _samples(datagram: bytes):
    v, _, s, e = decode_community(datagram)
    return default_catalog().samples(decode_pdu(datagram, s, e, VERSION[v]), {"device": "pdu-1"}, 1)


def test_apc_rpdu_outlet_off_v1_trap_sets_the_polled_outlet_state(env):
    # the v1 Trap-PDU a Switched Rack PDU sends: ENTERPRISE apc, specific-trap 269 (rPDUOutletOff)
    dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                    f"1.3.6.1.4.1.318|10.1.2.3|6|269||{RPDU}.1.1.0|s|PDU R15 A1|{RPDU}.3.3.1.1.1.4|i|4|"
                    f"{RPDU}.3.3.1.1.2.4|s|db-01 PSU1|1.3.6.1.4.1.318.2.3.3.0|s|Outlet 4 turned off.")
    (trap, pdu), d = _samples(dgram)
    assert d.name == "rPDUOutletOff" and trap.fields["oid"] == "1.3.6.1.4.1.318.0.269"
    assert (pdu.measurement, pdu.tags) == ("pdu", {"device": "pdu-1", "outlet": "4"})
    assert pdu.fields == {"state": "off", "state_raw": "rPDUOutletOff", "outlet_name": "db-01 PSU1",
                          "message": "Outlet 4 turned off.", "trap": "rPDUOutletOff"}
    assert pdu.fields["state"] in VOCABULARIES[OUTLET]


@pytest.mark.parametrize("specific,name,field,value", [
    (276, "rPDUOverload", "overload", True), (277, "rPDUOverloadCleared", "overload", False),
    (274, "rPDUNearOverload", "near_overload", True), (275, "rPDUNearOverloadCleared", "near_overload", False),
    (272, "rPDULowLoad", "low_load", True), (273, "rPDULowLoadCleared", "low_load", False),
])
def test_apc_rpdu_phase_load_traps_set_and_clear_their_flag_on_the_phase(env, specific, name, field, value):
    dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                    f"1.3.6.1.4.1.318|10.1.2.3|6|{specific}||{RPDU}.2.3.1.1.4.2|i|2|"
                    "1.3.6.1.4.1.318.2.3.3.0|s|Metered Rack PDU: load.")
    (_, pdu), d = _samples(dgram)
    assert d.name == name and pdu.tags == {"device": "pdu-1", "phase": "2"}
    assert pdu.fields[field] is value and "state" not in pdu.fields


def test_apc_rpdu_bank_overload_lands_on_the_polled_bank_row(env):
    # rPDUBankPhaseOverload (226) for bank 2 (phase number 0: bank data), then its clearing trap (227)
    for specific, value in ((226, True), (227, False)):
        dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                        f"1.3.6.1.4.1.318|10.1.2.3|6|{specific}||{RPDU}.2.3.1.1.5.3|i|2|{RPDU}.2.3.1.1.4.3|i|0")
        (_, pdu), d = _samples(dgram)
        assert d.name == ("rPDUBankPhaseOverload" if value else "rPDUBankPhaseOverloadCleared")
        assert pdu.tags == {"device": "pdu-1", "phase": "0", "branch": "2"} and pdu.fields["overload"] is value


def test_sentry4_outlet_status_event_maps_status_onto_vocabularies_and_the_polled_index(env):
    # st4OutletStatusEvent (v2c) for outlet AA5 (unit 1, cord 1, outlet 5): a breaker trip
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc",
                    f"|1.3.6.1.4.1.1718.4.100.0.15|{ST4}.1.1.2.0|s|rack 12|{ST4}.8.2.1.2.1.1.5|s|AA5|"
                    f"{ST4}.8.2.1.3.1.1.5|s|gpu-07 PSU2|{ST4}.8.3.1.1.1.1.5|i|2|{ST4}.8.3.1.2.1.1.5|i|12|"
                    f"{ST4}.8.5.1.1.1.1.5|i|6|{ST4}.99.1.0|s|Breaker Tripped|{ST4}.99.2.0|i|1")
    (_, pdu), d = _samples(dgram)
    assert d.name == "st4OutletStatusEvent"
    # the sentry4 profile's st4OutletMonitorEntry index is [pdu, inlet, outlet]
    assert pdu.tags == {"device": "pdu-1", "pdu": "1", "inlet": "1", "outlet": "5"}
    assert pdu.fields == {"alarm_state": "critical", "outlet_state": "off", "status": "fault",
                          "status_raw": "Breaker Tripped", "trap": "st4OutletStatusEvent"}


def test_sentry4_v1_translated_event_and_a_return_to_normal(env):
    # the same notification sent as SNMPv1 (ENTERPRISE st4Notifications, specific 2) finds st4Events 2
    dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                    f"1.3.6.1.4.1.1718.4.100|10.1.2.4|6|2||{ST4}.3.3.1.1.2.1|i|1|{ST4}.3.3.1.2.2.1|i|0|"
                    f"{ST4}.99.1.0|s|Normal|{ST4}.99.2.0|i|0")
    (trap, pdu), d = _samples(dgram)
    assert trap.fields["oid"] == "1.3.6.1.4.1.1718.4.100.0.2" and d.name == "st4InputCordStatusEvent"
    assert pdu.tags == {"device": "pdu-1", "pdu": "2", "inlet": "1"}
    assert pdu.fields == {"alarm_state": "ok", "inlet_state": "on", "status": "ok", "status_raw": "Normal",
                          "trap": "st4InputCordStatusEvent"}


def test_every_shipped_lookup_word_is_a_vocabulary_word():
    vocab_of = {"alarm_state": ALARM, "sensor_state": ALARM, "status": STATUS, "outlet_state": OUTLET, "inlet_state": OUTLET,
                "line_state": OUTLET, "branch_state": OUTLET, "load_state": LOAD, "leak_state": LEAK}
    checked = 0
    for f in default_catalog().files:
        for t in f.traps:
            for vm in t.varbinds:
                if vm.field in vocab_of:
                    assert set(vm.lookup.values()) <= set(VOCABULARIES[vocab_of[vm.field]]), (f.name, t.name)
                    checked += 1
    assert checked >= 10


RARITAN = "1.3.6.1.4.1.13742.6"


def test_raritan_ocp_trip_names_the_breaker_and_grades_its_state(env):
    # overCurrentProtectorSensorStateChange: the trip(15) sensor of OCP 2 on PDU 1 went to fail(14)
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc",
                    f"|{RARITAN}.0.65|{RARITAN}.5.3.3.1.3.1.2.15|i|14|{RARITAN}.5.3.3.1.4.1.2.15|u|0")
    (trap, pdu), d = _samples(dgram)
    assert d.name == "overCurrentProtectorSensorStateChange"
    assert pdu.tags == {"device": "pdu-1", "pdu": "1", "branch": "2", "sensor_type": "trip"}
    assert pdu.fields == {"sensor_state": "critical", "sensor_state_raw": "fail",
                          "trap": "overCurrentProtectorSensorStateChange"}
    assert trap.fields[f"{RARITAN}.5.3.3.1.4.1.2.15"] == 0.0  # every varbind still kept on the trap sample


def test_raritan_external_and_inlet_sensor_state_changes(env):
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc", f"|{RARITAN}.0.66|{RARITAN}.5.5.3.1.3.1.7|i|9")
    (_, s), d = _samples(dgram)
    assert d.name == "externalSensorStateChange" and s.measurement == "env"
    assert s.tags == {"device": "pdu-1", "pdu": "1", "sensor": "7"}
    assert (s.fields["sensor_state"], s.fields["sensor_state_raw"]) == ("warning", "detected")
    # an inlet's rmsCurrent(1) back to normal(4), sent as SNMPv1 (ENTERPRISE traps' parent, specific 61)
    dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                    f"{RARITAN}|10.1.2.5|6|61||{RARITAN}.5.2.3.1.3.1.1.1|i|4")
    (_, s), d = _samples(dgram)
    assert d.name == "inletSensorStateChange"
    assert s.tags == {"device": "pdu-1", "pdu": "1", "inlet": "1", "sensor_type": "rmsCurrent"}
    assert (s.fields["sensor_state"], s.fields["sensor_state_raw"]) == ("ok", "normal")


def test_raritan_state_tables_agree_with_the_polling_profile():
    """The trap file repeats the profile's SensorStateEnumeration grading (one YAML cannot import another):
    the two must say the same, or a trap and the poll it triggers would grade one state differently."""
    import yaml

    from collectors.snmp.profiles import PROFILE_DIR

    profile = yaml.safe_load((PROFILE_DIR / "raritan-pdu2.yaml").read_text())
    col = next(c for g in profile["groups"] for c in g.get("columns", []) if c.get("field") == "alarm_state")
    words = {str(k): v for k, v in col["enum"].items()}
    graded = {k: col["states"].get(w, w) for k, w in words.items()}
    lookups = next(f for f in default_catalog().files if f.name == "raritan-pdu2").lookups
    assert lookups["state_word"] == words and lookups["state_alarm"] == graded


def test_index_lookup_mistakes_name_file_line_and_field(tmp_path):
    from collectors.snmp.traps.definitions import load_trap_files
    from inventory.errors import InventoryError

    head = "name: x\nmib: X-MIB\ntraps:\n  - name: t\n    oid: 1.3.6.1\n    measurement: pdu\n    varbinds:\n"
    (tmp_path / "x.yaml").write_text(head + "      - {oid: 1.3.6.1.2, field: f, index: [pdu], index_lookup: {zone: z}}\n")
    with pytest.raises(InventoryError) as exc:
        load_trap_files(tmp_path)
    assert "x.yaml:8: traps[0].varbinds[0]" in str(exc.value) and "index_lookup 'zone'" in str(exc.value)
    (tmp_path / "x.yaml").write_text(head + "      - {oid: 1.3.6.1.2, field: f, index: [pdu], index_lookup: {pdu: nope}}\n")
    with pytest.raises(InventoryError) as exc:
        load_trap_files(tmp_path)
    assert "index_lookup 'nope' is not one of lookups" in str(exc.value)


ST3 = "1.3.6.1.4.1.1718.3"   # Sentry3-MIB sentry3


def test_sentry3_outlet_fuse_error_and_water_sensor_events(env):
    # outletStatusEvent: outlet AA3 (tower 1, infeed 1, outlet 3) is onFuse(9) -- on, but its fuse blew
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc",
                    f"|{ST3}.100.0.4|{ST3}.2.3.1.2.1.1.3|s|AA3|{ST3}.2.3.1.5.1.1.3|i|9|"
                    f"{ST3}.99.1.0|s|On Fuse|{ST3}.99.2.0|i|1")
    (_, pdu), d = _samples(dgram)
    assert d.name == "outletStatusEvent"
    assert pdu.tags == {"device": "pdu-1", "pdu": "1", "inlet": "1", "outlet": "3"}
    assert pdu.fields == {"outlet_state": "on", "alarm_state": "critical", "status": "fault",
                          "status_raw": "On Fuse", "trap": "outletStatusEvent"}
    # envMonWaterSensorEvent from SNMPv1 (ENTERPRISE sentry3Traps, specific 8): water sensor on monitor 1 alarms
    dgram = capture(env, "snmptrap", "-v1", "-c", "trapc",
                    f"{ST3}.100|10.1.2.6|6|8||{ST3}.2.4.1.6.1|i|1|{ST3}.99.1.0|s|Alarm|{ST3}.99.2.0|i|1")
    (_, s), d = _samples(dgram)
    assert d.name == "envMonWaterSensorEvent" and s.measurement == "env"
    assert s.tags == {"device": "pdu-1", "pdu": "1"}
    assert (s.fields["leak_state"], s.fields["status"], s.fields["status_raw"]) == ("leak", "fault", "Alarm")


VERTIV = "1.3.6.1.4.1.21239.5.2"   # VERTIV-V5-MIB imd


def test_vertiv_phase_current_alarm_and_clear(env):
    # pduPhaseCurrentNOTIFY (trapPrefix 10328): phase 2 at 31.50 A crossed its high alarm threshold
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc",
                    f"|{VERTIV}.32767.0.10328|{VERTIV}.3.2.1.8.2|u|3150|{VERTIV}.32767.1.2.0|i|2|"
                    f"{VERTIV}.32767.1.1.0|i|2|1.3.6.1.2.1.1.5.0|s|pdu-r12-a")
    (_, pdu), d = _samples(dgram)
    assert d.name == "pduPhaseCurrentNOTIFY" and pdu.tags == {"device": "pdu-1", "phase": "2"}
    assert pdu.fields == {"current_a": 31.5, "alarm_state": "critical", "alarm_state_raw": "alarm",
                          "threshold": "high", "trap": "pduPhaseCurrentNOTIFY"}
    dgram = capture(env, "snmptrap", "-v2c", "-c", "trapc",
                    f"|{VERTIV}.32767.0.20328|{VERTIV}.3.2.1.8.2|u|2480|{VERTIV}.32767.1.1.0|i|0")
    (_, pdu), d = _samples(dgram)
    assert d.name == "pduPhaseCurrentCLEAR"
    assert pdu.fields == {"alarm_state": "ok", "current_a": 24.8, "trap": "pduPhaseCurrentCLEAR"}
