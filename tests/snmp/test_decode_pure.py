"""Sans-I/O tests: profile validation errors, counters, decoding crafted varbinds, URLs."""
from __future__ import annotations

import urllib.parse

import pytest

from collectors.snmp.detect import detect_profile
from collectors.snmp.counters import RESET, WRAP, CounterState
from collectors.snmp.decode import Fetched, decode
from collectors.snmp.profiles import ProfileError, default_profiles, load_profile
from collectors.snmp.url import target_from_url

VERTIV_TOTAL = "1.3.6.1.4.1.21239.5.2.3.1.1"


def test_shipped_profiles_load_and_cover_the_vendors():
    names = set(default_profiles())
    assert {"apc-rpdu2", "apc-rpdu", "apc-ups", "apc-inrow", "raritan-pdu2", "sentry3", "sentry4", "eaton-epdu",
            "vertiv-geist", "geist-v3", "cyberpower", "ups-mib", "eaton-xups", "entity-sensor", "apc-xpdu"} <= names


def test_profile_errors_name_file_line_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\ndetect: {sysobjectid: [1.3.6.1.4.1.1]}\ngroups:\n"
                 "  - measurement: pdu\n    table: 1.3.6.1.4.1.1.2.1\n    index: [pdu]\n    columns:\n"
                 "      - {col: 3, field: Power, divide: 0}\n")
    with pytest.raises(ProfileError) as ei:
        load_profile(p)
    msg = str(ei.value)
    assert f"{p}:8: groups[0].columns[0].field: must be snake_case" in msg
    assert "groups[0].columns[0].divide: must be a non-zero number" in msg


