"""The pure rule engine: samples and clock ticks in, alert events out.

No I/O and no clock reads: every call carries its time (sample ``time_ns`` or
the ``now_ns`` given to :meth:`Engine.tick`), so tests replay exact timelines
and a restart can restore the state from a snapshot.

State machine per (rule, series), series = the device plus every series tag of the
sample (every tag except the location tags: :func:`contract.tags.series_tags`), so
series that differ in any tag (``stage=input`` vs ``stage=output``) are separate alerts::

    inactive --condition--> pending --for_s elapsed--> firing --clear--> resolved (-> inactive)
                 pending --condition gone--> inactive (nothing was ever sent)

A sample that carries ``TRAP_FIELD`` (a trap-born sample: the device said so
itself) fires at once, without waiting ``for_s``: ``for_s`` debounces polled
readings, and the poll the trap triggers confirms or clears it.

Hysteresis: while pending or firing, a rule with ``clear:`` stays active until
the value is past ``clear`` (``op: '>'`` clears when ``value < clear``,
``op: '<'`` when ``value > clear``), so a value flapping between ``clear`` and
``threshold`` yields exactly one firing event.  Events go out on transitions
(firing, resolved) and on re-notify (``renotify_s``) only: that is the dedup.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from alerts.rules import Rule, RuleSet
from alerts.selectors import DeviceFilter, compile_select, devices_by_kind, match_tags
from contract import alert_event as ev
from contract.alert_event import fingerprint, iso
from contract.cooling import LOOP
from contract.sample import TRAP_FIELD, Sample
from contract.tags import DEVICE, LOCATION_TAGS, PLACE_TAGS

__all__ = ["Alert", "Engine", "Condition", "condition", "fingerprint", "iso", "render"]

_NS = 1_000_000_000


def _any_bits(value: Any, bits: Any) -> bool:
    """``op: any_bits``: an integral reading (a bitmask such as ``clock_event_reasons``) with any of
    ``bits`` set; a fraction, NaN or infinity is no bitmask and never matches."""
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    return isinstance(value, int) and (value & int(bits)) != 0


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne, "any_bits": _any_bits,
}

#: (device, (tag, value), ...): the device, then every series tag sorted by name
SeriesKey = tuple
_NOT_SERIES = frozenset(LOCATION_TAGS)
#: 2: series identity = device + every series tag; 1: device + a fixed list of component tags
SNAPSHOT_VERSION = 2
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Condition:
    """A threshold/rate rule's test, compiled once per rule: the only place it is written.

    ``enter(v)``: does ``v`` start an alert (inactive series).  ``hold(v)``: does an
    active (pending/firing) series stay active, ``clear:`` hysteresis applied.
    ``ordered``: the op compares order, so string and boolean values are not
    compared at all (counted as skipped).  ``numeric``: ``enter`` may dismiss a
    plain int/float reading on the hot path before any series key is built.
    """

    enter: Callable[[Any], bool]
    hold: Callable[[Any], bool]
    ordered: bool
    numeric: bool

    def test(self, value: Any, active: bool) -> bool | None:
        """True/False, or None when the value's type cannot be compared (a string for ``>``)."""
        if self.ordered and (isinstance(value, (str, bool)) or value is None):
            return None
        try:
            return (self.hold if active else self.enter)(value)
        except TypeError:
            return None


def condition(rule: Rule) -> Condition:
    """Compile ``rule``'s comparison (threshold, band, rate_per_s, clear) into a :class:`Condition`."""
    op = rule.op
    if op == "outside":
        lo, hi = rule.band if rule.band else (float("-inf"), float("inf"))
        enter = lambda v: v < lo or v > hi  # noqa: E731
        return Condition(enter, enter, True, rule.kind == "threshold" and rule.band is not None)
    t = rule.rate_per_s if rule.kind == "rate" else rule.threshold
    compare = _OPS[op]
    enter = lambda v: compare(v, t)  # noqa: E731
    hold = enter
    if rule.clear is not None:
        c = rule.clear
        hold = (lambda v: not v < c) if op in (">", ">=") else (lambda v: not v > c)  # noqa: E731
    numeric = rule.kind == "threshold" and not isinstance(t, bool) and isinstance(t, (int, float))
    return Condition(enter, hold, op not in ("==", "!="), numeric)


