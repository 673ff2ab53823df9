"""Redfish walk on real DMTF / vendor mockups served over HTTP(S), through the collector's asyncio client."""
from __future__ import annotations

import asyncio
import json



from collectors.base import PollError, Target
from collectors.gpu.redfish import RedfishCollector
from inventory.secrets import SecretValue
from testkit.collect import poll_each
from localservers.process import free_port
from testkit.redfish import RedfishMockupServer
from testkit.testdata import shared_testdata
from testkit.tls import make_tls

MOCKUPS = shared_testdata() / "redfish"
BASE = {"site": "tetouan", "device": "h1-r01-k01-n1"}


def _json(*parts: str) -> dict:
    return json.loads((MOCKUPS.joinpath(*parts) / "index.json").read_text())


def _target(port: int, protocol: str = "redfish", **options) -> Target:
    secrets = {k: SecretValue(options.pop(k)) for k in ("username", "password") if k in options}
    return Target(device_id="bmc", protocol=protocol, host="127.0.0.1", port=port, timeout_s=3.0,
                  tags=dict(BASE), options=options, secrets=secrets)


def _polls(targets: list[Target]) -> list:
    return poll_each(RedfishCollector(), targets, 60)


def _index(samples) -> dict:
    """(component tag, value) -> fields; plus ('source', s) for chassis power."""
    out = {}
    for s in samples:
        assert s.measurement == "node" and s.tags["site"] == "tetouan"
        comp = [k for k in ("source", "psu", "sensor", "fan") if k in s.tags]
        assert len(comp) == 1, s.tags
        key = (s.tags["chassis"], comp[0], s.tags[comp[0]])
        assert key not in out, key
        out[key] = s.fields
    return out


def test_cisco_power_and_thermal_resources():
    with RedfishMockupServer(MOCKUPS / "cisco_ucsc-c240-m5sn") as server:
        [samples] = _polls([_target(server.port)])
    got = _index(samples)
    power = _json("cisco_ucsc-c240-m5sn", "redfish", "v1", "Chassis", "1", "Power")
    thermal = _json("cisco_ucsc-c240-m5sn", "redfish", "v1", "Chassis", "1", "Thermal")
    assert got[("1", "source", "power")] == {"power_w": power["PowerControl"][0]["PowerConsumedWatts"]}
    for psu in power["PowerSupplies"]:
        fields = got[("1", "psu", psu["MemberId"])]
        assert fields["input_power_w"] == psu["PowerInputWatts"] and fields["output_power_w"] == psu["PowerOutputWatts"]
        assert fields["health"] == psu["Status"]["Health"] and fields["healthy"] == (psu["Status"]["Health"] == "OK")
    temps = {t["Name"]: t["ReadingCelsius"] for t in thermal["Temperatures"] if t.get("ReadingCelsius") is not None}
    assert {k[2]: v["temp_c"] for k, v in got.items() if k[1] == "sensor"} == temps
    fans = {f["Name"]: f["Reading"] for f in thermal["Fans"] if f.get("Reading") is not None}
    assert {k[2]: v["speed_rpm"] for k, v in got.items() if k[1] == "fan"} == fans
    assert len(temps) > 10 and len(fans) > 5


