"""``dcim traps listen`` prints what arrives; ``dcim run`` refuses a bad ``traps:`` section or port clearly."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from localservers.process import server_port

SITE = """site: {id: t, name: T}
defaults: {credentials: {snmp: ro}}
credentials:
  ro: {version: 2c, community: {env: T_COMMUNITY}}
  v3: {version: 3, user: ops, auth_protocol: SHA256, auth_key: {env: T_AUTH}, priv_protocol: AES128,
       priv_key: {env: T_PRIV}}
devices:
  - {id: ups-a, kind: ups, protocol: snmp, host: 127.0.0.1, port: 16161}
  - {id: ups-b, kind: ups, protocol: snmp, host: 127.0.0.6, port: 16161, credentials: v3}
"""


def test_traps_listen_prints_traps_and_refusals(tmp_path, netsnmp_env):
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    port = server_port(socket.SOCK_DGRAM)
    env = {**netsnmp_env, "T_COMMUNITY": "c0mm", "T_AUTH": "authpass-1", "T_PRIV": "privpass-1"}
    proc = subprocess.Popen([sys.executable, "-m", "dcim.cli", "traps", "listen", "--site", str(site), "--listen",
                             f"127.0.0.1:{port}", "--count", "3", "--duration", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        dest = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        # ready once the first inform is acknowledged
        while subprocess.run(["snmpinform", "-v2c", "-c", "c0mm", "-t", "0.5", "-r", "0", dest, "",
                              "1.3.6.1.2.1.33.2.1", "1.3.6.1.2.1.33.1.2.3.0", "i", "3"], env=env).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        subprocess.run(["snmptrap", "-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "authpass-1", "-x",
                        "AES", "-X", "privpass-1", "--clientaddr=127.0.0.6", dest, "", "1.3.6.1.4.1.318.0.9"],
                       env=env, check=True)
        subprocess.run(["snmptrap", "-v2c", "-c", "wrong", dest, "", "1.3.6.1.2.1.33.2.1"], env=env, check=True)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    inform = [x for x in lines if x.get("inform")]
    assert inform and inform[0]["device"] == "ups-a" and inform[0]["trap"] == "upsTrapOnBattery"
    assert inform[0]["samples"][1]["fields"] == {"state": "battery", "state_raw": "upsTrapOnBattery", "runtime_s": 180.0,
                                                 "trap": "upsTrapOnBattery"}
    v3 = [x for x in lines if x.get("version") == "3"]
    assert v3 and v3[0]["user"] == "ops" and v3[0]["device"] == "ups-b" and v3[0]["trap"] == "powerRestored"
    assert any(x.get("refused") == "bad_community" for x in lines)
    assert "c0mm" not in out + err and "authpass-1" not in out + err


def test_run_refuses_bad_traps_section_with_file_and_line(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"site: {site}\ntraps:\n  listen: nowhere\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--duration", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"{cfg}:3: traps.listen" in proc.stderr and "HOST:PORT" in proc.stderr


def test_run_says_why_a_trap_port_cannot_be_bound(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        cfg = tmp_path / "run.yaml"
        cfg.write_text(f"site: {site}\ninfluxdb: {{url: 'http://127.0.0.1:9'}}\n"
                       f"traps: {{listen: '127.0.0.1:{busy.getsockname()[1]}'}}\n")
        proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--duration", "1"],
                              capture_output=True, text=True, timeout=60,
                              env={**__import__("os").environ, "T_COMMUNITY": "x", "T_AUTH": "a" * 8, "T_PRIV": "p" * 8})
    finally:
        busy.close()
    assert proc.returncode == 2, proc.stderr
    assert "trap receiver cannot listen on 127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr
