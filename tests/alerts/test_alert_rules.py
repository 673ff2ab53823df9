"""Rule files: the shipped set loads against the example site; errors name file:line and field."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import RuleError, load_rules, load_rules_text

SITE_RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules" / "site.yaml"


def test_shipped_rules_load_and_are_indexed():
    rs = load_rules(SITE_RULES)
    assert len(rs) >= 10
    assert rs.by_name["ups-on-battery"].explains == ["power"]
    assert any(r.name == "ups-on-battery" for r in rs.by_field[("ups", "state")])
    assert {r.kind for r in rs.timers} == {"stale", "absent"}


@pytest.mark.parametrize(
    "body, line, field, words",
    [
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    threshold: hot\n", 2, "rules[0]", "numeric threshold"),
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    op: '>'\n    threshold: 5\n    clear: 6\n", 2, "rules[0]", "must not be above"),
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    threshold: 5\n    severity: loud\n", 6, "rules[0].severity", "critical"),
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    threshold: 5\n    colour: red\n", 6, "rules[0].colour", "unknown field"),
        ("rules:\n  - name: a\n    kind: stale\n    measurement: pdu\n", 2, "rules[0]", "stale_after_s"),
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    op: outside\n", 2, "rules[0]", "band"),
        ("rules:\n  - name: a\n    measurement: pdu\n    field: x\n    threshold: 1\n  - name: a\n    measurement: pdu\n    field: y\n    threshold: 1\n",
         6, "rules[1].name", "duplicate"),
        ("rules:\n  - name: 'a/b'\n    measurement: pdu\n    field: x\n    threshold: 1\n", 2, "rules[0].name", "topic"),
        ("rules:\n  - name: a\n    measurement: [pdu\n", 4, "", "YAML syntax"),
    ],
)
def test_rule_errors_name_file_line_and_field(body, line, field, words):
    with pytest.raises(RuleError) as info:
        load_rules_text(body, "rules/bad.yaml")
    issue = info.value.issues[0]
    text = str(issue)
    assert text.startswith(f"rules/bad.yaml:{line}: "), text
    assert issue.field == field, text
    assert words in text, text


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "cannot read" in str(info.value)


def test_kind_index_selects_the_devices_a_scan_of_the_site_selects():
    """compile_select with the engine's kind index (start-up cost) picks exactly what a scan picks,
    for every shipped rule and for globbed, listed and label selectors."""
    from alerts.rules import load_rules, load_rules_text
    from alerts.selectors import compile_select, devices_by_kind
    from localservers.site import EXAMPLE_SITE
    from inventory.loader import load_site

    site = load_site(EXAMPLE_SITE)
    by_kind = devices_by_kind(site)
    extra = load_rules_text(
        "rules:\n"
        "  - {name: a, measurement: pdu, field: current_a, threshold: 1, select: {kind: [pdu, ups, pdu]}}\n"
        "  - {name: b, measurement: pdu, field: current_a, threshold: 1, select: {kind: 'p*'}}\n"
        "  - {name: c, measurement: pdu, field: current_a, threshold: 1, select: {kind: pdu, hall: h1}}\n"
        "  - {name: d, measurement: pdu, field: current_a, threshold: 1, select: {kind: no-such-kind}}\n", "t")
    rules = load_rules("alerts/rules/site.yaml").rules + extra.rules
    chosen = {r.name: compile_select(r, site, by_kind).ids for r in rules}
    assert chosen == {r.name: compile_select(r, site).ids for r in rules}
    assert chosen["a"] and chosen["b"] and chosen["d"] == frozenset()
