"""The Iozera dashboards, generated from the inventory.

The inventory decides what each query selects: which meters are the facility
boundary, which are IT (and at which ISO/IEC 30134-2 category), which are
renewable.  A site file change therefore changes the dashboards the next time
they are built, and a query never hard-codes a device id that the inventory
does not contain.

Every query is InfluxQL against the collectors' and derived-metrics'
measurements (docs/conventions.md), with ``$timeFilter``, ``$__interval`` and
``fill(none)`` so Grafana controls the range and resolution.

Time-series queries (``GROUP BY time(…)``) read the storage tier that fits the
dashboard's time span (``"$tier"."<measurement>"``, docs/storage.md): raw for
hours, the 1-minute rollup for days, the hourly rollup beyond.  Rollups keep a
gauge's mean and a counter's last value under the field's own name, so the
query text is the same on every tier; latest-value stats and tables and the
alert annotations read raw.
"""
from __future__ import annotations

import re
from pathlib import Path

from contract import alert_event as ev
from contract import cooling as C
from contract import derived as D
from contract import poll
from contract import tags as T
from contract.measurements import METER
from contract import writer as W
from contract.states import LEAK, PUMP, UPS_OUTPUT, VOCABULARIES
from inventory.loops import LoopIndex
from inventory.model import Device, Site

from dashboards.builder import Annotation, Dashboard, Panel, Row, Target, Variable
from storage.influxql import literal, tier_variable_query

__all__ = ["build_dashboards", "meters_by_role", "DASHBOARD_KEYS", "device_link", "headroom_margins", "capacity_levels"]

DASHBOARD_KEYS = ("noc", "power", "cooling", "liquid", "gpu", "energy", "capacity")

_PUE_STEPS: list[tuple[float | None, str]] = [(None, "green"), (1.3, "yellow"), (1.6, "red")]
_LOAD_STEPS: list[tuple[float | None, str]] = [(None, "green"), (70.0, "yellow"), (85.0, "red")]
_GPU_TEMP_STEPS: list[tuple[float | None, str]] = [(None, "green"), (80.0, "yellow"), (87.0, "red")]
_HALL_RACK = f'"{T.HALL}" =~ /^$hall$/ AND "{T.ROW}" =~ /^$row$/ AND "{T.RACK}" =~ /^$rack$/'


def _regex(ids: list[str]) -> str:
    return "/^(" + "|".join(re.escape(i).replace("/", "\\/") for i in ids) + ")$/"


def meters_by_role(site: Site) -> dict[str, list[Device]]:
    """Meters keyed ``boundary``, ``it1``/``it2``/``it3``, ``renewable``, ``water``, ..."""
    out: dict[str, list[Device]] = {}
    for d in site.all_devices():
        if d.kind == "meter" and d.meter is not None:
            key = f"it{d.meter.category}" if d.meter.role == "it" else d.meter.role
            out.setdefault(key, []).append(d)
    return out


def _uid(site: Site, key: str) -> str:
    return f"{site.site.id[:28]}-{key}"


def _site_filter(site: Site) -> str:
    return f'"{T.SITE}" = {literal(site.site.id)}'


#: colour per state word (contract.states); a word not listed shows grey
_STATE_COLOUR = {"normal": "green", "battery": "red", "bypass": "orange", "boost": "yellow", "buck": "yellow",
                 "off": "dark-red", "other": "blue", "dry": "green", "leak": "red", "fault": "orange",
                 "running": "green", "standby": "blue"}


def _state_colours(vocabulary: str) -> list[dict]:
    """Grafana value mappings for a state-timeline: every word of the vocabulary, coloured."""
    words = VOCABULARIES[vocabulary]
    return [{"type": "value", "options": {w: {"color": _STATE_COLOUR.get(w, "gray"), "index": i}
                                          for i, w in enumerate(words)}}]


def _firing_alerts(site: Site) -> str:
    """The WHERE clause of every alert query: this site's firing events (contract.alert_event)."""
    return f'{_site_filter(site)} AND "{ev.STATE}" = {literal(ev.FIRING)} AND $timeFilter'


def _alert_annotation(site: Site) -> Annotation:
    tags = (ev.RULE, ev.SEVERITY, ev.DEVICE)
    columns = ", ".join(f'"{c}"' for c in (ev.SUMMARY, *tags))
    return Annotation("Alerts", f'SELECT {columns} FROM "{ev.ALERT_MEASUREMENT}" WHERE {_firing_alerts(site)}',
                      text_column=ev.SUMMARY, tags_column=",".join(tags))


