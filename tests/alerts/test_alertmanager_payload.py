"""Events → Alertmanager alerts and silences (pure), on events the real engine produces."""
from __future__ import annotations

from alerts.alertmanager_payload import alert_labels, owned_silence_key, postable_alert, same_silence, silence_body
from alerts.evaluate import Engine
from alerts.rules import load_rules_text
from contract.sample import Sample

S = 1_000_000_000
T0 = 1_764_000_000 * S
RULES = load_rules_text("""
rules:
  - name: psu-hot
    measurement: node
    field: temp_c
    threshold: 80
    severity: major
    labels: {team: compute}
""", "inline.yaml")


def _events(temps: list[float], tags: dict[str, str]) -> list[dict]:
    engine = Engine(RULES)
    out = []
    for i, t in enumerate(temps):
        out += engine.observe([Sample("node", {"device": "n1", "site": "s", "hall": "h1", **tags}, {"temp_c": t},
                                      T0 + i * S)])
    return out


def test_labels_are_the_identity_and_do_not_move_with_the_value():
    fired, resolved = _events([85.0, 70.0], {"psu-id": "2"})
    again = _events([99.0], {"psu-id": "2"})[0]
    assert alert_labels(fired) == alert_labels(resolved) == alert_labels(again)
    assert alert_labels(fired) == {"alertname": "psu-hot", "severity": "major", "team": "compute", "site": "s",
                                   "hall": "h1", "device": "n1", "psu_id": "2", "fingerprint": fired["fingerprint"]}
    body = postable_alert(fired, alert_labels(fired), link="https://g/d/x")
    assert "endsAt" not in body  # the sender fills it at send time
    assert body["annotations"]["value"] == "85.0" and body["generatorURL"] == "https://g/d/x"
    done = postable_alert(resolved, alert_labels(resolved), ends_ns=resolved["time_ns"])
    assert done["endsAt"] == resolved["time"] and done["startsAt"] == fired["since"]


def test_suppressed_mark():
    fired = _events([85.0], {})[0]
    fired["suppressed_by"] = "abc,def"
    labels = alert_labels(fired)
    assert labels["suppressed"] == "true" and labels["suppressed_by_fp"] == "abc,def"


def test_silence_body_and_ownership():
    body = silence_body("engine-0", "s-1", {"rule": "psu-*", "hall": "h1"}, starts_ns=T0, ends_ns=T0 + 3600 * S,
                        author="amina", comment="swap")
    assert sorted(body["matchers"], key=lambda m: m["name"]) == [
        {"name": "alertname", "value": r"psu\-.*", "isRegex": True, "isEqual": True},
        {"name": "hall", "value": "h1", "isRegex": False, "isEqual": True},
    ]
    assert owned_silence_key(body["comment"]) == ("engine-0", "s-1")
    assert owned_silence_key("a person's silence") is None
    other = silence_body("engine-1", "s-9", {"hall": "h1", "rule": "psu-*"}, starts_ns=T0, ends_ns=T0 + 3630 * S,
                         author="amina", comment="swap")
    assert same_silence(body, other)  # the other replica's copy does the same job
    later = silence_body("engine-1", "s-9", {"hall": "h1", "rule": "psu-*"}, starts_ns=T0, ends_ns=T0 + 7200 * S,
                         author="amina", comment="swap")
    assert not same_silence(body, later)