class _Fmt(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def render(template: str, ctx: dict[str, Any]) -> str:
    """``{device}``-style template; unknown keys stay visible instead of raising.

    Rule files are checked (:func:`alerts.rules.template_problem`) so the
    result stays small; the cut at 4 KiB is for templates built in code.
    """
    try:
        return template.format_map(_Fmt({k: _fmt_value(v) for k, v in ctx.items()}))[:4096]
    except (ValueError, IndexError):  # a stray brace in a summary must not stop alerting
        return template


@dataclass(slots=True)
class Alert:
    """One (rule, series) that is pending or firing."""

    rule: str
    fingerprint: str
    severity: str
    device: str
    series: dict[str, str]
    location: dict[str, str]
    state: str  # pending | firing | resolved
    value: Any
    threshold: Any
    pending_since_ns: int
    since_ns: int
    last_sent_ns: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    suppressed_by: str = ""
    silenced: bool = False
    acked: bool = False
    notifications: int = 0

    def summary(self, rule: Rule) -> str:
        ctx = dict(self.context)
        ctx.update(self.series)
        ctx.update(self.location)
        ctx.update(rule=self.rule, device=self.device, value=self.value, threshold=self.threshold,
                   severity=self.severity)
        return render(rule.annotations.summary, ctx)

    def event(self, rule: Rule, now_ns: int, *, state: str | None = None, renotify: bool = False) -> dict[str, Any]:
        """The payload published for this alert (MQTT, InfluxDB, state file): :func:`contract.alert_event.alert_event`."""
        ann = rule.annotations
        description = None
        if ann.description:
            description = render(ann.description, {**self.context, **self.series, "device": self.device,
                                                   "value": self.value, "rule": self.rule})
        return ev.alert_event(
            fingerprint=self.fingerprint, state=state or self.state, severity=self.severity, rule=self.rule,
            device=self.device, location=self.location, series=self.series, labels=self.labels,
            summary=self.summary(rule), description=description, runbook=ann.runbook, value=self.value,
            threshold=self.threshold, since_ns=self.since_ns, time_ns=now_ns, suppressed_by=self.suppressed_by,
            silenced=self.silenced, acked=self.acked, renotify=renotify, notifications=self.notifications)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "fingerprint": self.fingerprint, "severity": self.severity, "device": self.device,
            "series": self.series, "location": self.location, "state": self.state, "value": self.value,
            "threshold": self.threshold, "pending_since_ns": self.pending_since_ns, "since_ns": self.since_ns,
            "last_sent_ns": self.last_sent_ns, "labels": self.labels, "context": self.context,
            "suppressed_by": self.suppressed_by, "silenced": self.silenced, "acked": self.acked,
            "notifications": self.notifications,
        }

    def match_view(self) -> dict[str, Any]:
        """The fields a silence matches on, without rendering the summary."""
        return {"rule": self.rule, "device": self.device, "severity": self.severity, "fingerprint": self.fingerprint,
                **self.location, "series": self.series, "labels": self.labels}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Alert":
        return cls(**obj)


#: called with (alert, firing root alerts: rules with ``explains``) -> suppressed_by fingerprint(s) or ""
Suppressor = Callable[[Alert, dict[str, Alert]], str]


