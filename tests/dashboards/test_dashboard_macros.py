"""Grafana macro substitution (pure), checked against hand-written expected text."""
from __future__ import annotations

import datetime as dt

import pytest

from dashboards.queries import auto_interval, parse_time, referenced_variables, substitute


def test_substitute_macros_and_multi_value_variables():
    q = 'SELECT mean("x") FROM "pdu" WHERE "rack" =~ /^$rack$/ AND "hall" =~ /^${hall}$/ AND $timeFilter ' \
        'GROUP BY time($__interval) fill(none)'
    got = substitute(q, 1000, 2000, "10s", {"rack": ["k1", "k.2"], "hall": ["h1"]})
    assert got == ('SELECT mean("x") FROM "pdu" WHERE "rack" =~ /^(k1|k\\.2)$/ AND "hall" =~ /^h1$/ AND '
                   'time >= 1000ms and time <= 2000ms GROUP BY time(10s) fill(none)')


def test_empty_variable_matches_nothing_and_unknown_variable_is_named():
    assert substitute("/^$row$/", 0, 1, "1s", {"row": []}) == "/^[^\\s\\S]$/"
    with pytest.raises(KeyError, match=r"\$nope"):
        substitute("WHERE x =~ /$nope/", 0, 1, "1s", {})


def test_referenced_variables_ignore_builtins():
    assert referenced_variables("$timeFilter $__interval $hall ${rack:regex} $__interval_ms") == {"hall", "rack"}


@pytest.mark.parametrize("span_s,expected", [(3600, "15s"), (6 * 3600, "120s"), (60, "1s"), (30 * 86400, "10800s")])
def test_auto_interval_rounds_up(span_s, expected):
    assert auto_interval(0, span_s * 1000) == expected


def test_parse_time_forms():
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
    ms = int(now.timestamp() * 1000)
    assert parse_time("now", now) == ms
    assert parse_time("now-6h", now) == ms - 6 * 3_600_000
    assert parse_time("2026-11-25T12:00:00Z", now) == ms
    assert parse_time(str(ms), now) == ms
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday", now)
