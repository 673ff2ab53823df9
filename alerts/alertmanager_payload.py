"""Alert events in Prometheus Alertmanager's API v2 shape (pure: no I/O, no clock reads).

Alertmanager identifies an alert by its label set and deduplicates identical
sets, whoever sends them: two HA replicas of a shard, or one engine re-sending
after a restart, page once as long as the labels are the same.  So labels hold
only what is stable for the life of an alert (rule, severity, location, series
tags, rule labels, the dcim fingerprint, and the suppression mark); the value,
the summary and the link go into annotations, which may change freely.

A firing alert is sent with ``endsAt`` in the future (``4 × resend_s``, as
Prometheus does) and re-sent every ``resend_s``; if the engine vanishes,
Alertmanager resolves it by itself when ``endsAt`` passes.  A resolution is
the same label set with ``endsAt`` at the resolution time.

Silences and acks made with ``dcim alerts silence|ack`` become Alertmanager
silences (:func:`silence_body`), marked in their comment so the engine can
find and reconcile the ones it owns.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import re
from typing import Any, Iterable

from contract.alert_event import (ANNOTATIONS, FINGERPRINT, LABELS, RULE, SERIES, SEVERITY, SINCE, SUMMARY,
                                  SUPPRESSED_BY, TIME_NS, VALUE)
from contract.alert_event import iso  # RFC 3339 UTC, what Alertmanager's strfmt.DateTime reads
from contract.tags import DEVICE, PLACE_TAGS

__all__ = ["alert_labels", "alert_annotations", "postable_alert", "silence_body", "silence_marker",
           "owned_silence_key", "same_silence", "iso", "LOCATION_LABELS"]

LOCATION_LABELS = (*PLACE_TAGS, DEVICE)
#: dcim silence keys that are called something else in Alertmanager
_SILENCE_KEYS = {RULE: "alertname"}
_MARKER = "[dcim:"
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(name: str) -> str:
    """Prometheus label names are ``[a-zA-Z_][a-zA-Z0-9_]*``; tags like ``psu-1`` are mapped onto that."""
    out = _LABEL_NAME.sub("_", name)
    return out if out and not out[0].isdigit() else "_" + out


def alert_labels(event: dict[str, Any]) -> dict[str, str]:
    """The identity of one alert in Alertmanager, from a dcim event.

    ``alertname`` (rule), ``severity``, ``site`` ``hall`` ``row`` ``rack`` ``device``
    (when known), every series tag, the rule's labels (``team``...), ``fingerprint``
    (dcim's, for silences and acks), and ``suppressed="true"`` with
    ``suppressed_by_fp`` (the root fingerprints) while a root cause explains it.
    """
    labels: dict[str, str] = {}
    for k, v in (event.get(LABELS) or {}).items():
        labels[_label_name(k)] = str(v)
    for k, v in (event.get(SERIES) or {}).items():
        if v not in ("", None):
            labels[_label_name(k)] = str(v)
    for k in LOCATION_LABELS:
        if event.get(k):
            labels[k] = str(event[k])
    labels["alertname"] = str(event[RULE])
    labels[SEVERITY] = str(event[SEVERITY])
    labels[FINGERPRINT] = str(event[FINGERPRINT])
    if event.get(SUPPRESSED_BY):
        labels["suppressed"] = "true"
        labels["suppressed_by_fp"] = str(event[SUPPRESSED_BY])
    return labels


def alert_annotations(event: dict[str, Any], link: str = "") -> dict[str, str]:
    """What a person reads: summary, description, runbook, value, suppressed_by, dashboard link."""
    ann = {k: str(v) for k, v in (event.get(ANNOTATIONS) or {}).items() if v not in ("", None)}
    ann.setdefault(SUMMARY, "")
    if event.get(VALUE) is not None:
        ann[VALUE] = str(event[VALUE])
    if event.get(SUPPRESSED_BY):
        ann[SUPPRESSED_BY] = str(event[SUPPRESSED_BY])
    if link:
        ann["dashboard"] = link
    return ann


def postable_alert(event: dict[str, Any], labels: dict[str, str], *, link: str = "",
                   ends_ns: int | None = None) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body.

    ``ends_ns`` None: still firing (the sender fills ``endsAt`` at send time, so an
    alert that waited out an outage in the outbox is not already expired when it
    arrives).  ``since`` is when it started firing; a resolved event carries it too.
    """
    starts = event.get("since_ns")
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": alert_annotations(event, link),
        "startsAt": event.get(SINCE) or iso(int(starts or event[TIME_NS])),
    }
    if link:
        body["generatorURL"] = link
    if ends_ns is not None:
        body["endsAt"] = iso(ends_ns)
    return body


def silence_marker(owner: str, key: str) -> str:
    """The tag in a silence's comment: dcim made it, which engine (``owner``), which silence/ack."""
    return f"{_MARKER}{owner}:{key}]"


def owned_silence_key(comment: str) -> tuple[str, str] | None:
    """(owner, key) of :func:`silence_marker` in a comment, or None for someone else's silence."""
    i = comment.rfind(_MARKER)
    if i < 0:
        return None
    j = comment.find("]", i)
    owner, sep, key = comment[i + len(_MARKER):j].rpartition(":") if j > i else ("", "", "")
    return (owner, key) if sep else None


def _matcher(name: str, value: str) -> dict[str, Any]:
    if any(c in value for c in "*?["):
        regex = fnmatch.translate(value)
        # fnmatch gives (?s:...)\Z; Alertmanager anchors regexes itself and speaks RE2
        regex = regex.removeprefix("(?s:").removesuffix(")\\Z")
        return {"name": name, "value": regex, "isRegex": True, "isEqual": True}
    return {"name": name, "value": value, "isRegex": False, "isEqual": True}


def silence_body(owner: str, key: str, match: dict[str, str], *, starts_ns: int, ends_ns: int, author: str,
                 comment: str) -> dict[str, Any]:
    """``POST /api/v2/silences`` body for one dcim silence (``match`` as in ``silences.json``) or ack."""
    matchers = [_matcher(_SILENCE_KEYS.get(k, _label_name(k)), str(v)) for k, v in sorted(match.items())]
    if not matchers:
        raise ValueError(f"silence {key}: Alertmanager needs at least one matcher")
    return {
        "matchers": matchers,
        "startsAt": iso(starts_ns),
        "endsAt": iso(ends_ns),
        "createdBy": author or "dcim",
        "comment": f"{comment} {silence_marker(owner, key)}".strip(),
    }


def _parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def same_silence(want: dict[str, Any], have: dict[str, Any], slack_s: float = 60.0) -> bool:
    """Does an existing dcim-made Alertmanager silence already do what ``want`` does?

    Same matchers, same comment (marker aside) and an end within ``slack_s``: two
    replicas of a shard that got the same silence command a few milliseconds apart
    then share one Alertmanager silence instead of making two."""
    def norm(ms: Iterable[dict[str, Any]]) -> list[tuple]:
        return sorted((m["name"], m["value"], bool(m.get("isRegex")), bool(m.get("isEqual", True))) for m in ms)

    def text(c: str) -> str:
        i = c.rfind(_MARKER)
        return (c[:i] if i >= 0 else c).strip()
    try:
        close = abs(_parse_iso(want["endsAt"]) - _parse_iso(str(have.get("endsAt", "")))) <= slack_s
    except ValueError:
        return False
    return close and norm(want["matchers"]) == norm(have.get("matchers", [])) and text(want["comment"]) == text(
        str(have.get("comment", "")))
