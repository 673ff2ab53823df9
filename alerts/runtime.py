"""The rule engine inside the running system: samples in, events to MQTT, InfluxDB and listeners.

``dcim.service.CollectionService.add_consumer(runtime.consume)`` feeds it every
batch; the owner calls ``await runtime.tick(now_ns)`` once a second.  ``consume``
only evaluates and appends to the outbox (SQLite, one transaction per batch);
network I/O happens in the publisher's threads, so a slow or absent broker
never slows collection down.

Order per batch of events: decorate (silenced/acked) -> persist the engine
snapshot -> outbox -> InfluxDB ``alert`` samples -> listeners.  The snapshot is
written before the outbox so a crash in between re-sends rather than forgets.

With ``alertmanager`` settings every firing and resolution also goes to each
Alertmanager peer's outbox (``alerts/alertmanager_sender.py``); firing alerts
are re-sent every ``resend_s`` (and at once after a restart: same labels, so
Alertmanager does not page again), and dcim silences and acks are mirrored as
Alertmanager silences.  Through MQTT the runtime also reads every engine's
retained active state and hands the other shards' firing roots to the engine,
so suppression is the same as one engine evaluating the whole site.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from alerts.alertmanager_payload import alert_labels, postable_alert, silence_body
from alerts.alertmanager_sender import AlertmanagerCluster, AlertmanagerSettings
from alerts.evaluate import Alert, Engine
from alerts.mqtt_publisher import MqttPublisher, MqttSettings, active_message, event_messages
from alerts.outbox import Outbox
from alerts.state_dir import lock_state_dir
from alerts.rules import RuleSet, load_rules
from alerts.selectors import parse_selector
from alerts.silences import SilenceError, Silences, parse_duration
from alerts.state_store import StateFileError, StateStore
from alerts.suppression import Suppressor
from contract.alert_event import (ACKED, DEVICE, FINGERPRINT, FIRING, RESOLVED, RULE, SERIES, SEVERITY, SILENCED,
                                  STATE, THRESHOLD, TIME_NS, VALUE, alert_point)
from contract.derived import MEASUREMENTS as DERIVED_MEASUREMENTS
from contract.tags import PLACE_TAGS
from contract.sample import Sample
from inventory.topology import PowerGraph

__all__ = ["AlertRuntime"]

log = logging.getLogger(__name__)
_NS = 1_000_000_000


_ACK_SILENCE_NS = 7 * 86400 * _NS  # an ack's Alertmanager silence; expired earlier when the alert resolves


def _labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _remote_root(payload: bytes, rules: RuleSet) -> Alert | None:
    """A firing root alert from another engine's retained state, or None (not a root, or unreadable)."""
    try:
        e = json.loads(payload)
        rule = rules.by_name.get(e[RULE])
        if rule is None or not rule.explains or e.get(STATE) != FIRING:
            return None
        return Alert(rule=e[RULE], fingerprint=e[FINGERPRINT], severity=e.get(SEVERITY, ""),
                     device=e.get(DEVICE, ""), series=dict(e.get(SERIES) or {}),
                     location={k: e[k] for k in PLACE_TAGS if e.get(k)}, state=FIRING,
                     value=e.get(VALUE), threshold=e.get(THRESHOLD), pending_since_ns=0, since_ns=0)
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("unreadable retained alert state ignored (%d bytes)", len(payload))
        return None


async def _written_by(end: float, write: Callable[[dict[str, Any]], None], data: dict[str, Any]) -> bool:
    """``write(data)`` in a worker thread, waited for until ``end`` (``time.monotonic()``; at least
    0.1 s); False if it is still running then (it finishes in its thread).  Its errors are raised."""
    job = asyncio.ensure_future(asyncio.to_thread(write, data))
    done, _ = await asyncio.wait((job,), timeout=max(0.1, end - time.monotonic()))
    if done:
        job.result()
    return bool(done)


