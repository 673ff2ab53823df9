"""The alert event schema: one definition for the MQTT payload, the InfluxDB ``alert`` point
and every dashboard query that reads alerts.

The rule engine builds events with :func:`alert_event`; the MQTT publisher
sends them as JSON; :func:`alert_point` turns one into the InfluxDB point that
Grafana's annotations and the NOC's alert table read; consumers (``dcim alerts
tail``, the demo's live view, an Alertmanager bridge) read them through the
names defined here.  A field renamed here is renamed everywhere at once: no
part can write ``summary`` while another reads ``message``.

Identity (as in Prometheus): an alert series is the rule plus its **label
set**, the device plus every series tag of the sample (every tag except the
location tags, :func:`contract.tags.series_tags`).  :func:`fingerprint` hashes
exactly that, so two series that differ in any tag are two alerts, and the same
series keeps its fingerprint across restarts.

Payload (JSON object, one per event)::

    id             "<fingerprint>:<state>:<time_ns>"   dedup key for at-least-once delivery
    fingerprint    hex, from rule + series              (fingerprint())
    state          firing | resolved                    (pending never leaves the engine)
    severity       critical | major | minor | warning | info
    rule           the rule name (Alertmanager's alertname)
    device         inventory id
    site hall row rack                                  location (PLACE_TAGS), "" where none
    series         {device, <series tag>: value, ...}   the label set that makes the identity
    labels         the rule's static labels (team, service, ...)
    annotations    {summary, description?, runbook?}    summary: the one line a person reads
    value threshold                                     what was seen, what it was compared with
    since          ISO-8601 UTC: when it started firing (startsAt)
    time time_ns   when this event happened; for ``resolved`` the end (endsAt)
    suppressed_by  fingerprint(s) of the firing upstream alert(s) that explain it, or ""
    silenced acked renotify notifications               operator flags and delivery count

The ``alert`` point: tags :data:`POINT_TAGS` and the series' tags, fields :data:`POINT_FIELDS`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Mapping

from contract.sample import Sample
from contract.tags import DEVICE, PLACE_TAGS

__all__ = [
    "ALERT_MEASUREMENT", "PENDING", "FIRING", "RESOLVED", "ALERT_STATES", "EVENT_STATES", "SEVERITIES",
    "ID", "FINGERPRINT", "STATE", "SEVERITY", "RULE", "DEVICE", "SERIES", "LABELS", "ANNOTATIONS",
    "SUMMARY", "DESCRIPTION", "RUNBOOK", "VALUE", "THRESHOLD", "SINCE", "TIME", "TIME_NS",
    "SUPPRESSED_BY", "SILENCED", "ACKED", "RENOTIFY", "NOTIFICATIONS",
    "POINT_TAGS", "POINT_FIELDS", "fingerprint", "alert_event", "alert_point", "summary_of",
    "identity_labels", "iso",
]

#: the InfluxDB measurement alert events are written to
ALERT_MEASUREMENT = "alert"

# -- states ---------------------------------------------------------------------------------
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
#: every state of an alert series inside the engine
ALERT_STATES = (PENDING, FIRING, RESOLVED)
#: the states an event carries (pending is internal to the engine)
EVENT_STATES = (FIRING, RESOLVED)
#: most severe first
SEVERITIES = ("critical", "major", "minor", "warning", "info")

# -- payload field names --------------------------------------------------------------------
ID = "id"
FINGERPRINT = "fingerprint"
STATE = "state"
SEVERITY = "severity"
RULE = "rule"
SERIES = "series"
LABELS = "labels"
ANNOTATIONS = "annotations"
SUMMARY = "summary"
DESCRIPTION = "description"
RUNBOOK = "runbook"
VALUE = "value"
THRESHOLD = "threshold"
SINCE = "since"
TIME = "time"
TIME_NS = "time_ns"
SUPPRESSED_BY = "suppressed_by"
SILENCED = "silenced"
ACKED = "acked"
RENOTIFY = "renotify"
NOTIFICATIONS = "notifications"

#: tags of the InfluxDB ``alert`` point (what dashboards group and filter by)
POINT_TAGS: tuple[str, ...] = (RULE, SEVERITY, STATE, DEVICE, *PLACE_TAGS)
#: fields of the ``alert`` point; value/threshold only when numeric
POINT_FIELDS: tuple[str, ...] = (SUMMARY, SUPPRESSED_BY, FINGERPRINT, VALUE, THRESHOLD)

_NS = 1_000_000_000


def iso(ns: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-11-25T17:00:00.000Z."""
    return dt.datetime.fromtimestamp(ns / _NS, tz=dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(rule: str, series: Mapping[str, str]) -> str:
    """Stable id of one alert series: same rule + same label set -> same id, across restarts.

    ``series`` is the whole label set (device plus every series tag); the order
    of its keys does not matter.
    """
    text = rule + "\x00" + "\x00".join(f"{k}={series[k]}" for k in sorted(series))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def identity_labels(event: Mapping[str, Any]) -> dict[str, str]:
    """The full label set of an event's series, rule included (what :func:`fingerprint` hashes)."""
    return {RULE: event[RULE], **event[SERIES]}


def alert_event(*, fingerprint: str, state: str, severity: str, rule: str, device: str,
                location: Mapping[str, str], series: Mapping[str, str], labels: Mapping[str, str],
                summary: str, description: str | None = None, runbook: str | None = None,
                value: Any, threshold: Any, since_ns: int, time_ns: int, suppressed_by: str = "",
                silenced: bool = False, acked: bool = False, renotify: bool = False,
                notifications: int = 0) -> dict[str, Any]:
    """The event payload (see the module docstring); the only place its keys are spelled."""
    ann = {SUMMARY: summary}
    if description:
        ann[DESCRIPTION] = description
    if runbook:
        ann[RUNBOOK] = runbook
    return {
        ID: f"{fingerprint}:{state}:{time_ns}",
        FINGERPRINT: fingerprint,
        STATE: state,
        SEVERITY: severity,
        RULE: rule,
        DEVICE: device,
        **{k: location.get(k, "") for k in PLACE_TAGS},
        SERIES: dict(series),
        VALUE: value,
        THRESHOLD: threshold,
        SINCE: iso(since_ns),
        TIME: iso(time_ns),
        TIME_NS: time_ns,
        LABELS: dict(labels),
        ANNOTATIONS: ann,
        SUPPRESSED_BY: suppressed_by,
        SILENCED: silenced,
        ACKED: acked,
        RENOTIFY: renotify,
        NOTIFICATIONS: notifications,
    }


def summary_of(event: Mapping[str, Any]) -> str:
    """The one line a person reads (``annotations.summary``), "" when absent."""
    return str((event.get(ANNOTATIONS) or {}).get(SUMMARY, ""))


def alert_point(event: Mapping[str, Any]) -> Sample:
    """The InfluxDB ``alert`` point for one event (Grafana annotations and alert tables read it).

    Its tags are :data:`POINT_TAGS` plus the series' label set: InfluxDB keeps one point per
    tag set and instant, and the events of two series at one instant (the eight GPUs of one
    DCGM poll) must not overwrite each other."""
    tags = {k: str(v) for k, v in (event.get(SERIES) or {}).items() if v}
    tags.update((k, str(event[k])) for k in POINT_TAGS if event.get(k))
    fields: dict[str, Any] = {
        SUMMARY: summary_of(event),
        SUPPRESSED_BY: event.get(SUPPRESSED_BY, ""),
        FINGERPRINT: event[FINGERPRINT],
    }
    for name in (VALUE, THRESHOLD):
        v = event.get(name)
        if isinstance(v, (bool, int, float)):
            fields[name] = float(v)
    return Sample(ALERT_MEASUREMENT, tags, fields, int(event[TIME_NS]))
