"""Property: whatever panel sizes a dashboard has, the layout never overlaps or leaves 24 columns."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboards.builder import Dashboard, Datasource, Panel, Row, Target

sizes = st.lists(st.tuples(st.integers(1, 24), st.integers(1, 12)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(sizes, min_size=1, max_size=4))
def test_layout_never_overlaps(rows):
    dash = Dashboard("u", "t", [Row(f"r{i}", [Panel(f"p{i}-{j}", "timeseries", [Target("SELECT 1 WHERE $timeFilter")],
                                                    width=w, height=h) for j, (w, h) in enumerate(r)])
                               for i, r in enumerate(rows)])
    body = dash.to_json(Datasource())
    cells: set[tuple[int, int]] = set()
    ids = [p["id"] for p in body["panels"]]
    assert len(ids) == len(set(ids)) == sum(len(r) for r in rows) + len(rows)
    for p in body["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (mine & cells)
        cells |= mine
    # panels keep their row's order top-to-bottom, left-to-right
    order = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in body["panels"]]
    assert order == sorted(order)


def test_bad_panel_and_uid_are_refused():
    import pytest

    with pytest.raises(ValueError, match="width 25"):
        Panel("wide", "stat", [Target("SELECT 1")], width=25)
    with pytest.raises(ValueError, match="no query"):
        Panel("empty", "stat", [])
    with pytest.raises(ValueError, match="1..40"):
        Dashboard("x" * 41, "t", [])