def test_dmtf_newer_power_subsystem_environment_metrics_and_fans():
    root = ("dmtf-public-rackmount1", "Chassis", "1U")
    with RedfishMockupServer(MOCKUPS / root[0]) as server:
        [samples] = _polls([_target(server.port)])
    got = _index(samples)
    env = _json(*root, "EnvironmentMetrics")
    assert got[("1U", "source", "environment_metrics")] == {"power_w": env["PowerWatts"]["Reading"],
                                                             "temp_c": env["TemperatureCelsius"]["Reading"]}
    assert got[("1U", "source", "power")]["power_w"] == _json(*root, "Power")["PowerControl"][0]["PowerConsumedWatts"]
    bay1, metrics = _json(*root, "PowerSubsystem", "PowerSupplies", "Bay1"), _json(*root, "PowerSubsystem", "PowerSupplies", "Bay1", "Metrics")
    assert got[("1U", "psu", "Bay1")]["input_power_w"] == metrics["InputPowerWatts"]["Reading"]
    assert got[("1U", "psu", "Bay1")]["output_power_w"] == metrics["OutputPowerWatts"]["Reading"]
    assert got[("1U", "psu", "Bay1")]["health"] == bay1["Status"]["Health"] and got[("1U", "psu", "Bay1")]["healthy"] is False
    assert got[("1U", "psu", "Bay1")]["energy_kwh"] == metrics["EnergykWh"]["Reading"]
    assert got[("1U", "psu", "Bay2")] == {"state": _json(*root, "PowerSubsystem", "PowerSupplies", "Bay2")["Status"]["State"]}
    assert not any(k[1] == "psu" and k[2] == "0" for k in got)  # the deprecated Power PSU list is not repeated
    for fan_id in ("Bay1", "Bay2", "CPU1", "CPU2"):
        speed = _json(*root, "ThermalSubsystem", "Fans", fan_id).get("SpeedPercent", {})
        want = {f: speed[k] for k, f in (("Reading", "speed_pct"), ("SpeedRPM", "speed_rpm")) if k in speed}
        assert got.get(("1U", "fan", fan_id), {}) == want, fan_id
    temps = {t["Name"]: t["ReadingCelsius"] for t in _json(*root, "Thermal")["Temperatures"] if t.get("ReadingCelsius") is not None}
    assert {k[2]: v["temp_c"] for k, v in got.items() if k[1] == "sensor"} == temps


def test_dell_two_chassis_follow_links():
    with RedfishMockupServer(MOCKUPS / "dell_poweredge-r650") as server:
        [samples] = _polls([_target(server.port)])
    got = _index(samples)
    power = _json("dell_poweredge-r650", "redfish", "v1", "Chassis", "System.Embedded.1", "Power")
    assert got[("System.Embedded.1", "source", "power")] == {"power_w": power["PowerControl"][0]["PowerConsumedWatts"]}
    assert {k[0] for k in got} == {"System.Embedded.1"}  # the enclosure chassis has no power/thermal readings
    assert len([k for k in got if k[1] == "fan"]) == len(_json("dell_poweredge-r650", "redfish", "v1", "Chassis",
                                                              "System.Embedded.1", "Thermal")["Fans"])


def test_session_login_is_reused_and_renewed():
    with RedfishMockupServer(MOCKUPS / "cisco_ucsc-c240-m5sn", credentials=("ops", "s3cret-pw")) as server:
        t = _target(server.port, username="ops", password="s3cret-pw")

        async def run():
            collector = RedfishCollector()
            try:
                first = await collector.poll(t)
                second = await collector.poll(t)
                logins_before_expiry = server.logins
                server.tokens.clear()          # the BMC forgets every session
                third = await collector.poll(t)
                return first, second, logins_before_expiry, third
            finally:
                await collector.close()
        first, second, logins_before, third = asyncio.run(asyncio.wait_for(run(), 60))
        assert logins_before == 1 and server.logins == 2 and server.logouts == 1
        assert [(s.tags, s.fields) for s in first] == [(s.tags, s.fields) for s in third] and len(second) == len(first)
        bad, anon = _polls([_target(server.port, username="ops", password="wrong-pw"), _target(server.port)])
    assert isinstance(bad, PollError) and bad.kind == "auth" and "wrong-pw" not in bad.message
    assert isinstance(anon, PollError) and anon.kind == "auth"


def test_tls_verified_by_default_with_ca_bundle_or_opt_out(tmp_path):
    tls = make_tls(tmp_path)
    with RedfishMockupServer(MOCKUPS / "cisco_ucsc-c240-m5sn", tls=(tls.server_cert, tls.server_key)) as server:
        default, with_ca, opted_out = _polls([
            _target(server.port, "redfish-https"),
            _target(server.port, "redfish-https", ca_bundle=str(tls.ca_cert)),
            _target(server.port, "redfish-https", tls_verify=False),
        ])
    assert isinstance(default, PollError) and default.kind == "auth" and "TLS" in default.message
    assert isinstance(with_ca, list) and isinstance(opted_out, list) and len(with_ca) == len(opted_out) > 10
    [no_file] = _polls([_target(server.port, "redfish-https", ca_bundle=str(tmp_path / "missing.pem"))])
    assert isinstance(no_file, PollError) and no_file.kind == "config" and "missing.pem" in no_file.message