class AlertRuntime:
    def __init__(self, site, rules: RuleSet | str | Path, *, state_dir: Path, mqtt: MqttSettings | None,
                 influx_writer=None, clock: Callable[[], int] = time.time_ns, save_interval_s: float = 0.25,
                 clocks_interval_s: float = 300.0, save_duty: float = 0.1,
                 alertmanager: AlertmanagerSettings | None = None, local_devices: Iterable[str] | None = None,
                 link_for: Callable[[dict[str, Any]], str] | None = None, engine_id: str | None = None,
                 evaluates_derived: bool = False) -> None:
        """``local_devices``: the devices whose samples this engine gets (its shard); roots on them
        are its own to judge, and the other engines' retained state is believed for the rest (None:
        believe every other engine).  ``evaluates_derived``: this engine is fed the derived
        measurements (``contract.derived.MEASUREMENTS``: in-process ``--derived``); without it the
        roots of rules on them (a degraded cooling loop on a CDU this shard polls) come from the
        site-level ``dcim derived run`` engine and are believed even on local devices.  ``link_for(event)``: the Grafana link put on Alertmanager
        alerts.  ``engine_id``: this replica's name in the Alertmanager silences it makes."""
        self.site = site
        self.rules = rules if isinstance(rules, RuleSet) else load_rules(rules)
        self.state_dir = Path(state_dir)
        self._lock_fd = lock_state_dir(self.state_dir)
        self.clock = clock
        self.site_id = site.site.id if site is not None else (mqtt.site if mqtt else "site")
        graph = PowerGraph(site) if site is not None else None
        suppressor = Suppressor(graph, self.rules.by_name.get) if graph is not None else None
        self.engine = Engine(self.rules, site, suppressor=suppressor)
        self.store = StateStore(self.state_dir)
        try:
            snap = self.store.load()
            if snap:
                self.engine.restore(snap, now_ns=clock())
        except (StateFileError, ValueError) as exc:
            # alerting must go on: keep the bad file for inspection, start from an empty state
            aside = self.store.path.with_name(f"{self.store.path.name}.corrupt-{clock()}")
            self.store.path.rename(aside)
            log.error("alert state unreadable (%s); moved to %s, starting fresh", exc, aside)
            self.engine = Engine(self.rules, site, suppressor=suppressor)
        self.silences = Silences(self.state_dir)
        self.influx_writer = influx_writer
        self.publisher: MqttPublisher | None = None
        if mqtt is not None:
            if mqtt.site == "site" and site is not None:
                mqtt.site = self.site_id
            self.outbox = Outbox(self.state_dir / "outbox.sqlite", max_messages=mqtt.outbox_max)
            self.publisher = MqttPublisher(mqtt, self.outbox)
        self.local_devices = frozenset(local_devices) if local_devices is not None else None
        self.evaluates_derived = evaluates_derived
        self.link_for = link_for
        self.remote_roots: dict[str, Alert] = {}
        self.am: AlertmanagerCluster | None = None
        self._am_labels: dict[str, str] = {}  # fingerprint -> labels (JSON) of the firing alert Alertmanager has
        self._am_resent_ns = 0
        self.engine_id = engine_id or socket.gethostname()
        if alertmanager is not None:
            self.am = AlertmanagerCluster(alertmanager, self.state_dir, owner=self.engine_id)
            for a in self.engine.active():  # restored: what Alertmanager was told before the restart
                self._am_labels[a.fingerprint] = _labels_key(alert_labels(self._event_of(a, clock())))
        self.recent: deque[dict[str, Any]] = deque(maxlen=1000)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.commands_rejected = 0
        self._dirty = False
        self._last_save = 0
        self._last_save_mono = 0.0
        self._save_pending = False
        self.save_interval_s = save_interval_s
        #: the most of the time the alerts snapshot may take: the next save waits at least
        #: ``1/save_duty`` times as long as the last one took.  Why: a save is O(alerts); in a storm
        #: (a full-site shard with thousands of devices failing) saving 4 times a second took a
        #: fifth of the shard's CPU in JSON encoding alone.  The events themselves are safe in the
        #: outbox; what waits longer is only the snapshot a restart continues from.  0: no bound
        self.save_duty = save_duty
        self._save_cost_s = 0.0
        #: what encoding and writing the series clocks took last time (the stop's budget check)
        self._clocks_cost_s = 0.0
        #: how often the series clocks are written beside the alerts (and always at stop).  Five
        #: minutes: a restart restarts the stale/absent clocks at its own time anyway, so what the
        #: file carries over is which series exist and the rate baselines, and those change slowly;
        #: once a minute, encoding ≈200,000 entries was ≈8 % of a full-site shard's CPU.  After a
        #: crash (not a stop) a series first seen in the last interval is unknown until it is seen again
        self.clocks_interval_s = clocks_interval_s
        self._last_clocks_mono = float("-inf")
        self._any_flags = any(a.silenced or a.acked for a in self.engine.active())

    # -- the interface the service and the demo call --------------------------------------------
    def consume(self, samples: list[Sample]) -> None:
        """Evaluate one batch (cheap, non-blocking: no network I/O here)."""
        events = self.engine.observe(samples)
        self._dirty = True
        if events or self.engine.updated:
            self._handle(events, self.clock())

    async def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()
        if self.am is not None:
            self.am.start()

    async def tick(self, now_ns: int | None = None) -> None:
        now = self.clock() if now_ns is None else now_ns
        self._commands(now)
        self.silences.reload_if_changed()
        self.silences.prune(now)  # silences.json holds what is active or just ended, not all history
        self._refresh_flags(now)  # silences start and end with time, not only when edited
        self._absorb_remote_roots()
        events = self.engine.tick(now)
        if events or self.engine.updated:
            self._handle(events, now)
        if self.am is not None:
            self._am_resend(now)
            self.am.set_silences(self._am_silences(now))
        mono = time.monotonic()
        spacing = max(self.save_interval_s, self._save_cost_s / self.save_duty if self.save_duty > 0 else 0.0)
        wanted = self._save_pending or (self._dirty and now - self._last_save > 30 * _NS)
        if wanted and mono - self._last_save_mono >= spacing:
            # the snapshot is taken here, on the loop; the JSON and the fsyncs go to a thread so
            # they never hold up the collectors that share this event loop.  The series clocks
            # (O(series), ≈200,000 on a full-site shard) go once per clocks_interval_s, not
            # with every alert change
            snapshot = self.engine.snapshot_alerts()
            t_clocks = time.monotonic()
            clocks = self.engine.snapshot_clocks() if mono - self._last_clocks_mono >= self.clocks_interval_s else None
            clocks_taken = time.monotonic() - t_clocks
            self._saved(now, clocks=clocks is not None)
            clocks_written = await asyncio.to_thread(self._write, snapshot, clocks)
            self._save_cost_s = time.monotonic() - mono
            if clocks is not None:
                self._clocks_cost_s = clocks_taken + clocks_written

    def _write(self, snapshot: dict[str, Any], clocks: dict[str, Any] | None) -> float:
        """Write the snapshot (and the clocks, if given); the seconds the clocks took."""
        self.store.save(snapshot)
        if clocks is None:
            return 0.0
        t0 = time.monotonic()
        self.store.save_clocks(clocks)
        return time.monotonic() - t0

    async def stop(self, timeout: float = 5.0) -> None:
        """Save the state (half of ``timeout`` at most), then hand what is left to the MQTT
        publisher and the Alertmanager sender, each bounded by what remains of ``timeout``.
        Undelivered events stay in the outbox for the next start."""
        end = time.monotonic() + timeout
        await self._save_at_stop(self.clock(), budget_s=timeout / 2)
        loop = asyncio.get_running_loop()
        if self.publisher is not None:
            await loop.run_in_executor(None, self.publisher.stop, max(0.2, end - time.monotonic()))
            self.outbox.close()
        if self.am is not None:
            await loop.run_in_executor(None, self.am.stop, max(0.2, end - time.monotonic()))

    def active(self) -> list[Alert]:
        return self.engine.active()

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """``fn(event)`` for every event (the demo's live view)."""
        self.listeners.append(fn)

    # -- silences and acks (CLI in-process, MQTT commands) ------------------------------------------
    def silence(self, match: dict[str, str], *, duration_s: float, author: str, reason: str, now_ns: int | None = None,
                starts_ns: int | None = None):
        now = self.clock() if now_ns is None else now_ns
        s = self.silences.add(match, duration_s=duration_s, author=author, reason=reason, now_ns=now,
                              starts_ns=int(starts_ns) if starts_ns is not None else None)
        self._refresh_flags(now)
        return s

    def ack(self, fingerprint: str, *, author: str, comment: str = "", now_ns: int | None = None):
        now = self.clock() if now_ns is None else now_ns
        a = self.silences.ack(fingerprint, author=author, comment=comment, now_ns=now)
        self._refresh_flags(now)
        return a

    # -- internals -----------------------------------------------------------------------------------
    def _handle(self, events: list[dict[str, Any]], now: int) -> None:
        flags = self._has_flags()
        for e in events:
            if flags:
                e[SILENCED] = self.silences.silenced_by(e, e[TIME_NS]) is not None
                e[ACKED] = self.silences.is_acked(e[FINGERPRINT])
                a = self.engine.get(e[FINGERPRINT])
                if a is not None:
                    a.silenced, a.acked = e[SILENCED], e[ACKED]
                    self._any_flags = self._any_flags or a.silenced or a.acked
            if e[STATE] == RESOLVED and self.silences.state.acks:
                self.silences.clear_ack(e[FINGERPRINT], now)
        updated = self.engine.updated
        self.engine.updated = []
        self._save_soon(now)
        if self.publisher is not None:
            msgs = []
            for e in events:
                msgs += event_messages(self.site_id, e)
            for a in updated:
                if a.state == FIRING:
                    msgs.append(active_message(self.site_id, self._event_of(a, now)))
            self.publisher.enqueue(msgs)
        if self.am is not None:
            rows: list[tuple[str, bytes]] = []
            for e in events:
                if e[STATE] == FIRING:
                    rows += self._am_firing(e, now)
                elif e[STATE] == RESOLVED:
                    rows += self._am_resolved(e)
            for a in updated:
                if a.state == FIRING:
                    rows += self._am_firing(self._event_of(a, now), now)
            self.am.enqueue(rows)
        if self.influx_writer is not None and events:
            self.influx_writer.write([alert_point(e) for e in events])
        for e in events:
            self.recent.append(e)
            for fn in self.listeners:
                try:
                    fn(e)
                except Exception:  # a listener must not stop alerting
                    log.exception("alert listener failed")

    # -- Alertmanager ---------------------------------------------------------------------------------
    def _am_row(self, e: dict[str, Any], labels: dict[str, str], ends_ns: int | None) -> tuple[str, bytes]:
        link = self.link_for(e) if self.link_for is not None else ""
        body = postable_alert(e, labels, link=link, ends_ns=ends_ns)
        return e[FINGERPRINT], json.dumps(body, separators=(",", ":"), default=str).encode()

    def _am_firing(self, e: dict[str, Any], now: int) -> list[tuple[str, bytes]]:
        """A firing alert; if its labels changed (suppression came or went), the old label set
        is resolved first, since Alertmanager knows alerts by their labels only."""
        labels = alert_labels(e)
        key = _labels_key(labels)
        old = self._am_labels.get(e[FINGERPRINT])
        rows = []
        if old is not None and old != key:
            rows.append(self._am_row(e, json.loads(old), now))
        self._am_labels[e[FINGERPRINT]] = key
        rows.append(self._am_row(e, labels, None))
        return rows

    def _am_resolved(self, e: dict[str, Any]) -> list[tuple[str, bytes]]:
        old = self._am_labels.pop(e[FINGERPRINT], None)
        labels = json.loads(old) if old is not None else alert_labels(e)
        return [self._am_row(e, labels, int(e[TIME_NS]))]

    def _am_resend(self, now: int) -> None:
        """Every ``resend_s``: every firing alert again (its ``endsAt`` moves on), except those
        still waiting in an outbox (they get a fresh ``endsAt`` when they leave)."""
        assert self.am is not None
        if now - self._am_resent_ns < self.am.settings.resend_s * _NS:
            return
        self._am_resent_ns = now
        waiting = self.am.pending_keys()
        rows = []
        for a in self.engine.active():
            if a.fingerprint not in waiting:
                rows += self._am_firing(self._event_of(a, now), now)
        self.am.enqueue(rows)

    def _am_silences(self, now: int) -> dict[str, dict[str, Any]]:
        """dcim silences (not yet ended) and acks of firing alerts, as Alertmanager silences."""
        want: dict[str, dict[str, Any]] = {}
        for s in self.silences.state.silences:
            if s.ends_ns > now:
                want["s-" + s.id] = silence_body(self.engine_id, "s-" + s.id, s.match, starts_ns=s.starts_ns,
                                                 ends_ns=s.ends_ns, author=s.author, comment=s.reason)
        for fp, a in self.silences.state.acks.items():
            if self.engine.get(fp) is not None:  # an ack lasts until the alert resolves
                want["a-" + fp] = silence_body(self.engine_id, "a-" + fp, {FINGERPRINT: fp}, starts_ns=a.time_ns,
                                               ends_ns=a.time_ns + _ACK_SILENCE_NS, author=a.author,
                                               comment=f"ack: {a.comment}".strip())
        return want

    # -- other shards' roots ------------------------------------------------------------------------------
    def _absorb_remote_roots(self) -> None:
        """Retained active state from the broker -> the firing roots of other engines."""
        if self.publisher is None or not self.publisher.active_updates:
            return
        q = self.publisher.active_updates
        changed = False
        while q:
            topic, payload = q.popleft()
            fp = topic.rsplit("/", 1)[-1]
            root = _remote_root(payload, self.rules) if payload else None
            if root is not None and self._judges(root):
                root = None  # our own shard's: this engine judges those itself
            if root is None:
                changed = self.remote_roots.pop(fp, None) is not None or changed
            elif fp not in self.remote_roots:
                self.remote_roots[fp] = root
                changed = True
        if changed:
            self.engine.set_external_roots(self.remote_roots)

    def _judges(self, root: Alert) -> bool:
        """Whether this engine evaluates ``root`` itself (so another engine's copy is not believed)."""
        if self.local_devices is None or root.device not in self.local_devices:
            return False
        rule = self.rules.by_name.get(root.rule)
        return self.evaluates_derived or rule is None or rule.measurement not in DERIVED_MEASUREMENTS

    def _event_of(self, a: Alert, now: int) -> dict[str, Any]:
        rule = self.engine.rule_of(a)
        assert rule is not None
        return a.event(rule, now)

    def _has_flags(self) -> bool:
        return bool(self.silences.state.silences or self.silences.state.acks)

    def _refresh_flags(self, now: int) -> None:
        """Silences/acks changed or started/ended: republish retained state of firing alerts whose flags changed."""
        if not self._has_flags() and not self._any_flags:
            return  # nothing can be silenced or acked, and nothing is
        changed = []
        any_flags = False
        for a in self.engine.active():
            silenced = self.silences.silenced_by(a.match_view(), now) is not None
            acked = self.silences.is_acked(a.fingerprint)
            any_flags = any_flags or silenced or acked
            if (silenced, acked) != (a.silenced, a.acked):
                a.silenced, a.acked = silenced, acked
                changed.append(a)
        self._any_flags = any_flags
        if changed:
            self.engine.updated.extend(changed)
            self._handle([], now)

    def _save_soon(self, now: int) -> None:
        """Mark a change batch for the next ``tick`` to persist; in a storm, one snapshot per
        ``save_interval_s``.

        Never written here: ``consume`` runs on the collectors' event loop, and the snapshot
        is the whole engine state (O(alerts)) plus two fsyncs.  A crash before the next tick
        loses at most those transitions from the snapshot; their events are already safe
        in the outbox."""
        self._save_pending = True

    async def _save_at_stop(self, now: int, budget_s: float) -> None:
        """The alerts, then the series clocks unless, at what they took last time, they would not
        fit in what is left of ``budget_s``; both written by a worker thread, waited for at most
        ``budget_s`` in all.

        Why bounded: SIGTERM promises an exit within 10 s.  On a full-site shard in a storm
        the alerts are thousands of entries and the clocks ≈200,000, and with InfluxDB
        writing on the same disk one fsync took seconds: a stop once spent 5 s here alone.  A
        write that does not finish in time is left to the thread (the file is replaced whole or
        not at all): the file keeps the previous snapshot, at most a few seconds older, as after a
        crash, and the events themselves are already in the outbox."""
        end = time.monotonic() + budget_s
        snapshot = self.engine.snapshot_alerts()  # on the loop: polling has stopped, nothing changes it
        if not await _written_by(end, self.store.save, snapshot):
            log.warning("alerts snapshot not written within the stop's budget (%.1f s): %s keeps the last one; "
                        "the events are in the outbox", budget_s, self.store.path)
            return
        left = end - time.monotonic()
        clocks = self._clocks_cost_s <= left
        if clocks:
            t1 = time.monotonic()
            # built in the thread too: ≈200,000 entries on a full-site shard are 0.4-0.7 s of CPU
            # (seconds of wall time on a loaded machine) that the loop spent before the wait that
            # bounds the write had even begun (a full-site stop overran its budget by 1.4 s, this
            # the likely part); polling has stopped, nothing changes them
            if await _written_by(end, lambda _: self.store.save_clocks(self.engine.snapshot_clocks()), {}):
                self._clocks_cost_s = time.monotonic() - t1
            else:
                clocks = False
                log.warning("series clocks not written within the stop's budget (%.1f s): %s keeps the last ones",
                            budget_s, self.store.clocks_path)
        else:
            log.warning("series clocks not written at stop: they took %.1f s last time, %.1f s of the stop budget "
                        "is left; %s keeps the last ones", self._clocks_cost_s, max(0.0, left), self.store.clocks_path)
        self._saved(now, clocks=clocks)

    def _saved(self, now: int, clocks: bool = False) -> None:
        self._dirty = False
        self._save_pending = False
        self._last_save = now
        self._last_save_mono = time.monotonic()
        if clocks:
            self._last_clocks_mono = self._last_save_mono

    def _commands(self, now: int) -> None:
        if self.publisher is None:
            return
        while True:
            try:
                topic, payload = self.publisher.commands.get_nowait()
            except Exception:
                return
            try:
                self._command(topic.rsplit("/", 1)[-1], payload, now)
            except (SilenceError, ValueError, KeyError, TypeError) as exc:
                self.commands_rejected += 1
                log.warning("MQTT command on %s rejected: %s", topic, exc)

    def _command(self, verb: str, payload: bytes, now: int) -> None:
        try:
            body = json.loads(payload.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"payload is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("payload must be a JSON object")
        if verb == "silence":
            sel = body.get("select")
            match = parse_selector(sel) if isinstance(sel, str) else dict(sel or {})
            dur = body.get("duration_s") or parse_duration(body.get("duration", ""))
            self.silence(match, duration_s=float(dur), author=str(body.get("author", "")),
                         reason=str(body.get("reason", "")), now_ns=now, starts_ns=body.get("starts_ns"))
        elif verb == "ack":
            fps = body.get("fingerprints") or [body.get("fingerprint", "")]
            for fp in fps:
                self.ack(str(fp), author=str(body.get("author", "")), comment=str(body.get("comment", "")), now_ns=now)
        elif verb == "expire":
            self.silences.expire(str(body["id"]), author=str(body.get("author", "")), now_ns=now)
            self._refresh_flags(now)
        else:
            raise ValueError(f"unknown command {verb!r} (silence, ack, expire)")