def test_profile_unknown_measurement(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("name: m\ngroups:\n  - measurement: fridge\n    scalars:\n      - {oid: 1.3.6.1.2.1.1.3.0, field: x_s}\n")
    with pytest.raises(ProfileError, match=r"m.yaml:3: groups\[0\].measurement: must be one of"):
        load_profile(p)


def test_non_finite_text_for_an_enum_is_a_decode_problem_not_a_crash():
    prof = default_profiles()["apc-ups"]
    oid = next(o for g in prof.groups for o, spec in g.scalars if spec.type == "enum")
    samples, problems = decode(prof, Fetched(gets={oid: b"inf"}), {"device": "u"}, 1)
    assert any(kind == "decode" and oid in msg and "'inf'" in msg for kind, msg in problems)


def test_counter_wrap_and_reset():
    c = CounterState()
    k = ("dev", "pdu", "energy_kwh")
    assert c.update(k, 4_294_967_000, 32) == (4_294_967_000, None)
    v, flag = c.update(k, 200, 32)                # wrapped past 2**32
    assert flag == WRAP and v == 2**32 + 200
    v2, flag2 = c.update(k, 300, 32)
    assert flag2 is None and v2 == 2**32 + 300     # stays monotonic after the wrap
    v3, flag3 = c.update(k, 5, 32)                # small drop from a small value: the meter was reset
    assert flag3 == RESET and v3 == 5


def test_decode_flags_energy_reset_and_never_negative():
    prof = default_profiles()["vertiv-geist"]
    counters = CounterState()

    def once(wh):
        f = Fetched(walks={f"{VERTIV_TOTAL}.9": [(f"{VERTIV_TOTAL}.9.1", 500)],
                           f"{VERTIV_TOTAL}.12": [(f"{VERTIV_TOTAL}.12.1", wh)]})
        return decode(prof, f, {"device": "p1"}, 1, device_id="p1", counters=counters)

    s, probs = once(1_500_000)
    assert not probs and s[0].fields["energy_kwh"] == 1500.0 and s[0].tags == {"device": "p1", "pdu": "1"}
    s, _ = once(1_000)
    assert s[0].fields["energy_kwh"] == 1.0 and s[0].fields[RESET] is True
    s, probs = once(-5)
    assert "energy_kwh" not in s[0].fields and probs[0][0] == "decode"


def test_decode_raritan_decimal_digits_and_energy_units():
    prof = default_profiles()["raritan-pdu2"]
    v, d = "1.3.6.1.4.1.13742.6.5.2.3.1.4", "1.3.6.1.4.1.13742.6.3.3.4.1.7"
    f = Fetched(walks={v: [(f"{v}.1.1.1", 680), (f"{v}.1.1.7", 98), (f"{v}.1.1.8", 123456)],
                       d: [(f"{d}.1.1.1", 3), (f"{d}.1.1.7", 2), (f"{d}.1.1.8", 0)]})
    s, probs = decode(prof, f, {}, 1)
    inlet = [x for x in s if x.tags.get("inlet") == "1"][0]
    assert inlet.fields == {"current_a": 0.68, "power_factor": 0.98, "energy_kwh": 123.456}


def test_detection_prefers_rpdu2_when_it_reports_power():
    profs = default_profiles()
    col = "1.3.6.1.4.1.318.1.1.26.4.3.1.5"          # rPDU2DeviceStatusPower column
    legacy = {"1.3.6.1.4.1.318.1.1.12.2.3.1.1.2": ("1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1", 12)}
    assert detect_profile("1.3.6.1.4.1.318.1.3.4.6", {}, profs, {col: (col + ".1", 27)}).name == "apc-rpdu2"
    assert detect_profile("1.3.6.1.4.1.318.1.3.4.8", {}, profs, {col: (col + ".1", -1), **legacy}).name == "apc-rpdu"
    assert detect_profile("1.3.6.1.4.1.99999.1", {"1.3.6.1.2.1.33.1.2.4.0": 100}, profs).name == "ups-mib"
    assert detect_profile("1.3.6.1.4.1.99999.1", {}, profs).name == "entity-sensor"


def test_url_v2c_and_v3():
    t = target_from_url(urllib.parse.urlsplit("snmp://s3cret@127.0.0.1:1161?engine=pysnmp"), "auto")
    assert (t.host, t.port, t.options["engine"], t.secret("community")) == ("127.0.0.1", 1161, "pysnmp", "s3cret")
    assert "s3cret" not in repr(t)
    env = {"AK": "authkey123", "PK": "privkey123"}
    t3 = target_from_url(urllib.parse.urlsplit(
        "snmp://ops@[::1]?version=3&auth_protocol=SHA-256&auth_key_env=AK&priv_protocol=AES&priv_key_env=PK"),
        "sentry4", environ=env)
    assert (t3.host, t3.port, t3.profile, t3.options["user"]) == ("::1", 161, "sentry4", "ops")
    assert t3.secret("auth_key") == "authkey123" and t3.secret("priv_key") == "privkey123"
    with pytest.raises(ValueError, match="AK2 .* is not set"):
        target_from_url(urllib.parse.urlsplit("snmp://ops@h?version=3&auth_protocol=SHA&auth_key_env=AK2"), "auto",
                        environ=env)
    with pytest.raises(ValueError, match="must not carry a password"):
        target_from_url(urllib.parse.urlsplit("snmp://a:b@h"), "auto")


def test_later_scalar_wins_and_fallback_used_when_preferred_missing():
    prof = default_profiles()["apc-ups"]
    adv, hp, rt = "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "1.3.6.1.4.1.318.1.1.1.2.3.1.0", "1.3.6.1.4.1.318.1.1.1.2.2.3.0"
    old_card, probs = decode(prof, Fetched(gets={adv: 97, rt: 360000}), {}, 1)
    battery = [s for s in old_card if s.tags.get("stage") == "battery"][0]
    assert not probs and battery.fields == {"charge_pct": 97.0, "runtime_s": 3600.0}
    new_card, _ = decode(prof, Fetched(gets={adv: 97, hp: 975, rt: 360000}), {}, 1)
    assert [s for s in new_card if s.tags.get("stage") == "battery"][0].fields["charge_pct"] == 97.5


def test_state_words_outside_the_vocabulary_are_a_load_error(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("name: v\ngroups:\n  - measurement: ups\n    tags: {stage: output}\n    scalars:\n"
                 "      - {oid: 1.3.6.1.4.1.9.1.0, field: state, enum: {1: onLine, 2: onBattery},\n"
                 "         vocabulary: ups_output, states: {onLine: normal, onBattery: on_battery}}\n")
    with pytest.raises(ProfileError) as ei:
        load_profile(p)
    msg = str(ei.value)
    assert f"{p}:7: groups[0].scalars[0].states: 'onBattery' maps onto" in msg and "'on_battery', which is not in vocabulary ups_output" in msg
    p.write_text(p.read_text().replace("ups_output", "ups_outlet"))
    with pytest.raises(ProfileError, match="unknown vocabulary 'ups_outlet'"):
        load_profile(p)
    p.write_text(p.read_text().replace(",\n         vocabulary: ups_outlet, states: {onLine: normal, onBattery: on_battery}", ""))
    with pytest.raises(ProfileError, match=r"groups\[0\].scalars\[0\].vocabulary: a state field needs vocabulary"):
        load_profile(p)


def test_vocabulary_word_and_vendor_word_both_decoded(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("name: v\ngroups:\n  - measurement: ups\n    tags: {stage: output}\n    scalars:\n"
                             "      - {oid: 1.3.6.1.4.1.9.1.0, field: state, enum: {2: onLine, 3: onBattery},\n"
                             "         vocabulary: ups_output, states: {onLine: normal, onBattery: battery}}\n")
    prof = load_profile(p)
    for raw, want in ((3, ("battery", "onBattery")), (2, ("normal", "onLine")), (9, ("unknown", "unknown(9)"))):
        (s,), _ = decode(prof, Fetched(gets={"1.3.6.1.4.1.9.1.0": raw}), {"device": "u"}, 1)
        assert (s.fields["state"], s.fields["state_raw"]) == want


# ---- set-like tables (``flags:``): UPS-MIB upsAlarmTable ----

ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2"
ALARMS_PRESENT = "1.3.6.1.2.1.33.1.6.1.0"
WELL_KNOWN = "1.3.6.1.2.1.33.1.6.3"


def _unit_fields(fetched: Fetched) -> dict:
    samples, problems = decode(default_profiles()["ups-mib"], fetched, {"device": "u"}, 1)
    assert not [p for p in problems if p[0] != "device"], problems
    unit = [s for s in samples if s.measurement == "ups" and "stage" not in s.tags]
    return unit[0].fields if unit else {}


def test_active_alarms_are_one_boolean_per_well_known_alarm_whatever_the_row_ids():
    walk = [(f"{ALARM_DESCR}.41", f"{WELL_KNOWN}.2"), (f"{ALARM_DESCR}.42", f".{WELL_KNOWN}.9"),
            (f"{ALARM_DESCR}.43", "1.3.6.1.4.1.705.1.11.3")]       # a vendor alarm: counted, no flag
    fields = _unit_fields(Fetched(gets={ALARMS_PRESENT: 3}, walks={ALARM_DESCR: walk}))
    flags = {k: v for k, v in fields.items() if k.startswith("alarm_") and k != "alarm_count"}
    assert len(flags) == 24                                          # bounded: the well-known alarms, no more
    assert {k for k, v in flags.items() if v} == {"alarm_on_battery", "alarm_on_bypass"}
    assert fields["alarm_count"] == 3


def test_an_empty_alarm_table_clears_every_flag_only_when_the_agent_implements_it():
    cleared = _unit_fields(Fetched(gets={ALARMS_PRESENT: 0}, walks={ALARM_DESCR: []}))
    assert cleared["alarm_on_battery"] is False and not any(
        v for k, v in cleared.items() if k.startswith("alarm_") and k != "alarm_count")
    # no upsAlarmsPresent and no rows: an agent without the alarm group, nothing is claimed
    assert not any(k.startswith("alarm_") for k in _unit_fields(Fetched(gets={}, walks={ALARM_DESCR: []})))
    # a walk that failed says nothing either (the collector reports the failure)
    failed = Fetched(gets={ALARMS_PRESENT: 1}, walks={}, failed_walks={ALARM_DESCR: "garbage"})
    samples, problems = decode(default_profiles()["ups-mib"], failed, {"device": "u"}, 1)
    assert not any(k.startswith("alarm_") and k != "alarm_count" for s in samples for k in s.fields)
    assert ("protocol", "garbage") in problems


def test_flags_need_a_table_and_refuse_columns(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("name: f\ngroups:\n  - measurement: ups\n    table: 1.3.6.1.2.1.33.1.6.2.1\n    index: [~]\n"
                 "    columns:\n      - {col: 3, field: t_s}\n"
                 "    flags: {col: 2, values: {1.3.6.1.2.1.33.1.6.3.2: alarm_on_battery}}\n")
    with pytest.raises(ProfileError, match=r"f.yaml:8: groups\[0\].flags: needs a 'table'"):
        load_profile(p)


def test_socomec_output_reads_battery_only_while_its_on_battery_alarm_is_active():
    prof = default_profiles()["socomec-netvision"]
    base = "1.3.6.1.4.1.4555.1.1.7.1"
    gets = {f"{base}.4.1.0": 3, f"{base}.6.1.0": 1, f"{base}.2.4.0": 80}      # upsOutputSource onInverter
    descr = f"{base}.6.2.1.2"

    def output(walk):
        samples, _ = decode(prof, Fetched(gets=gets, walks={descr: walk}), {"device": "s"}, 1)
        return [s.fields for s in samples if s.tags.get("stage") == "output" and "phase" not in s.tags][0]

    on_battery = output([(f"{descr}.5", f"{base}.6.3.15")])
    assert (on_battery["state"], on_battery["state_raw"], on_battery["on_battery"]) == ("battery", "onInverter", True)
    mains = output([(f"{descr}.6", f"{base}.6.3.22")])                     # another alarm only
    assert (mains["state"], mains["on_battery"]) == ("normal", False)
    assert output([])["state"] == "normal"                                 # alarm cleared: table empty
