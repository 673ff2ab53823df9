"""Every UPS family's case, served by snmpsim, through ``dcim probe --profile auto``.

The UPS profiles are detected by sysObjectID (Delta, Vertiv ITA2, Liebert, Socomec, Riello,
Eaton, APC), by a vendor object under net-snmp's own sysObjectID (ABB), or by a vendor object for any
sysObjectID (Huawei).  This runs the command an operator runs on a new device: it must exit 0,
say on stderr which profile it picked, and print the case's expected samples, no more.

``dcim probe`` applies the service's plausibility screen (``collectors.plausibility``), so a
discharging battery's negative current (Huawei, Socomec) is printed only because the screen
knows that reading is signed; any value the screen refuses must be named on stderr instead.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collectors.plausibility import screen
from contract.sample import Sample
from testkit.snmp import SnmpsimServer

CASES = Path(__file__).resolve().with_name("testcases")
#: the UPS families' case folders (the PDU and rack-monitor ones are checked by their own tests)
UPS_PROFILES = ("abb-ups", "apc-ups", "delta-ups", "eaton-xups", "huawei-ups", "liebert-gp", "riello-netman",
                "socomec-netvision", "vertiv-ita2")
UPS_CASES = [(p, c.name[: -len(".snmprec")]) for p in UPS_PROFILES for c in sorted((CASES / p).glob("*.snmprec"))]


@pytest.fixture(scope="module")
def ups_agent():
    server = SnmpsimServer({f"probe_{profile.replace('-', '_')}_{case}": CASES / profile / f"{case}.snmprec"
                            for profile, case in UPS_CASES}).start()
    yield server
    server.stop()


def _key(measurement: str, tags: dict) -> tuple:
    return measurement, tuple(sorted((k, str(v)) for k, v in tags.items()))


def test_every_ups_family_has_a_case():
    assert {p for p, _ in UPS_CASES} == set(UPS_PROFILES)


@pytest.mark.parametrize("profile,case", UPS_CASES, ids=[f"{p}/{c}" for p, c in UPS_CASES])
def test_probe_auto_picks_the_family_and_reads_the_case(ups_agent, profile, case):
    community = f"probe_{profile.replace('-', '_')}_{case}"
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", f"snmp://{community}@127.0.0.1:{ups_agent.port}",
                           "--profile", "auto"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"profile {profile}:" in proc.stderr, proc.stderr
    got: dict[tuple, dict] = {}
    for line in proc.stdout.splitlines():
        s = json.loads(line)
        got.setdefault(_key(s["measurement"], s["tags"]), {}).update(s["fields"])
    expected = yaml.safe_load((CASES / profile / f"{case}.expected.yaml").read_text())
    assert set(got) == {_key(r["measurement"], r["tags"]) for r in expected}
    for row in expected:
        fields = got[_key(row["measurement"], row["tags"])]
        screened = Sample(row["measurement"], {k: str(v) for k, v in row["tags"].items()}, dict(row["fields"]), 1)
        screen([screened])
        for name, want in row["fields"].items():
            have = fields.get(name)
            if name not in screened.fields:
                assert have is None and f".{name}={want!r} implausible" in proc.stderr, proc.stderr
                continue
            ok = (math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-9) if isinstance(want, float) and
                  not isinstance(want, bool) and isinstance(have, (int, float)) else have == want)
            assert ok, f"{profile}/{case}: {row['tags']} {name} = {have!r}, want {want!r}"


def test_socomec_on_battery_fires_the_shipped_ups_on_battery_rule(ups_agent):
    """Socomec's upsOutputSource says onInverter on battery; its upsAlarmOnBattery row must still
    make the shipped ``ups-on-battery`` rule fire (the samples as ``dcim probe`` prints them)."""
    from alerts.evaluate import Engine
    from alerts.rules import load_rules

    community = "probe_socomec_netvision_mains_failure"
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", f"snmp://{community}@127.0.0.1:{ups_agent.port}",
                           "--profile", "auto"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    t0 = 1_700_000_000 * 10**9
    samples = []
    for line in proc.stdout.splitlines():
        s = json.loads(line)
        samples.append(Sample(s["measurement"], {**s["tags"], "device": "ups-1a", "kind": "ups"}, s["fields"], t0))
    out = [s for s in samples if s.measurement == "ups" and s.tags.get("stage") == "output" and "phase" not in s.tags]
    assert out and out[0].fields["state"] == "battery" and out[0].fields["state_raw"] == "onInverter"
    engine = Engine(load_rules(Path(__file__).resolve().parents[2] / "alerts" / "rules" / "site.yaml"))
    engine.observe(samples)
    events = engine.tick(t0 + 6 * 10**9)        # past the rule's for_s (5 s)
    fired = [e for e in events if e.get("rule") == "ups-on-battery"]
    assert fired, f"ups-on-battery did not fire; events {events}"
