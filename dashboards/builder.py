"""A small typed builder for Grafana dashboards (JSON model, schemaVersion 39).

Why a builder and not hand-written JSON: the dashboards are generated from the
inventory (halls, meters, roles), and the things that make Grafana silently
show nothing (duplicate panel ids, overlapping ``gridPos``, a datasource uid
that is not provisioned, a template variable that does not exist) are decided
in one place, :meth:`Dashboard.to_json`, instead of in every dashboard.

Layout: panels flow left to right in 24 columns; a panel that does not fit
starts a new line below the tallest panel of the current line.  A :class:`Row`
is a full-width Grafana row header followed by its panels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SCHEMA_VERSION", "GRID_COLUMNS", "Datasource", "Target", "Panel", "Row", "Variable", "Annotation",
           "Dashboard", "PanelType"]

SCHEMA_VERSION = 39
GRID_COLUMNS = 24
PanelType = Literal["timeseries", "stat", "gauge", "bargauge", "table", "state-timeline"]


@dataclass(frozen=True)
class Datasource:
    uid: str = "iozera-influxdb"
    type: str = "influxdb"
    name: str = "Iozera InfluxDB"

    def ref(self) -> dict[str, str]:
        return {"type": self.type, "uid": self.uid}


@dataclass
class Target:
    """One InfluxQL query (raw mode).  ``alias`` may use ``$tag_<name>`` like Grafana."""

    query: str
    alias: str | None = None
    result_format: Literal["time_series", "table"] = "time_series"

    def to_json(self, ref_id: str, ds: Datasource) -> dict[str, Any]:
        out: dict[str, Any] = {"refId": ref_id, "datasource": ds.ref(), "query": self.query, "rawQuery": True,
                               "resultFormat": self.result_format}
        if self.alias:
            out["alias"] = self.alias
        return out


@dataclass
class Panel:
    title: str
    type: PanelType
    targets: list[Target]
    width: int = 12
    height: int = 8
    unit: str | None = None
    description: str = ""
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    #: (value, colour) steps; the first value is the base (None)
    thresholds: list[tuple[float | None, str]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.width <= GRID_COLUMNS:
            raise ValueError(f"panel {self.title!r}: width {self.width} outside 1..{GRID_COLUMNS}")
        if not self.targets:
            raise ValueError(f"panel {self.title!r} has no query")

    def to_json(self, panel_id: int, grid: dict[str, int], ds: Datasource) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.thresholds:
            defaults["thresholds"] = {"mode": "absolute",
                                      "steps": [{"color": c, "value": v} for v, c in self.thresholds]}
        if self.mappings:
            defaults["mappings"] = self.mappings
        refs = [chr(ord("A") + i) for i in range(len(self.targets))]
        out: dict[str, Any] = {
            "id": panel_id, "type": self.type, "title": self.title, "gridPos": grid,
            "datasource": ds.ref(),
            "targets": [t.to_json(r, ds) for t, r in zip(self.targets, refs)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": dict(self.options),
        }
        if self.description:
            out["description"] = self.description
        if self.transformations:
            out["transformations"] = self.transformations
        return out


@dataclass
class Row:
    title: str
    panels: list[Panel]


@dataclass
class Variable:
    """A query template variable (InfluxQL ``SHOW TAG VALUES``); chain by referencing ``$parent``."""

    name: str
    query: str
    label: str | None = None
    multi: bool = True
    include_all: bool = True
    #: Grafana's refresh: 1 on dashboard load, 2 on every time-range change
    refresh: int = 1
    description: str = ""

    def to_json(self, ds: Datasource) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label or self.name, "type": "query", "datasource": ds.ref(),
            "description": self.description,
            "query": self.query, "definition": self.query, "refresh": self.refresh, "multi": self.multi,
            "includeAll": self.include_all, "allValue": ".*" if self.include_all else None, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if self.include_all else {},
            "options": [], "hide": 0, "regex": "", "skipUrlSync": False,
        }


@dataclass
class Annotation:
    """InfluxDB (InfluxQL) annotation: one event per row of ``query``."""

    name: str
    query: str
    text_column: str
    tags_column: str = ""
    color: str = "red"

    def to_json(self, ds: Datasource) -> dict[str, Any]:
        return {"name": self.name, "datasource": ds.ref(), "enable": True, "hide": False,
                "iconColor": self.color, "query": self.query, "textColumn": self.text_column,
                "tagsColumn": self.tags_column, "titleColumn": ""}


_BUILTIN_ANNOTATION = {
    "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
}


@dataclass
class Dashboard:
    uid: str
    title: str
    rows: list[Row]
    tags: list[str] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    description: str = ""
    time_from: str = "now-6h"
    time_to: str = "now"
    refresh: str = "30s"

    def __post_init__(self) -> None:
        if not 1 <= len(self.uid) <= 40:
            raise ValueError(f"dashboard uid {self.uid!r}: Grafana uids are 1..40 characters")

    def panels(self) -> list[Panel]:
        return [p for r in self.rows for p in r.panels]

    def to_json(self, ds: Datasource) -> dict[str, Any]:
        panels: list[dict[str, Any]] = []
        next_id = 1
        y = 0
        for row in self.rows:
            panels.append({"id": next_id, "type": "row", "title": row.title, "collapsed": False, "panels": [],
                           "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y}})
            next_id += 1
            y += 1
            x, line_h = 0, 0
            for p in row.panels:
                if x + p.width > GRID_COLUMNS:
                    y += line_h
                    x, line_h = 0, 0
                panels.append(p.to_json(next_id, {"h": p.height, "w": p.width, "x": x, "y": y}, ds))
                next_id += 1
                x += p.width
                line_h = max(line_h, p.height)
            y += line_h
        return {
            "uid": self.uid, "title": self.title, "tags": list(self.tags), "description": self.description,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
            "timezone": "browser", "refresh": self.refresh, "liveNow": False, "fiscalYearStartMonth": 0,
            "time": {"from": self.time_from, "to": self.time_to}, "timepicker": {},
            "templating": {"list": [v.to_json(ds) for v in self.variables]},
            "annotations": {"list": [dict(_BUILTIN_ANNOTATION)] + [a.to_json(ds) for a in self.annotations]},
            "links": [], "panels": panels,
        }
