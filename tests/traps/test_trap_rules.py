"""The rule engine on what the trap catalog really produces: a trap-born sample fires at once,
a polled reading of the same state still waits for_s, and the polled normal state resolves it."""
from __future__ import annotations

from pathlib import Path

from alerts.evaluate import Engine
from alerts.rules import load_rules
from collectors.snmp.ber import TRAP_V2
from collectors.snmp.traps.definitions import default_catalog
from collectors.snmp.traps.message import Notification
from contract.sample import Sample
from localservers.site import load_relocated

RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules" / "site.yaml"
S = 1_000_000_000


def _engine():
    site = load_relocated()
    return Engine(load_rules(RULES), site), site


def _tags(site, device):
    tags = site.location_tags(site.device(device))
    tags.pop("kind", None)
    return tags


def test_trap_born_sample_fires_at_once_polled_one_waits_and_poll_resolves():
    engine, site = _engine()
    tags = _tags(site, "ups-1a")
    n = Notification("2c", TRAP_V2, (1, 3, 6, 1, 2, 1, 33, 2, 1), 5, [])
    samples, _ = default_catalog().samples(n, tags, 100 * S)
    events = engine.observe(samples)
    fired = [e for e in events if e["rule"] == "ups-on-battery"]
    assert [e["state"] for e in fired] == ["firing"] and fired[0]["series"]["stage"] == "output"
    # the other UPS, polled on battery: pending, not firing, until for_s has passed
    polled = Sample("ups", {**_tags(site, "ups-1b"), "stage": "output"}, {"state": "battery"}, 100 * S)
    assert not [e for e in engine.observe([polled]) if e["rule"] == "ups-on-battery"]
    # the poll the trap triggered reads the UPS back on mains: resolved
    back = Sample("ups", {**tags, "stage": "output"}, {"state": "normal", "state_raw": "normal"}, 101 * S)
    assert [e["state"] for e in engine.observe([back]) if e["rule"] == "ups-on-battery"] == ["resolved"]