def noc_overview(site: Site) -> Dashboard:
    s = _site_filter(site)
    site_level = f'{s} AND "{T.HALL}" = \'\''
    top = Row("Site", [
        Panel("PUE (instantaneous)", "stat", [Target(
            f'SELECT last("{D.PUE_VALUE}") AS "PUE" FROM "{D.PUE}" WHERE {site_level} AND "{D.PUE_KIND}" = {literal(D.INSTANTANEOUS)} AND $timeFilter')],
            width=4, height=6, decimals=2, thresholds=_PUE_STEPS,
            description="Facility power / IT power (ISO/IEC 30134-2, lowest category with data)."),
        Panel("Facility, IT and renewable power", "stat", [Target(
            f'SELECT last("{D.FACILITY_W}") AS "Facility", last("{D.IT_W}") AS "IT", last("{D.RENEWABLE_W}") AS "Renewable" '
            f'FROM "{D.SITE_POWER}" WHERE {site_level} AND $timeFilter')], width=8, height=6, unit="watt"),
        Panel("PUE trend", "timeseries", [Target(
            f'SELECT mean("{D.PUE_VALUE}") AS "PUE", mean("{D.PPUE_COOLING}") AS "pPUE cooling" FROM "{D.PUE}" WHERE {site_level} '
            f'AND "{D.PUE_KIND}" = {literal(D.INSTANTANEOUS)} AND $timeFilter GROUP BY time($__interval) fill(none)')],
            width=12, height=6, decimals=2),
        Panel("Facility vs IT power", "timeseries", [Target(
            f'SELECT mean("{D.FACILITY_W}") AS "Facility", mean("{D.IT_W}") AS "IT", mean("{D.COOLING_W}") AS "Cooling" '
            f'FROM "{D.SITE_POWER}" WHERE {site_level} AND $timeFilter GROUP BY time($__interval) fill(none)')],
            width=12, unit="watt"),
        Panel("Inputs missing from derived metrics", "timeseries", [Target(
            f'SELECT max("{D.MISSING}") AS "missing inputs" FROM "{D.SITE_POWER}" WHERE {site_level} AND $timeFilter '
            f'GROUP BY time($__interval) fill(none)')], width=12, decimals=0,
            description="Meters/devices expected by the PUE computation that had no fresh reading."),
    ])
    halls = Row("Halls", [
        Panel("Hall load vs capacity", "bargauge", [Target(
            f'SELECT last("{D.LOAD_PCT}") FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_HALL)} AND $timeFilter GROUP BY "{D.ID}"',
            alias=f"$tag_{D.ID}")], width=12, unit="percent", min=0, max=100, thresholds=_LOAD_STEPS,
            options={"orientation": "horizontal", "displayMode": "gradient"}),
        Panel("Hall capacity", "table", [Target(
            f'SELECT last("{D.LOAD_W}") AS "load W", last("{D.RATED_W}") AS "rated W", last("{D.HEADROOM_W}") AS "headroom W" '
            f'FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_HALL)} AND $timeFilter GROUP BY "{D.ID}"',
            result_format="table")], width=12, unit="watt"),
    ])
    ops = Row("Alerts and collection", [
        Panel("Alerts firing in range", "table", [Target(
            f'SELECT last("{ev.SUMMARY}") AS "{ev.SUMMARY}", count("{ev.SUMMARY}") AS "events" '
            f'FROM "{ev.ALERT_MEASUREMENT}" WHERE {_firing_alerts(site)} '
            f'GROUP BY "{ev.RULE}", "{ev.SEVERITY}", "{ev.DEVICE}"',
            result_format="table")], width=12,
            description="Last firing event per rule and device in the time range (measurement alert)."),
        Panel("Slowest poll per protocol", "timeseries", [Target(
            f'SELECT max("{poll.DURATION_MS}") FROM "{poll.POLL_MEASUREMENT}" WHERE {s} AND $timeFilter '
            f'GROUP BY time($__interval), "{poll.PROTOCOL}" fill(none)', alias=f"$tag_{poll.PROTOCOL}")],
            width=12, unit="ms"),
        Panel("Writer: points dropped and spooled", "table", [Target(_writer_losses(s), result_format="table")],
              width=24, decimals=0,
              description="Points the InfluxDB writer could not keep in the range, by reason, and its spool now, "
                          "per collector shard (measurement writer, docs/reliability.md). Non-zero drops are data "
                          "missing from every other panel."),
    ])
    return Dashboard(_uid(site, "noc"), f"{site.site.name or site.site.id} — NOC overview", [top, halls, ops],
                     tags=["iozera", site.site.id, "noc"], annotations=[_alert_annotation(site)],
                     description="PUE, facility/IT power, hall loads and alerts at a glance.")


_DROP_LABELS = {W.DROP_DISK_FULL: "dropped: disk full", W.DROP_READ_ONLY: "dropped: read-only disk",
                W.DROP_POLICY: "dropped: spool cap", W.DROP_OTHER: "dropped: other"}


def _writer_losses(site_filter: str) -> str:
    """Sums of the per-sample drop counts over the range (exact, read raw) and the spool's last state."""
    drops = ", ".join(f'sum("{W.dropped_field(k)}") AS "{label}"' for k, label in _DROP_LABELS.items())
    return (f'SELECT {drops}, last("{W.SPOOLING}") AS "spooling", last("{W.SPOOL_POINTS}") AS "spooled points", '
            f'last("{W.SPOOL_BYTES}") AS "spool bytes", last("{W.SPOOL_ERROR}") AS "spool error" '
            f'FROM "{W.WRITER_MEASUREMENT}" WHERE {site_filter} AND $timeFilter GROUP BY "{W.SHARD}"')


def _location_variables(site: Site) -> list[Variable]:
    s = _site_filter(site)
    return [
        Variable("hall", f'SHOW TAG VALUES FROM "{D.CAPACITY}" WITH KEY = "{T.HALL}" WHERE {s}', "Hall"),
        Variable("row", f'SHOW TAG VALUES FROM "{D.CAPACITY}" WITH KEY = "{T.ROW}" WHERE {s} AND "{T.HALL}" =~ /^$hall$/', "Row"),
        Variable("rack", f'SHOW TAG VALUES FROM "{D.CAPACITY}" WITH KEY = "{T.RACK}" WHERE {s} AND "{T.HALL}" =~ /^$hall$/ '
                         f'AND "{T.ROW}" =~ /^$row$/', "Rack"),
    ]