class Engine:
    """Evaluates a :class:`RuleSet` over samples; returns events.  Single-threaded, not thread-safe."""

    def __init__(self, rules: RuleSet, site=None, *, suppressor: Suppressor | None = None) -> None:
        self.rules = rules
        self.site = site
        self.suppressor = suppressor
        by_kind = devices_by_kind(site) if site is not None else None
        self._filters: dict[str, DeviceFilter] = {r.name: compile_select(r, site, by_kind) for r in rules.rules}
        self._alerts: dict[tuple[str, SeriesKey], Alert] = {}
        #: (rule, device) -> number of its pending/firing alerts: lets _eval skip the state machine for quiet devices
        self._hot: dict[tuple[str, str], int] = {}
        self._rate_last: dict[tuple[str, SeriesKey], tuple[int, float]] = {}
        self._seen: dict[tuple[str, SeriesKey], tuple[int, dict[str, str]]] = {}
        #: timer rule -> (time of its last full clock scan, when a series can next go stale)
        self._clock_due: dict[str, tuple[int, int]] = {}
        self._fails: dict[str, int] = {}
        self._loc_cache: dict[str, dict[str, str]] = {}
        #: (device, loop) -> names from the inventory a summary may use (see _inventory_context)
        self._inv_cache: dict[tuple[str, str | None], dict[str, str]] = {}
        #: built on first use, unless the suppressor already holds one for the same site
        self._loop_index = getattr(suppressor, "loop_index", None)
        self._roots: dict[str, Alert] = {}  # firing alerts of rules with ``explains``
        #: firing roots evaluated by other engines (other shards), fingerprint -> alert
        self._external: dict[str, Alert] = {}
        self._by_fp: dict[str, Alert] = {}
        self._route: dict[tuple[str, str], tuple[tuple[str, list[tuple[Rule, Any]]], ...]] = {}
        self._cond = {r.name: condition(r) for r in rules.rules}
        #: rule -> its Condition.enter where it may dismiss plain numbers on the hot path
        self._quick = {n: (c.enter if c.numeric else None) for n, c in self._cond.items()}
        self.quick_checks = 0
        self._fields_of: dict[str, list[str]] = {}
        for (m, fname) in rules.by_field:
            self._fields_of.setdefault(m, []).append(fname)
        self.started_ns: int | None = None
        self.evaluations = 0
        self.skipped_type = 0
        #: alerts whose suppression changed since last drained (retained state to refresh)
        self.updated: list[Alert] = []
        #: firing alerts of a version-1 snapshot, resolved on the next tick (see restore)
        self._retired: list[Alert] = []

    # -- public ---------------------------------------------------------------------
    def observe(self, samples: Iterable[Sample]) -> list[dict[str, Any]]:
        """Index and evaluate samples; return the events (firing / resolved / re-notify) they cause."""
        events: list[dict[str, Any]] = []
        by_field = self.rules.by_field
        stale = self.rules.stale_by_measurement
        route = self._route
        hot = self._hot
        for s in samples:
            m = s.measurement
            if self.started_ns is None:
                self.started_ns = s.time_ns
            device = s.tags.get("device", "")
            series = None
            ruled = route.get((m, device))
            if ruled is None:
                ruled = self._route_for(m, device, by_field)
            if ruled:
                fields = s.fields
                for fname, rules in ruled:
                    value = fields.get(fname, _MISSING)
                    if value is _MISSING:
                        continue
                    numeric = type(value) is float or type(value) is int
                    for rule, quick in rules:
                        # fast path: a numeric value inside bounds, no alert of this rule on this
                        # device -> nothing can change (match/selectors only matter past here)
                        if quick is not None and numeric and (rule.name, device) not in hot:
                            self.quick_checks += 1
                            if not quick(value):
                                continue
                        series = self._eval(rule, s, value, events, series)
            if stale:
                for rule in stale.get(m, ()):
                    self._mark_seen(rule, s, events)
        if events:
            self._refresh_suppression(events)
        return events

    def tick(self, now_ns: int) -> list[dict[str, Any]]:
        """Timers: ``for_s`` of pending alerts, stale/absent clocks, re-notify."""
        if self.started_ns is None:
            self.started_ns = now_ns
        events: list[dict[str, Any]] = []
        while self._retired:  # alerts of a version-1 snapshot (see restore)
            a = self._retired.pop()
            rule = self.rules.by_name[a.rule]
            a.state = ev.RESOLVED
            events.append(a.event(rule, now_ns))
        for rule in self.rules.timers:
            self._tick_clock(rule, now_ns, events)
        for key, a in list(self._alerts.items()):
            rule = self.rules.by_name.get(a.rule)
            if rule is None:
                continue
            if a.state == "pending" and now_ns - a.pending_since_ns >= rule.for_s * _NS:
                self._fire(a, rule, now_ns, events)
            elif a.state == "firing" and rule.renotify_s and now_ns - a.last_sent_ns >= rule.renotify_s * _NS:
                self._send(a, rule, now_ns, events, renotify=True)
        if events:
            self._refresh_suppression(events)
        return events

    def active(self, *, include_pending: bool = False) -> list[Alert]:
        return [a for a in self._alerts.values() if a.state == "firing" or include_pending]

    def get(self, fingerprint: str) -> Alert | None:
        return self._by_fp.get(fingerprint)

    def firing(self) -> dict[str, Alert]:
        return {a.fingerprint: a for a in self._alerts.values() if a.state == "firing"}

    def rule_of(self, alert: Alert) -> Rule | None:
        return self.rules.by_name.get(alert.rule)

    def set_external_roots(self, roots: dict[str, Alert]) -> None:
        """The firing root alerts of the other shards' engines (fingerprint -> alert).

        Suppression then sees the whole site's roots, so a chiller tripping in one shard
        explains its nodes' alerts in another.  Firing alerts whose ``suppressed_by``
        changes are added to :attr:`updated`."""
        if roots == self._external:
            return
        self._external = dict(roots)
        self._resuppress([])

    def all_roots(self) -> dict[str, Alert]:
        """Firing roots known to this engine: its own and the other shards'."""
        if not self._external:
            return self._roots
        return {**self._external, **self._roots}

    # -- persistence ----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue after a restart without re-sending (JSON-ready)."""
        return {**self.snapshot_alerts(), **self.snapshot_clocks()}

    def snapshot_alerts(self) -> dict[str, Any]:
        """The part of :meth:`snapshot` that must be on disk as soon as it changes: the alerts
        (what was sent, so a restart neither forgets nor repeats one).  O(alerts)."""
        return {
            "version": SNAPSHOT_VERSION,
            "started_ns": self.started_ns,
            "alerts": [[_enc_key(k), a.to_json()] for k, a in self._alerts.items()],
            "fails": dict(self._fails),
        }

    def snapshot_clocks(self) -> dict[str, Any]:
        """The part of :meth:`snapshot` that may lag: when each series was last seen and the
        last value of each rate series.  O(series): on a full-site shard ≈200,000 entries, too
        many to write after every alert change; a restart restarts the stale and absent clocks
        at its own time anyway (:meth:`restore` with ``now_ns``), and a rate computed over a
        longer gap is still a rate."""
        return {
            "version": SNAPSHOT_VERSION,
            "seen": [[_enc_key(k), t, {n: v for n, v in tags.items() if n in PLACE_TAGS}]
                     for k, (t, tags) in self._seen.items()],
            "rate_last": [[_enc_key(k), t, v] for k, (t, v) in self._rate_last.items()],
        }

    def restore(self, snap: dict[str, Any], now_ns: int | None = None) -> None:
        """Continue from a snapshot.  With ``now_ns`` the stale/absent clocks restart at
        ``now_ns``: the engine's own downtime is not the devices' silence.

        A version-1 snapshot (identity = device + a fixed list of component tags) is
        migrated: the identity of ``absent`` series (the device alone) did not change,
        so their alerts and clocks carry over; every other alert that was firing is
        resolved on the next :meth:`tick` (its fingerprint cannot be mapped onto the
        full label set), and a condition still true fires again under its new identity
        on its next sample.  Their stale and rate clocks restart as on a fresh start.
        """
        version = snap.get("version", 1)
        if version not in (1, SNAPSHOT_VERSION):
            raise ValueError(f"alert state snapshot version {version!r} is newer than this engine "
                             f"({SNAPSHOT_VERSION}); upgrade, or move engine-state.json aside")
        self.started_ns = snap.get("started_ns") if now_ns is None else now_ns
        self._alerts = {}
        self._hot = {}
        self._by_fp = {}
        self._roots = {}
        self._retired = []
        kinds = {r.name: r.kind for r in self.rules.rules}
        for k, a in snap.get("alerts", []):
            alert = Alert.from_json(a)
            rule = self.rules.by_name.get(alert.rule)
            if rule is None:  # a rule removed since: drop its alerts
                continue
            if version == 1 and rule.kind != "absent":
                if alert.state == ev.FIRING:
                    self._retired.append(alert)
                continue
            self._alerts[_dec_key(k)] = alert
            hk = (alert.rule, alert.device)
            self._hot[hk] = self._hot.get(hk, 0) + 1
            self._by_fp[alert.fingerprint] = alert
            if rule.explains and alert.state == ev.FIRING:
                self._roots[alert.fingerprint] = alert
        self._seen = {key: (t if now_ns is None else max(t, now_ns), tags) for k, t, tags in snap.get("seen", [])
                      if kinds.get((key := _dec_key(k))[0]) == "absent" or version == SNAPSHOT_VERSION}
        self._fails = dict(snap.get("fails", {}))
        self._clock_due = {}
        self._rate_last = ({_dec_key(k): (t, v) for k, t, v in snap.get("rate_last", [])}
                           if version == SNAPSHOT_VERSION else {})

    # -- internals ------------------------------------------------------------------
    def _route_for(self, m: str, device: str, by_field) -> tuple[tuple[str, list[tuple[Rule, Any]]], ...]:
        """(field, rules) pairs for one device's samples of measurement ``m``, inventory selectors
        applied once and cached: after the first sample the hot path is one dict lookup per
        sample and one per field that has rules (fields without rules are never looked at)."""
        out = []
        for fname in self._fields_of.get(m, ()):
            rules = [(r, self._quick[r.name]) for r in by_field[(m, fname)]
                     if self._filters[r.name].ids is None or device in self._filters[r.name].ids]
            if rules:
                out.append((fname, rules))
        found = tuple(out)
        if len(self._route) < 1_000_000:  # bounded: a tag explosion must not eat memory
            self._route[(m, device)] = found
        return found

    def _series(self, s: Sample) -> tuple[str, SeriesKey]:
        tags = s.tags
        device = tags.get(DEVICE, "")
        comp = [(k, v) for k, v in tags.items() if k not in _NOT_SERIES]  # every series tag (a sample has few)
        if len(comp) > 1:
            comp.sort()
        return device, (device, *comp)

    def _location(self, device: str, tags: dict[str, str]) -> dict[str, str]:
        loc = self._loc_cache.get(device)
        if loc is None:
            if self.site is not None and device and self.site.has_device(device):
                lt = self.site.location_tags(self.site.device(device))
                loc = {k: lt.get(k, "") for k in PLACE_TAGS if lt.get(k)}
            else:
                loc = {k: tags[k] for k in PLACE_TAGS if k in tags}
            self._loc_cache[device] = loc
        return loc

    def _inventory_context(self, device: str, tags: dict[str, str]) -> dict[str, str]:
        """What the inventory adds to a summary's names: ``{racks}``, the racks a CDU's loop cools
        (the loop in the sample's ``loop`` tag, else every loop of the unit) or a device's own
        rack, so a leak alert on a CDU's detector names the racks at risk.  Worked out once per
        (device, loop), only for samples that raise an alert."""
        key = (device, tags.get(LOOP))
        ctx = self._inv_cache.get(key)
        if ctx is not None:
            return ctx
        ctx = {}
        site = self.site
        if site is not None and device and site.has_device(device):
            dev = site.device(device)
            if dev.kind == "cdu":
                if self._loop_index is None:
                    from inventory.loops import LoopIndex

                    self._loop_index = LoopIndex(site)
                idx = self._loop_index
                loops = [(device, key[1])] if key[1] in dev.loop_ids() else idx.loops_of_cdu(device)
                racks = list(dict.fromkeys(r for k in loops for r in idx.racks_on(k)))
                if racks:
                    ctx["racks"] = ",".join(racks)
            elif dev.rack:
                ctx["racks"] = dev.rack
        if len(self._inv_cache) < 100_000:
            self._inv_cache[key] = ctx
        return ctx

    def _eval(self, rule: Rule, s: Sample, value: Any, events: list,
              series: tuple[str, SeriesKey] | None = None) -> tuple[str, SeriesKey] | None:
        """Evaluate one rule on one field; returns the sample's series identity if it had to build it.

        Fast path (most samples, most of the time): a threshold rule whose value is
        inside bounds on a device with no pending/firing alert of that rule needs no
        series key, no state lookup and no step of the state machine.
        """
        device = s.tags.get("device", "")
        filt = self._filters[rule.name]
        if filt.tag_checks and not filt.accepts(device, s.tags):
            return series
        if filt.ids is not None and device not in filt.ids:
            return series
        if rule.match and not match_tags(rule.match, s.tags):
            return series
        self.evaluations += 1
        kind = rule.kind
        test = self._cond[rule.name].test
        cond: bool | None = None
        if kind == "threshold" and (rule.name, device) not in self._hot:
            # no active series of this rule on this device: no key needed unless the value breaches
            cond = test(value, False)
            if not cond:
                if cond is None:
                    self.skipped_type += 1
                return series
        if series is None:
            series = self._series(s)
        device, skey = series
        key = (rule.name, skey)
        t = s.time_ns
        shown: Any = value
        if kind == "device_down":
            fk = rule.name + "\x00" + device
            if value is True or value == 1:
                self._fails[fk] = 0
                cond, shown = False, 0
            else:
                n = self._fails.get(fk, 0) + 1
                self._fails[fk] = n
                cond, shown = n >= rule.polls, n
        elif kind == "rate":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.skipped_type += 1
                return series
            prev = self._rate_last.get(key)
            self._rate_last[key] = (t, float(value))
            if prev is None or t <= prev[0]:
                return series
            shown = (float(value) - prev[1]) * _NS / (t - prev[0])
            cond = test(shown, key in self._alerts)
        elif cond is None:  # threshold on a device with active series: this one may be among them
            cond = test(value, key in self._alerts)
            if cond is None:
                self.skipped_type += 1
                return series
        self._step(rule, key, device, skey, s.tags, s.fields, shown, cond, t, events)
        return series

    def _step(self, rule: Rule, key, device: str, skey: SeriesKey, tags, fields, value, cond: bool, t: int,
              events: list) -> None:
        a = self._alerts.get(key)
        if cond:
            if a is None:
                a = self._new(rule, key, device, skey, tags, value, t)
            a.value = value
            if fields:
                a.context = {**self._inventory_context(device, tags),
                             **{k: v for k, v in fields.items() if isinstance(v, str)}}
            if a.state == "pending":
                if t - a.pending_since_ns >= rule.for_s * _NS or (fields is not None and TRAP_FIELD in fields):
                    self._fire(a, rule, t, events)
            elif rule.renotify_s and t - a.last_sent_ns >= rule.renotify_s * _NS:
                self._send(a, rule, t, events, renotify=True)
        elif a is not None:
            a.value = value
            del self._alerts[key]
            self._unhot(a.rule, a.device)
            self._by_fp.pop(a.fingerprint, None)
            if a.state == "firing":
                a.state = "resolved"
                self._roots.pop(a.fingerprint, None)
                events.append(a.event(rule, t))

    def _new(self, rule: Rule, key, device: str, skey: SeriesKey, tags, value, t: int) -> Alert:
        series = {"device": device, **{k: v for k, v in skey[1:]}}
        a = Alert(
            rule=rule.name, fingerprint=fingerprint(rule.name, series), severity=rule.severity, device=device,
            series=series, location=self._location(device, tags), state="pending", value=value,
            threshold=rule.threshold_value(), pending_since_ns=t, since_ns=t, labels=dict(rule.labels),
        )
        self._alerts[key] = a
        hk = (rule.name, device)
        self._hot[hk] = self._hot.get(hk, 0) + 1
        self._by_fp[a.fingerprint] = a
        return a

    def _unhot(self, rule: str, device: str) -> None:
        hk = (rule, device)
        n = self._hot.get(hk, 0) - 1
        if n > 0:
            self._hot[hk] = n
        else:
            self._hot.pop(hk, None)

    def _fire(self, a: Alert, rule: Rule, t: int, events: list) -> None:
        a.state = "firing"
        a.since_ns = t
        if rule.explains:
            self._roots[a.fingerprint] = a
        roots = self.all_roots()
        if self.suppressor is not None and roots:
            a.suppressed_by = self.suppressor(a, roots)
        self._send(a, rule, t, events)

    def _send(self, a: Alert, rule: Rule, t: int, events: list, *, renotify: bool = False) -> None:
        a.last_sent_ns = t
        a.notifications += 1
        events.append(a.event(rule, t, renotify=renotify))

    def _mark_seen(self, rule: Rule, s: Sample, events: list) -> None:
        if rule.field and rule.field not in s.fields:
            return
        tags = s.tags
        device = tags.get("device", "")
        if not self._filters[rule.name].accepts(device, tags):
            return
        if rule.match and not match_tags(rule.match, tags):
            return
        self.evaluations += 1
        skey = (device,) if rule.kind == "absent" else self._series(s)[1]
        key = (rule.name, skey)
        # the sample's own tags (samples are never modified once emitted): no copy per sample
        self._seen[key] = (s.time_ns, tags)
        scanned = self._clock_due.get(rule.name)
        if scanned is not None and s.time_ns + (rule.stale_after_s or 0) * _NS < scanned[1]:
            del self._clock_due[rule.name]  # an older time than the last scan assumed: scan again
        if key in self._alerts:
            self._step(rule, key, device, skey, s.tags, None, 0.0, False, s.time_ns, events)

    def _tick_clock(self, rule: Rule, now: int, events: list) -> None:
        """Stale/absent clocks of one rule at ``now``.

        The whole scan (every series of the rule: on a full-site shard ≈120,000 PDU series for
        ``pdu-data-stale``, every second) runs only when a series can have gone stale since the
        last one: at the last scan the earliest was due at ``min(last seen) + stale_after_s``, and
        samples only move a series' time forward (:meth:`_mark_seen` brings the scan forward for
        one that moves it back).  In between, only the rule's own alerts are stepped (their
        ``for_s`` and re-notify timers)."""
        limit = (rule.stale_after_s or 0) * _NS
        scanned = self._clock_due.get(rule.name)
        full = scanned is None or not scanned[0] <= now < scanned[1]
        if not full:
            keys = [k for k in self._alerts if k[0] == rule.name]
        elif rule.kind == "absent":
            keys = [(rule.name, (device,)) for device in self._expected(rule)]
        else:
            keys = [k for k in self._seen if k[0] == rule.name]
        never = (self.started_ns or now, {})  # an expected device not seen yet: silent since the start
        due = now + limit + 1
        for key in keys:
            last, tags = self._seen.get(key, never)
            age = now - last
            if age > limit or key in self._alerts:
                skey = key[1]
                self._step(rule, key, skey[0], skey, tags, None, round(age / _NS, 3), age > limit, now, events)
            if age <= limit:
                due = min(due, last + limit + 1)
        if full:
            self._clock_due[rule.name] = (now, due)

    def _expected(self, rule: Rule) -> list[str]:
        ids = self._filters[rule.name].ids
        if ids is not None:
            return sorted(ids)
        if rule.select is not None and rule.select.device is not None and self.site is None:
            d = rule.select.device
            return [d] if isinstance(d, str) else list(d)
        # no inventory: only devices seen at least once can go absent
        return sorted({k[1][0] for k in self._seen if k[0] == rule.name})

    def _refresh_suppression(self, events: list) -> None:
        """A root alert fired or resolved: recompute ``suppressed_by`` for every firing alert."""
        if self.suppressor is None:
            return
        roots_changed = any(
            (r := self.rules.by_name.get(e["rule"])) is not None and r.explains for e in events
            if e["state"] in ("firing", "resolved") and not e["renotify"]
        )
        if roots_changed:
            self._resuppress(events)

    def _resuppress(self, events: list) -> None:
        if self.suppressor is None:
            return
        roots = self.all_roots()
        for a in self.firing().values():
            new = self.suppressor(a, roots) if roots else ""
            if new != a.suppressed_by:
                a.suppressed_by = new
                self.updated.append(a)
                for e in events:  # an event of this same batch goes out with the current view
                    if e["fingerprint"] == a.fingerprint and e["state"] == "firing":
                        e["suppressed_by"] = new


def _enc_key(key: tuple[str, SeriesKey]) -> list:
    rule, skey = key
    return [rule, skey[0], skey[1:]]  # JSON writes the (name, value) tuples as arrays: no copies


def _dec_key(obj: list) -> tuple[str, SeriesKey]:
    rule, device, comps = obj
    return rule, (device,) + tuple(tuple(p) for p in comps)