def test_dead_bmc_is_unreachable():
    [result] = _polls([_target(free_port())])
    assert isinstance(result, PollError) and result.kind == "unreachable", result


def test_slow_bmc_times_out_and_the_walk_is_bounded():
    with RedfishMockupServer(MOCKUPS / "dmtf-public-rackmount1") as server:
        server.delay_s = 1.0
        slow = _target(server.port)
        slow.timeout_s = 0.3
        [per_request] = _polls([slow])
        server.delay_s = 0.15              # each GET answers in time, but the ~20-GET walk cannot
        walk = _target(server.port, walk_timeouts=2)
        walk.timeout_s = 0.5
        [whole_walk] = _polls([walk])
    assert isinstance(per_request, PollError) and per_request.kind == "timeout", per_request
    assert isinstance(whole_walk, PollError) and whole_walk.kind == "timeout" and "deadline" in whole_walk.message


def test_session_token_and_password_never_reach_the_log(caplog):
    import logging
    caplog.set_level(logging.DEBUG)
    with RedfishMockupServer(MOCKUPS / "cisco_ucsc-c240-m5sn", credentials=("ops", "pw-in-log?")) as server:
        [samples] = _polls([_target(server.port, username="ops", password="pw-in-log?")])
        tokens = list(server.issued)
    assert isinstance(samples, list) and samples
    text = caplog.text
    assert "pw-in-log?" not in text and all(t not in text for t in tokens) and tokens


def test_sensors_collection_when_a_chassis_has_no_thermal_resource(tmp_path):
    """An unseen layout: the Dell capture with its Thermal link removed (a copy; the original is read-only)."""
    import shutil
    mockup = tmp_path / "dell"
    shutil.copytree(MOCKUPS / "dell_poweredge-r650", mockup)
    chassis_file = mockup / "redfish/v1/Chassis/System.Embedded.1/index.json"
    chassis = json.loads(chassis_file.read_text())
    del chassis["Thermal"]
    chassis_file.write_text(json.dumps(chassis))
    with RedfishMockupServer(mockup) as server:
        [samples] = _polls([_target(server.port)])
    got = _index(samples)
    sensors = [json.loads(p.read_text()) for p in (mockup / "redfish/v1/Chassis/System.Embedded.1/Sensors").glob("*/index.json")]
    temps = {s["Name"]: s["Reading"] for s in sensors if s.get("ReadingType") == "Temperature" and s.get("Reading") is not None}
    fans = {s["Name"]: s["Reading"] for s in sensors if s.get("ReadingType") == "Rotational" and s.get("Reading") is not None}
    assert temps and fans
    assert {k[2]: v["temp_c"] for k, v in got.items() if k[1] == "sensor"} == temps
    assert {k[2]: v["speed_rpm"] for k, v in got.items() if k[1] == "fan"} == fans


def test_a_close_cut_short_by_the_stop_budget_leaves_no_logout_running():
    """SIGTERM: the service gives each collector's close what is left of the stop's budget; logouts
    still waiting on slow BMCs are cancelled with it, not left to compete with the writer's flush."""
    with RedfishMockupServer(MOCKUPS / "cisco_ucsc-c240-m5sn", credentials=("ops", "s3cret-pw")) as server:
        server.logout_delay_s = 3.0

        async def run() -> tuple[bool, int]:
            collector = RedfishCollector()
            await collector.poll(_target(server.port, username="ops", password="s3cret-pw"))
            before = asyncio.all_tasks()
            try:
                await asyncio.wait_for(collector.close(), timeout=0.3)
            except asyncio.TimeoutError:
                timed_out = True
            else:
                timed_out = False
            others: list = []
            for _ in range(50):  # a cancelled logout ends in a turn or two; an uncancelled one waits 3 s
                others = [t for t in asyncio.all_tasks() - before if not t.done()]
                if not others:
                    break
                await asyncio.sleep(0.01)
            return timed_out, len(others)

        timed_out, left = asyncio.run(asyncio.wait_for(run(), 30))
    assert timed_out
    assert left == 0
