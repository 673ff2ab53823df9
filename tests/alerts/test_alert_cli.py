"""``dcim alerts`` commands: test (pass and fail with a diff), check, silence/ack to a state dir and over MQTT."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from dcim.cli import main
from alerts.silences import Silences
from mqtt_helpers import Subscriber

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "alerts" / "rules" / "site_test.yaml"


def _copy_case(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules").mkdir()
    shutil.copy(ROOT / "alerts" / "rules" / "site.yaml", tmp_path / "rules" / "site.yaml")
    shutil.copy(ROOT / "inventory" / "examples" / "tetouan.yaml", tmp_path / "rules" / "tetouan.yaml")
    f = tmp_path / "rules" / "case.yaml"
    f.write_text(text.replace("../../inventory/examples/", ""))
    return f


def test_alerts_test_passes_on_the_shipped_case(capsys):
    assert main(["alerts", "test", str(GOOD)]) == 0
    assert "PASS (4 checks)" in capsys.readouterr().out


def test_alerts_test_fails_with_a_diff_on_a_wrong_expectation(tmp_path, capsys):
    text = GOOD.read_text().replace("  - at: 35        # 51 A for 20 s of the 30 s `for`: nothing yet\n    firing: []",
                                    "  - at: 35\n    firing:\n      - {rule: pdu-phase-current-high, device: h1-r01-k01-pdu-a}")
    assert text != GOOD.read_text()
    case = _copy_case(tmp_path, text)
    assert main(["alerts", "test", str(case)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert f"{case}:" in out and "at 35s" in out
    assert "- expected, not firing: {'rule': 'pdu-phase-current-high'" in out


def test_alerts_test_reports_unexpected_firing(tmp_path, capsys):
    text = GOOD.read_text().replace("      - {rule: ups-on-battery, device: ups-1a}\n      - {rule: gpu-temp-high, device: h1-r01-k01-n1}\n",
                                    "      - {rule: ups-on-battery, device: ups-1a}\n")
    case = _copy_case(tmp_path, text)
    assert main(["alerts", "test", str(case)]) == 1
    assert "+ firing, not expected: {rule: gpu-temp-high, device: h1-r01-k01-n1 gpu=0" in capsys.readouterr().out


def test_alerts_test_refuses_a_file_outside_its_tree_unless_allowed(tmp_path, capsys):
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    (tmp_path / "case").mkdir()
    secret.write_text("root:$6$do-not-echo:19000:0:99999:7:::\n")
    case = _copy_case(tmp_path / "case", GOOD.read_text().replace("rules: site.yaml", f"rules: {secret}"))
    assert main(["alerts", "test", str(case)]) == 1
    err = capsys.readouterr().err
    assert f"{case}:2: rules: {secret} is outside this file's project tree" in err
    assert "do-not-echo" not in err
    assert main(["alerts", "test", "--allow", str(secret), str(case)]) == 1  # allowed: read, refused as rules
    err = capsys.readouterr().err
    assert f"{secret}:1: <key>: unknown field" in err and "do-not-echo" not in err


def test_alerts_test_file_errors_name_file_and_line(tmp_path, capsys):
    case = _copy_case(tmp_path, "rules: site.yaml\nsamples:\n  - measurement: pdu\n    field: current_a\nexpect: []\n")
    assert main(["alerts", "test", str(case)]) == 1
    assert f"{case}:3: samples[0]: " in capsys.readouterr().err


def test_alerts_check_bad_rules_exit_1_with_file_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    measurement: pdu\n    field: current_a\n    threshold: 5\n    severity: loud\n")
    assert main(["alerts", "check", str(bad)]) == 1
    assert f"{bad}:6: rules[0].severity:" in capsys.readouterr().err
    assert main(["alerts", "check", str(ROOT / "alerts/rules/site.yaml"), "--site", str(ROOT / "inventory/examples/tetouan.yaml")]) == 0


def test_silence_and_ack_to_state_dir_are_audited(tmp_path, capsys):
    d = tmp_path / "state"
    assert main(["alerts", "silence", "--state-dir", str(d), "--select", "device=pdu-a,rule=pdu-*",
                 "--duration", "2h", "--author", "amina", "--reason", "maintenance"]) == 0
    assert main(["alerts", "ack", "abc123", "--state-dir", str(d), "--author", "youssef"]) == 0
    s = Silences(d)
    now = time.time_ns()
    assert s.silenced_by({"device": "pdu-a", "rule": "pdu-hot"}, now)
    assert not s.silenced_by({"device": "pdu-b", "rule": "pdu-hot"}, now)
    assert not s.silenced_by({"device": "pdu-a", "rule": "pdu-hot"}, now + 7201 * 10**9)
    assert s.is_acked("abc123")
    assert [a["action"] for a in s.audit()] == ["silence", "ack"]
    assert main(["alerts", "silence", "--state-dir", str(d), "--select", "device", "--duration", "2h",
                 "--author", "a", "--reason", "r"]) == 2
    assert "not key=value" in capsys.readouterr().err


def test_silence_over_mqtt_reaches_the_command_topic(mosquitto):
    sub = Subscriber(mosquitto.port, "dcim/tetouan/commands/#").start()
    assert main(["alerts", "silence", "--mqtt", f"127.0.0.1:{mosquitto.port}", "--site", "tetouan",
                 "--select", "hall=h1", "--duration", "30m", "--author", "amina", "--reason", "drill"]) == 0
    assert sub.wait_for(lambda s: len(s.messages) == 1)
    topic, payload, _ = sub.messages[0]
    assert topic == "dcim/tetouan/commands/silence"
    assert json.loads(payload) == {"select": {"hall": "h1"}, "duration_s": 1800.0, "author": "amina", "reason": "drill"}
    sub.stop()


def test_tail_prints_events_from_the_broker(mosquitto, tmp_path, capsys):
    import asyncio
    import threading

    from alerts.mqtt_publisher import MqttSettings
    from alerts.rules import load_rules_text
    from alerts.runtime import AlertRuntime
    from contract.sample import Sample

    rc: list[int] = []
    th = threading.Thread(target=lambda: rc.append(main(["alerts", "tail", "--mqtt", f"127.0.0.1:{mosquitto.port}",
                                                         "--site", "tetouan", "--duration", "2", "--json"])))
    th.start()
    time.sleep(0.5)
    rules = load_rules_text("rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n"
                            "    severity: critical\n", "t.yaml")
    rt = AlertRuntime(None, rules, state_dir=tmp_path / "st", mqtt=MqttSettings(port=mosquitto.port, site="tetouan"))

    async def go():
        await rt.start()
        rt.consume([Sample("pdu", {"device": "pdu-x"}, {"current_a": 40.0}, time.time_ns())])
        assert rt.publisher.drain(5)
        await rt.stop()
    asyncio.run(go())
    th.join(10)
    assert rc == [0]
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert [(e["rule"], e["device"], e["state"]) for e in lines] == [("hot", "pdu-x", "firing")]