def power_chain(site: Site) -> Dashboard:
    s = _site_filter(site)
    racks = Row("Racks", [
        Panel("Rack load vs rating", "bargauge", [Target(
            f'SELECT last("{D.LOAD_PCT}") FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_RACK)} AND {_HALL_RACK} '
            f'AND $timeFilter GROUP BY "{D.ID}"', alias=f"$tag_{D.ID}")], width=12, unit="percent", min=0, max=100,
            thresholds=_LOAD_STEPS, options={"orientation": "horizontal", "displayMode": "gradient"}),
        Panel("Rack headroom (redundancy-aware)", "timeseries", [Target(
            f'SELECT mean("{D.HEADROOM_W}") FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_RACK)} AND {_HALL_RACK} '
            f'AND $timeFilter GROUP BY time($__interval), "id" fill(none)', alias=f"$tag_{D.ID}")], width=12, unit="watt",
            description="2N: one side's rating minus both sides' load; N+1: all but the largest unit."),
    ])
    pdus = Row("PDUs", [
        Panel("Per-phase current", "timeseries", [Target(
            f'SELECT mean("current_a") FROM "pdu" WHERE {s} AND {_HALL_RACK} AND "{T.PHASE}" =~ /./ AND "outlet" = \'\' '
            f'AND $timeFilter GROUP BY time($__interval), "{T.DEVICE}", "{T.PHASE}" fill(none)',
            alias=f"$tag_{T.DEVICE} L$tag_{T.PHASE}")], width=12, unit="amp"),
        Panel("Phase imbalance", "table", [Target(
            f'SELECT (max("a") - min("a")) / mean("a") * 100 AS "imbalance %" FROM (SELECT last("current_a") AS "a" '
            f'FROM "pdu" WHERE {s} AND {_HALL_RACK} AND "{T.PHASE}" =~ /./ AND "outlet" = \'\' AND $timeFilter '
            f'GROUP BY "{T.DEVICE}", "{T.PHASE}") WHERE $timeFilter GROUP BY "{T.DEVICE}"', result_format="table")],
            width=12, unit="percent", decimals=1,
            description="(max - min) / mean of the latest phase currents of each PDU."),
        Panel("PDU load vs rating", "bargauge", [Target(
            f'SELECT last("{D.LOAD_PCT}") FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_PDU)} AND {_HALL_RACK} '
            f'AND $timeFilter GROUP BY "{D.ID}"', alias=f"$tag_{D.ID}")], width=12, unit="percent", min=0, max=100,
            thresholds=_LOAD_STEPS, options={"orientation": "horizontal", "displayMode": "gradient"}),
        Panel("Top outlets", "table", [Target(
            f'SELECT last("power_w") AS "W" FROM "pdu" WHERE {s} AND {_HALL_RACK} AND "outlet" =~ /./ '
            f'AND $timeFilter GROUP BY "{T.DEVICE}", "outlet", "feeds"', result_format="table")], width=12, unit="watt"),
        # outlet samples carry `feeds` (the node the outlet feeds, from the inventory's fed_by):
        # the node's input from all its feeds beside the power its GPUs report
        Panel("Node input (PDU outlets) vs GPU power", "timeseries", [
            Target(f'SELECT sum("w") FROM (SELECT mean("power_w") AS "w" FROM "pdu" WHERE {s} AND {_HALL_RACK} '
                   f'AND "feeds" =~ /./ AND $timeFilter GROUP BY time($__interval), "{T.DEVICE}", "outlet", "feeds") '
                   f'WHERE $timeFilter GROUP BY time($__interval), "feeds" fill(none)', alias="$tag_feeds outlets"),
            Target(f'SELECT sum("w") FROM (SELECT mean("power_w") AS "w" FROM "gpu" WHERE {s} AND {_HALL_RACK} '
                   f'AND $timeFilter GROUP BY time($__interval), "{T.DEVICE}", "gpu") '
                   f'WHERE $timeFilter GROUP BY time($__interval), "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE} GPUs"),
        ], width=24, unit="watt", description="Per node: AC input summed over the outlets that feed it (2N: both "
                                                "sides) and the DC power of its GPUs; the gap is host, fans and PSU loss."),
    ])
    ups_out = '"stage" = \'output\''
    upses = Row("UPS", [
        Panel("UPS output load", "timeseries", [Target(
            f'SELECT mean("load_pct") FROM "ups" WHERE {s} AND "{T.HALL}" =~ /^$hall$/ AND {ups_out} AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}", "{T.PHASE}" fill(none)', alias=f"$tag_{T.DEVICE} $tag_{T.PHASE}")],
            width=12, unit="percent", min=0, max=100),
        Panel("UPS capacity and group headroom", "table", [Target(
            f'SELECT last("{D.LOAD_W}") AS "load W", last("{D.RATED_W}") AS "rated W", last("{D.HEADROOM_W}") AS "headroom W", '
            f'last("{D.REDUNDANCY}") AS "redundancy" FROM "{D.CAPACITY}" WHERE {s} AND "{D.LEVEL}" = {literal(D.LEVEL_UPS)} '
            f'AND "{T.HALL}" =~ /^$hall$/ AND $timeFilter GROUP BY "{D.ID}"', result_format="table")], width=12),
        Panel("UPS output state", "state-timeline", [Target(
            f'SELECT last("state") FROM "ups" WHERE {s} AND "{T.HALL}" =~ /^$hall$/ AND {ups_out} AND "{T.PHASE}" = \'\' '
            f'AND $timeFilter GROUP BY time($__interval), "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE}")], width=24,
            height=5, mappings=_state_colours(UPS_OUTPUT)),
    ])
    return Dashboard(_uid(site, "power"), f"{site.site.id} — power chain", [racks, pdus, upses],
                     tags=["iozera", site.site.id, "power"], variables=_location_variables(site),
                     annotations=[_alert_annotation(site)],
                     description="Hall → row → rack drill-down: loads, phase balance, headroom, UPS.")


def cooling(site: Site) -> Dashboard:
    s = _site_filter(site)
    plant = Row("Chiller plant", [
        Panel("Chilled water temperatures", "timeseries", [Target(
            f'SELECT mean("temp_c") FROM "chiller" WHERE {s} AND "sensor" =~ /./ AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}", "sensor" fill(none)', alias=f"$tag_{T.DEVICE} $tag_sensor")],
            width=12, unit="celsius"),
        Panel("Chilled water ΔT (return − supply)", "timeseries", [Target(
            f'SELECT mean("r") - mean("s") AS "dT" FROM '
            f'(SELECT mean("temp_c") AS "r" FROM "chiller" WHERE {s} AND "sensor" =~ /return/ AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}"), '
            f'(SELECT mean("temp_c") AS "s" FROM "chiller" WHERE {s} AND "sensor" =~ /supply/ AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}") '
            f'WHERE $timeFilter GROUP BY time($__interval), "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE}")],
            width=12, unit="celsius"),
        Panel("Chiller capacity", "timeseries", [Target(
            f'SELECT mean("capacity_pct") FROM "chiller" WHERE {s} AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE}")], width=12, unit="percent"),
        Panel("Cooling power and pPUE", "timeseries", [
            Target(f'SELECT mean("{D.COOLING_W}") AS "cooling W" FROM "{D.SITE_POWER}" WHERE {s} AND "{T.HALL}" = \'\' '
                   f'AND $timeFilter GROUP BY time($__interval) fill(none)'),
            Target(f'SELECT mean("{D.PPUE_COOLING}") AS "pPUE cooling" FROM "{D.PUE}" WHERE {s} AND "{T.HALL}" = \'\' '
                   f'AND $timeFilter GROUP BY time($__interval) fill(none)')], width=12),
    ])
    cdus = Row("CDUs and air", [
        Panel("CDU loop temperatures", "timeseries", [
            Target(f'SELECT mean("{C.SUPPLY_TEMP_C}") FROM "{C.CDU}" WHERE {s} AND "{C.SIDE}" =~ /./ AND $timeFilter '
                   f'GROUP BY time($__interval), "{T.DEVICE}", "{C.SIDE}", "{C.LOOP}" fill(none)',
                   alias=f"$tag_{T.DEVICE} $tag_{C.SIDE} $tag_{C.LOOP} supply"),
            Target(f'SELECT mean("{C.RETURN_TEMP_C}") FROM "{C.CDU}" WHERE {s} AND "{C.SIDE}" =~ /./ AND $timeFilter '
                   f'GROUP BY time($__interval), "{T.DEVICE}", "{C.SIDE}", "{C.LOOP}" fill(none)',
                   alias=f"$tag_{T.DEVICE} $tag_{C.SIDE} $tag_{C.LOOP} return")],
            width=12, unit="celsius"),
        Panel("CDU flow", "timeseries", [Target(
            f'SELECT mean("{C.FLOW_LPM}") FROM "{C.CDU}" WHERE {s} AND "{C.SIDE}" =~ /./ AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}", "{C.SIDE}", "{C.LOOP}" fill(none)',
            alias=f"$tag_{T.DEVICE} $tag_{C.SIDE} $tag_{C.LOOP}")],
            width=12, unit="flowlpm"),
        Panel("CDU leak detection", "state-timeline", [Target(
            f'SELECT last("{C.STATE}") FROM "{C.CDU}" WHERE {s} AND "{C.DETECTOR}" =~ /./ AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}", "{C.DETECTOR}" fill(none)',
            alias=f"$tag_{T.DEVICE} $tag_{C.DETECTOR}")], width=12, height=5, mappings=_state_colours(LEAK)),
        Panel("CRAH cooling output", "timeseries", [Target(
            f'SELECT mean("cooling_output_w") FROM "crah" WHERE {s} AND $timeFilter '
            f'GROUP BY time($__interval), "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE}")], width=12, unit="watt"),
        Panel("Rack inlet temperature", "timeseries", [Target(
            f'SELECT max("temp_c") FROM "env" WHERE {s} AND $timeFilter '
            f'GROUP BY time($__interval), "{T.RACK}" fill(none)', alias=f"$tag_{T.RACK}")], width=24, unit="celsius",
            thresholds=[(None, "green"), (27.0, "yellow"), (32.0, "red")]),
    ])
    return Dashboard(_uid(site, "cooling"), f"{site.site.id} — cooling", [plant, cdus],
                     tags=["iozera", site.site.id, "cooling"], annotations=[_alert_annotation(site)],
                     description="Chillers, CDUs, supply/return and ΔT, flow, leaks, rack inlet air.")


def liquid_cooling(site: Site) -> Dashboard:
    """Per CDU and loop: the coolant side (supply/return, ΔT, flow, ΔP, pumps, leaks, the derived
    loop health) beside the GPUs it cools (temperatures and thermal clock events of the nodes on
    that loop).  Variables ``cdu`` and ``loop`` pick the loop; ``node`` lists the GPU nodes on it,
    which the derived job writes from the inventory (``cooling_loop_node``), so a dashboard of the
    full site stays one dashboard however many loops it has."""
    s = _site_filter(site)
    index = LoopIndex(site)
    n_loops = len(index.loops())
    n_nodes = sum(len(index.gpu_nodes_on(k)) for k in index.loops())
    this_cdu = f'"{T.DEVICE}" =~ /^$cdu$/'
    this_loop = f'{this_cdu} AND "{C.LOOP}" =~ /^$loop$/'
    secondary = f'{this_loop} AND "{C.SIDE}" = {literal(C.SECONDARY)}'
    on_loop = f'"{T.DEVICE}" =~ /^$node$/'
    by_time = "GROUP BY time($__interval)"
    variables = [
        Variable("cdu", f'SHOW TAG VALUES FROM "{D.COOLING_LOOP}" WITH KEY = "{T.DEVICE}" WHERE {s}', "CDU"),
        Variable("loop", f'SHOW TAG VALUES FROM "{D.COOLING_LOOP}" WITH KEY = "{C.LOOP}" WHERE {s} AND {this_cdu}', "Loop"),
        Variable("node", f'SHOW TAG VALUES FROM "{D.COOLING_LOOP_NODE}" WITH KEY = "{D.NODE}" WHERE {s} AND {this_loop}',
                 "GPU node", description="The GPU nodes on the selected loop(s), from the inventory."),
    ]
    coolant = Row("Loop: coolant", [
        Panel("Secondary supply and return", "timeseries", [
            Target(f'SELECT mean("{C.SUPPLY_TEMP_C}") FROM "{C.CDU}" WHERE {s} AND {secondary} AND $timeFilter '
                   f'{by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)', alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} supply"),
            Target(f'SELECT mean("{C.RETURN_TEMP_C}") FROM "{C.CDU}" WHERE {s} AND {secondary} AND $timeFilter '
                   f'{by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)', alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} return")],
            width=8, unit="celsius"),
        Panel("Primary (facility water) supply and return", "timeseries", [
            Target(f'SELECT mean("{C.SUPPLY_TEMP_C}") AS "supply", mean("{C.RETURN_TEMP_C}") AS "return" FROM "{C.CDU}" '
                   f'WHERE {s} AND {this_cdu} AND "{C.SIDE}" = {literal(C.PRIMARY)} AND $timeFilter '
                   f'{by_time}, "{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE} $col")], width=8, unit="celsius"),
        Panel("ΔT and approach", "timeseries", [Target(
            f'SELECT mean("{D.DELTA_T_C}") AS "ΔT", mean("{D.APPROACH_C}") AS "approach" FROM "{D.COOLING_LOOP}" '
            f'WHERE {s} AND {this_loop} AND $timeFilter {by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)',
            alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} $col")], width=8, unit="celsius",
            description="ΔT = secondary return − supply; approach = secondary supply − primary supply."),
        Panel("Flow and flow per kW of IT heat", "timeseries", [
            Target(f'SELECT mean("{D.LOOP_FLOW_LPM}") AS "flow" FROM "{D.COOLING_LOOP}" WHERE {s} AND {this_loop} '
                   f'AND $timeFilter {by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)', alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} L/min"),
            Target(f'SELECT mean("{D.FLOW_LPM_PER_KW}") AS "per kW" FROM "{D.COOLING_LOOP}" WHERE {s} AND {this_loop} '
                   f'AND $timeFilter {by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)',
                   alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} L/min per kW")], width=8),
        Panel("Differential pressure", "timeseries", [Target(
            f'SELECT mean("{C.DIFFERENTIAL_PRESSURE_KPA}") FROM "{C.CDU}" WHERE {s} AND {secondary} AND $timeFilter '
            f'{by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)', alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP}")],
            width=8, unit="kPa"),
        Panel("IT heat on the loop", "timeseries", [Target(
            f'SELECT mean("{D.IT_HEAT_W}") FROM "{D.COOLING_LOOP}" WHERE {s} AND {this_loop} AND $timeFilter '
            f'{by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)', alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP}")],
            width=8, unit="watt", description="Input power of the GPU nodes on the loop (the heat it must carry)."),
        Panel("Pumps", "state-timeline", [Target(
            f'SELECT last("{C.STATE}") FROM "{C.CDU}" WHERE {s} AND {this_cdu} AND "{C.PUMP}" =~ /./ AND $timeFilter '
            f'{by_time}, "{T.DEVICE}", "{C.PUMP}" fill(none)', alias=f"$tag_{T.DEVICE} pump $tag_{C.PUMP}")],
            width=8, height=5, mappings=_state_colours(PUMP)),
        Panel("Pump speed", "timeseries", [Target(
            f'SELECT mean("{C.SPEED_RPM}") FROM "{C.CDU}" WHERE {s} AND {this_cdu} AND "{C.PUMP}" =~ /./ AND $timeFilter '
            f'{by_time}, "{T.DEVICE}", "{C.PUMP}" fill(none)', alias=f"$tag_{T.DEVICE} pump $tag_{C.PUMP}")],
            width=8, height=5, unit="rotrpm"),
        Panel("Leak detectors", "state-timeline", [Target(
            f'SELECT last("{C.STATE}") FROM "{C.CDU}" WHERE {s} AND {this_cdu} AND "{C.DETECTOR}" =~ /./ AND $timeFilter '
            f'{by_time}, "{T.DEVICE}", "{C.DETECTOR}" fill(none)', alias=f"$tag_{T.DEVICE} detector $tag_{C.DETECTOR}")],
            width=8, height=5, mappings=_state_colours(LEAK)),
        Panel("Loop health", "table", [Target(
            f'SELECT last("{D.DEGRADED}") AS "degraded", last("{D.DEGRADED_REASON}") AS "why", '
            f'last("{D.GPUS_AT_RISK}") AS "GPUs at risk", last("{D.IT_HEAT_W}") AS "IT heat W" FROM "{D.COOLING_LOOP}" '
            f'WHERE {s} AND {this_loop} AND $timeFilter GROUP BY "{T.DEVICE}", "{C.LOOP}"', result_format="table")],
            width=24, height=5,
            description="degraded: pump_failed, leak, low_flow (for the heat), high_supply_temp (docs/conventions.md)."),
    ])
    gpus = Row("Loop: the GPUs it cools", [
        Panel("Hottest GPU per node on the loop", "timeseries", [Target(
            f'SELECT max("temp_c") FROM "gpu" WHERE {s} AND {on_loop} AND $timeFilter {by_time}, "{T.DEVICE}" fill(none)',
            alias=f"$tag_{T.DEVICE}")], width=12, unit="celsius",
            thresholds=_GPU_TEMP_STEPS),
        Panel("Thermal clock events per node on the loop", "timeseries", [Target(
            f'SELECT max("clock_event_reasons") FROM "gpu" WHERE {s} AND {on_loop} AND $timeFilter {by_time}, '
            f'"{T.DEVICE}" fill(none)', alias=f"$tag_{T.DEVICE}")], width=12,
            description="clock_event_reasons bitmask (max per node): 0x20 SW thermal, 0x40 HW thermal slowdown "
                        "(96 = both), 0x80 power brake, 0x4 SW power cap; 0 = running free."),
        Panel("GPUs hot and thermally throttled on the loop", "timeseries", [Target(
            f'SELECT max("{D.GPUS_HOT}") AS "hot", max("{D.GPUS_THROTTLED}") AS "throttled", max("{D.GPUS}") AS "reporting" '
            f'FROM "{D.COOLING_LOOP}" WHERE {s} AND {this_loop} AND $timeFilter {by_time}, "{T.DEVICE}", "{C.LOOP}" fill(none)',
            alias=f"$tag_{T.DEVICE}:$tag_{C.LOOP} $col")], width=12, decimals=0),
        Panel("Nodes on the loop", "table", [Target(
            f'SELECT last("{D.GPU_TEMP_MAX_C}") AS "hottest GPU °C", last("{D.GPUS_HOT}") AS "hot", '
            f'last("{D.GPUS_THROTTLED}") AS "throttled", last("{D.CLOCK_EVENT_REASONS}") AS "clock events" '
            f'FROM "{D.COOLING_LOOP_NODE}" WHERE {s} AND {this_loop} AND $timeFilter GROUP BY "{T.DEVICE}", "{C.LOOP}", '
            f'"{D.NODE}"', result_format="table")], width=12),
    ])
    return Dashboard(_uid(site, "liquid"), f"{site.site.id} — liquid cooling", [coolant, gpus],
                     tags=["iozera", site.site.id, "cooling", "liquid"], annotations=[_alert_annotation(site)],
                     variables=variables,
                     description=f"{n_loops} CDU loop(s) and the {n_nodes} GPU node(s) on them: coolant side by side "
                                 "with the GPUs it cools.")


def gpu_fleet(site: Site) -> Dashboard:
    s = _site_filter(site)
    fleet = Row("GPU fleet", [
        Panel("GPU power by rack", "timeseries", [Target(
            f'SELECT sum("p") FROM (SELECT mean("power_w") AS "p" FROM "gpu" WHERE {s} AND $timeFilter '
            f'GROUP BY time($__interval), "{T.RACK}", "uuid") WHERE $timeFilter GROUP BY time($__interval), "{T.RACK}" '
            f'fill(none)', alias=f"$tag_{T.RACK}")], width=12, unit="watt"),
        Panel("Hottest GPU per rack", "timeseries", [Target(
            f'SELECT max("temp_c") FROM "gpu" WHERE {s} AND $timeFilter GROUP BY time($__interval), "{T.RACK}" '
            f'fill(none)', alias=f"$tag_{T.RACK}")], width=12, unit="celsius",
            thresholds=_GPU_TEMP_STEPS),
        Panel("Throttle reasons (max per rack)", "timeseries", [Target(
            f'SELECT max("clock_event_reasons") FROM "gpu" WHERE {s} AND $timeFilter GROUP BY time($__interval), "{T.RACK}" '
            f'fill(none)', alias=f"$tag_{T.RACK}")], width=12,
            description="DCGM clock-event (throttle) reasons bitmask: 0x20 SW thermal, 0x40 HW thermal, "
                        "0x80 power brake, 0x4 SW power cap; 0 = running free."),
        Panel("XID errors by rack", "table", [Target(
            f'SELECT max("xid_last") AS "last XID (max)", count("xid_last") AS "samples" FROM "gpu" WHERE {s} '
            f'AND "xid_last" > 0 AND $timeFilter GROUP BY "{T.RACK}", "host"', result_format="table")], width=12,
            description="GPUs that reported a non-zero XID in the range (none listed: no XID)."),
        Panel("GPUs reporting", "stat", [Target(
            f'SELECT count("p") FROM (SELECT last("power_w") AS "p" FROM "gpu" WHERE {s} AND $timeFilter '
            f'GROUP BY "uuid") WHERE $timeFilter')], width=6, height=5,
            description=f"Inventory: {sum(d.gpus or 0 for d in site.all_devices())} GPUs."),
        Panel("Utilisation", "timeseries", [Target(
            f'SELECT mean("util_pct") FROM "gpu" WHERE {s} AND $timeFilter GROUP BY time($__interval), "{T.RACK}" '
            f'fill(none)', alias=f"$tag_{T.RACK}")], width=18, height=5, unit="percent"),
    ])
    return Dashboard(_uid(site, "gpu"), f"{site.site.id} — GPU fleet", [fleet],
                     tags=["iozera", site.site.id, "gpu"], annotations=[_alert_annotation(site)],
                     description="GPU power, temperature, throttling and XID errors by rack.")


def _daily_diff(alias: str, ids: list[str]) -> str:
    return (f'(SELECT difference(last("energy_kwh")) AS "{alias}" FROM "{METER}" WHERE "{T.DEVICE}" =~ {_regex(ids)} '
            f'AND "{T.PHASE}" = \'\' AND $timeFilter GROUP BY time(1d), "{T.DEVICE}")')


def energy(site: Site) -> Dashboard:
    """Daily energy and PUE from cumulative counters: ``difference(last(energy_kwh))`` per day and meter."""
    roles = meters_by_role(site)
    boundary = [d.id for d in roles.get("boundary", [])]
    it_meters = next(([d.id for d in roles[k]] for k in ("it1", "it2", "it3") if roles.get(k)), [])
    renewable = [d.id for d in roles.get("renewable", [])]
    s = _site_filter(site)
    panels: list[Panel] = []
    if boundary and it_meters:
        panels.append(Panel("Daily PUE (energy counters)", "timeseries", [Target(
            f'SELECT sum("f") / sum("i") AS "PUE" FROM {_daily_diff("f", boundary)}, {_daily_diff("i", it_meters)} '
            f'WHERE $timeFilter GROUP BY time(1d) fill(none)')], width=12, decimals=3, thresholds=_PUE_STEPS,
            options={"drawStyle": "bars"},
            description="Σ boundary kWh / Σ IT kWh per day (ISO/IEC 30134-2 annualisable PUE)."))
    else:
        panels.append(Panel("Daily PUE (derived power)", "timeseries", [Target(
            f'SELECT integral("{D.FACILITY_W}") / integral("{D.IT_W}") AS "PUE" FROM "{D.SITE_POWER}" WHERE {s} AND "{T.HALL}" = \'\' '
            f'AND $timeFilter GROUP BY time(1d) fill(none)')], width=12, decimals=3))
    energy_targets = []
    for alias, ids in (("facility kWh", boundary), ("IT kWh", it_meters), ("renewable kWh", renewable)):
        if ids:
            energy_targets.append(Target(
                f'SELECT sum("e") AS "{alias}" FROM {_daily_diff("e", ids)} WHERE $timeFilter '
                f'GROUP BY time(1d) fill(none)'))
    if energy_targets:
        panels.append(Panel("Daily energy", "timeseries", energy_targets, width=12, unit="kwatth",
                            options={"drawStyle": "bars"}))
    if renewable and boundary:
        panels.append(Panel("Renewable share", "timeseries", [Target(
            f'SELECT sum("r") / (sum("r") + sum("f")) * 100 AS "renewable %" FROM {_daily_diff("r", renewable)}, '
            f'{_daily_diff("f", boundary)} WHERE $timeFilter GROUP BY time(1d) fill(none)')], width=12,
            unit="percent", min=0, max=100,
            description="Renewable meters / (renewable + boundary meters), per day: on-site and PPA supply "
                        "is metered apart from the grid and diesel boundary meters."))
    panels.append(Panel("Energy per meter in range", "table", [Target(
        f'SELECT spread("energy_kwh") AS "kWh" FROM "{METER}" WHERE {s} AND "{T.PHASE}" = \'\' AND $timeFilter '
        f'GROUP BY "{T.DEVICE}"', result_format="table")], width=12, unit="kwatth",
        description="max − min of each meter's cumulative counter over the range."))
    return Dashboard(_uid(site, "energy"), f"{site.site.id} — energy & PUE", [Row("Energy", panels)],
                     tags=["iozera", site.site.id, "energy"], time_from="now-30d", refresh="5m",
                     description="Daily PUE from energy counters, energy per role, renewable share.")


SHIPPED_RULES = Path(__file__).resolve().parent.parent / "alerts" / "rules" / "site.yaml"


def headroom_margins(rules_path: Path = SHIPPED_RULES) -> dict[str, tuple[float, float | None, str]]:
    """level -> (margin %, clear %, rule name) of the headroom rules: the dashboard colours what pages.

    A rule counts when it compares the derived ``capacity`` ``headroom_pct`` with ``<``/``<=`` and
    matches one ``level``; a level without such a rule gets no margin line.
    """
    from alerts.rules import load_rules

    out: dict[str, tuple[float, float | None, str]] = {}
    for r in load_rules(rules_path).rules:
        level = r.match.get(D.LEVEL)
        if (r.kind == "threshold" and r.measurement == D.CAPACITY and r.field == D.HEADROOM_PCT
                and r.op in ("<", "<=") and isinstance(level, str) and isinstance(r.threshold, (int, float))
                and not isinstance(r.threshold, bool)):
            out.setdefault(level, (float(r.threshold), r.clear, r.name))
    return out


def capacity_levels(site: Site) -> list[str]:
    """The capacity levels this inventory has (derived/power_chain.py writes a sample for each), room first."""
    kinds = {d.kind for d in site.all_devices()}
    racks = site.racks()
    has = {D.LEVEL_HALL: bool(site.halls), D.LEVEL_ROW: any(h.rows for h in site.halls), D.LEVEL_RACK: bool(racks),
           D.LEVEL_PDU: any(d.rack and d.kind in ("pdu", "rpp", "busway") for d in site.all_devices()),
           D.LEVEL_UPS: "ups" in kinds, D.LEVEL_TRANSFORMER: "transformer" in kinds}
    order = (D.LEVEL_HALL, D.LEVEL_ROW, D.LEVEL_RACK, D.LEVEL_PDU, D.LEVEL_UPS, D.LEVEL_TRANSFORMER)
    return [lvl for lvl in order if has[lvl]]


def _level(level: str) -> str:
    return f'"{D.LEVEL}" = {literal(level)}'


#: per element over the range: the same figures as ``dcim report capacity`` (reports/README.md)
def _element_figures() -> str:
    peak = f'max("{D.DESIGN_LOAD_W}")'
    return (f'last("{D.RATED_W}") AS "rated W", last("{D.ALLOCATED_W}") AS "allocated W", '
            f'last("{D.USABLE_W}") AS "usable W", {peak} AS "peak W", percentile("{D.DESIGN_LOAD_W}", 99) AS "p99 W", '
            f'last("{D.USABLE_W}") - {peak} AS "headroom W", last("{D.ALLOCATED_W}") - {peak} AS "stranded W", '
            f'last("{D.REDUNDANCY}") AS "redundancy"')


def capacity(site: Site, margins: dict[str, tuple[float, float | None, str]] | None = None) -> Dashboard:
    """Rated, allocated, peak, stranded and headroom per level, the top stranded racks, headroom vs margin.

    Peak is of ``design_load_w`` (what the element carries on the failure its redundancy design
    survives), stranded = allocated − peak, headroom = usable − peak: the capacity report's
    definitions, over the dashboard's time range.  Margins come from the shipped headroom rules.
    """
    s = _site_filter(site)
    levels = capacity_levels(site)
    margins = headroom_margins() if margins is None else margins
    per = (f'SELECT last("{D.RATED_W}") AS "rated", last("{D.ALLOCATED_W}") AS "allocated", '
           f'max("{D.DESIGN_LOAD_W}") AS "peak", last("{D.ALLOCATED_W}") - max("{D.DESIGN_LOAD_W}") AS "stranded", '
           f'last("{D.RATED_W}") - last("{D.ALLOCATED_W}") AS "unallocated" '
           f'FROM "{D.CAPACITY}" WHERE {s} AND $timeFilter GROUP BY "{D.LEVEL}", "{D.ID}"')
    summary = Row("Stranded power", [
        Panel("Per level: rated, allocated, peak, stranded", "table", [Target(
            f'SELECT sum("rated") AS "rated W", sum("allocated") AS "allocated W", sum("unallocated") AS "unallocated W", '
            f'sum("peak") AS "Σ peaks W", sum("stranded") AS "stranded W", count("peak") AS "elements" '
            f'FROM ({per}) WHERE $timeFilter GROUP BY "{D.LEVEL}"', result_format="table")], width=14, unit="watt",
            description="Σ over the level's elements. Stranded = allocated − peak of the load each must carry on "
                        "the failure its redundancy design survives; unallocated = rated − allocated."),
        Panel("Top stranded racks", "table", [Target(
            f'SELECT top("stranded", "{D.ID}", 10) AS "stranded W" FROM (SELECT last("{D.ALLOCATED_W}") - '
            f'max("{D.DESIGN_LOAD_W}") AS "stranded" FROM "{D.CAPACITY}" WHERE {s} AND {_level(D.LEVEL_RACK)} '
            f'AND $timeFilter GROUP BY "{D.ID}") WHERE $timeFilter', result_format="table")], width=10, unit="watt",
            description="Allocated nameplate never drawn at peak in the range: where power is stranded."),
    ])
    stats, trend = [], []
    for lvl in levels:
        margin = margins.get(lvl)
        steps: list[tuple[float | None, str]] | None = None
        note = "no headroom rule for this level"
        if margin:
            steps = [(None, "red"), (margin[0], "yellow"), (margin[1] if margin[1] is not None else margin[0], "green")]
            note = f"red below the {margin[0]:g} % margin of rule {margin[2]}, yellow until it clears"
        stats.append(Panel(f"Lowest {lvl} headroom", "stat", [Target(
            f'SELECT min("{D.HEADROOM_PCT}") FROM "{D.CAPACITY}" WHERE {s} AND {_level(lvl)} AND $timeFilter')],
            width=4, height=5, unit="percent", decimals=1, thresholds=steps,
            description=f"Least headroom (redundancy kept, % of usable) of any {lvl} in the range; {note}."))
        trend.append(Target(f'SELECT min("{D.HEADROOM_PCT}") AS "{lvl}" FROM "{D.CAPACITY}" WHERE {s} AND {_level(lvl)} '
                            f'AND $timeFilter GROUP BY time($__interval) fill(none)'))
    lowest = min((m[0] for lvl, m in margins.items() if lvl in levels), default=None)
    headroom = Row("Headroom vs margin", stats + [Panel(
        "Lowest headroom per level", "timeseries", trend, width=24, unit="percent", min=0,
        thresholds=[(None, "red"), (lowest, "green")] if lowest is not None else None,
        description="Per level, the least headroom of its elements (% of usable capacity, redundancy kept).")])
    tables = Row("Elements", [Panel(
        f"{lvl.capitalize()}s: rated, allocated, peak, headroom, stranded", "table", [Target(
            f'SELECT {_element_figures()} FROM "{D.CAPACITY}" WHERE {s} AND {_level(lvl)} AND $timeFilter '
            f'GROUP BY "{D.ID}"', result_format="table")], width=12, unit="watt")
        for lvl in levels])
    return Dashboard(_uid(site, "capacity"), f"{site.site.id} — capacity and stranded power", [summary, headroom, tables],
                     tags=["iozera", site.site.id, "capacity"], time_from="now-7d", refresh="5m",
                     annotations=[_alert_annotation(site)],
                     description="Rated vs allocated vs measured peak per hall, row, rack, PDU, UPS and transformer; "
                                 "redundancy-aware headroom and stranded power (reports/README.md).")


_TIER_VARIABLE = Variable(
    "tier", tier_variable_query(), "Storage tier", multi=False, include_all=False, refresh=2,
    description="Retention policy for this time span (raw, 1-minute or hourly rollup; docs/storage.md). "
                "Written by `dcim storage init`; pick another to override.")
_FROM = re.compile(r'FROM "([A-Za-z_][A-Za-z0-9_]*)"(?!\.)')


def tiered(query: str) -> str:
    """A time-series query reads ``"$tier"."measurement"``; any other query stays on raw."""
    if "GROUP BY time(" not in query:
        return query
    return _FROM.sub(r'FROM "$tier"."\1"', query)


def _with_tier(d: Dashboard) -> Dashboard:
    touched = False
    for row in d.rows:
        for p in row.panels:
            for t in p.targets:
                new = tiered(t.query)
                touched |= new != t.query
                t.query = new
    if touched:
        d.variables = [_TIER_VARIABLE, *d.variables]
    return d


def build_dashboards(site: Site) -> dict[str, Dashboard]:
    """key -> dashboard, in DASHBOARD_KEYS order."""
    dashboards = {"noc": noc_overview(site), "power": power_chain(site), "cooling": cooling(site),
                  "liquid": liquid_cooling(site), "gpu": gpu_fleet(site), "energy": energy(site), "capacity": capacity(site)}
    return {k: _with_tier(d) for k, d in dashboards.items()}


#: which dashboard shows a device of a kind (the rest: the NOC overview)
_DASHBOARD_OF_KIND = {"pdu": "power", "ups": "power", "switchgear": "power", "transformer": "power", "meter": "power",
                      "chiller": "cooling", "cdu": "liquid", "crah": "cooling", "crac": "cooling",
                      "gpu_node": "gpu", "server": "gpu"}


#: dashboards with the hall/row/rack variables (``_location_variables``)
_LOCATED = frozenset({"power"})


def device_link(site: Site, grafana_url: str, device_id: str) -> str:
    """The Grafana URL of the dashboard that shows ``device_id``, its hall/row/rack selected
    where that dashboard has those variables.

    Alert notifications carry it (Alertmanager ``generatorURL`` and the ``dashboard``
    annotation), so the on-call engineer lands on the right panel in one click."""
    from urllib.parse import urlencode

    if not grafana_url:
        return ""
    key, params = "noc", {}
    if device_id and site.has_device(device_id):
        dev = site.device(device_id)
        key = _DASHBOARD_OF_KIND.get(dev.kind, "noc")
        loc = site.location_tags(dev)
        if key in _LOCATED:
            params = {f"var-{k}": loc[k] for k in (T.HALL, T.ROW, T.RACK) if loc.get(k)}
        elif key == "liquid":
            params = {"var-cdu": dev.id}
    query = ("?" + urlencode(params)) if params else ""
    return f"{grafana_url.rstrip('/')}/d/{_uid(site, key)}{query}"
