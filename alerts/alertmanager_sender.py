"""Alerts to Prometheus Alertmanager (API v2) through one persisted outbox per peer.

Every alert the engine wants Alertmanager to know is first appended to the
outbox of each peer (``state_dir/alertmanager-<n>.sqlite``, the same SQLite
FIFO as the MQTT outbox: key = dcim fingerprint, payload = the postable alert
as JSON) and removed only when that peer answers 2xx, so an Alertmanager
outage or an engine restart loses no firing and no resolution.  Like
Prometheus, the engine sends to every peer of a cluster; the peers gossip and
deduplicate, so one page goes out.

Each peer has its own thread (blocking HTTP is simplest here and never touches
the collectors' event loop).  It posts the oldest rows in batches, the newest
row per label set winning within a batch (a firing then resolved alert is
sent once, resolved), fills ``endsAt`` of firing alerts at send time
(``now + 4 × resend_s``), and backs off exponentially while the peer is down
or refuses the credentials.  A batch refused as malformed (400) is sent again
row by row and only the refused rows are dropped and logged: retried whole,
it would block every alert behind it forever.

Silences are reconciled, not queued: :meth:`AlertmanagerCluster.set_silences`
hands over the wanted set (dcim silences and acks as Alertmanager silences);
the silence thread makes the first reachable peer hold exactly those (creating
what is missing, expiring what dcim owns and no longer wants) and retries while
none answers.  The peers gossip silences among themselves.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.alertmanager_payload import iso, owned_silence_key, same_silence
from alerts.outbox import Outbox
from inventory.secrets import SecretRef, SecretValue

__all__ = ["AlertmanagerSettings", "AlertmanagerPeer", "AlertmanagerCluster"]

log = logging.getLogger(__name__)
_NS = 1_000_000_000


@dataclass
class AlertmanagerSettings:
    """Where the Alertmanagers are and how to talk to them.  Secrets are references, read when used."""

    urls: list[str] = field(default_factory=list)
    resend_s: float = 60.0
    timeout_s: float = 10.0
    batch: int = 500
    outbox_max: int = 100_000
    max_backoff_s: float = 10.0
    username: str | None = None
    password: SecretRef | None = None
    bearer_token: SecretRef | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_env(cls, urls: list[str], environ: dict[str, str] | None = None, **kw: Any) -> "AlertmanagerSettings":
        """``DCIM_ALERTMANAGER_USERNAME`` with ``DCIM_ALERTMANAGER_PASSWORD`` or ``..._PASSWORD_FILE`` (basic
        auth), or ``DCIM_ALERTMANAGER_TOKEN`` / ``..._TOKEN_FILE`` (bearer); ``DCIM_ALERTMANAGER_CA``,
        ``..._CERT``, ``..._KEY`` for TLS (https URLs)."""
        env = os.environ if environ is None else environ
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"--alertmanager {u!r}: expected http(s)://HOST:PORT")

        def ref(name: str) -> SecretRef | None:
            if env.get(f"{name}_FILE"):
                return SecretRef(file=env[f"{name}_FILE"])
            if name in env:
                return SecretRef(env=name)
            return None
        return cls(urls=[u.rstrip("/") for u in urls], username=env.get("DCIM_ALERTMANAGER_USERNAME"),
                   password=ref("DCIM_ALERTMANAGER_PASSWORD"), bearer_token=ref("DCIM_ALERTMANAGER_TOKEN"),
                   ca_file=env.get("DCIM_ALERTMANAGER_CA"), cert_file=env.get("DCIM_ALERTMANAGER_CERT"),
                   key_file=env.get("DCIM_ALERTMANAGER_KEY"), **kw)

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.bearer_token is not None:
            h["Authorization"] = "Bearer " + self.bearer_token.resolve().reveal()
        elif self.username:
            pw: SecretValue | None = self.password.resolve() if self.password else None
            raw = f"{self.username}:{pw.reveal() if pw else ''}".encode()
            h["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return h

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.ca_file and not self.cert_file:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _request(settings: AlertmanagerSettings, ctx, method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=settings.headers())
    with urllib.request.urlopen(req, timeout=settings.timeout_s, context=ctx) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


class AlertmanagerPeer:
    """One Alertmanager: its outbox and the thread that empties it."""

    def __init__(self, url: str, settings: AlertmanagerSettings, outbox: Outbox) -> None:
        self.url = url
        self.settings = settings
        self.outbox = outbox
        self.posted = 0        # alerts acknowledged by this peer
        self.failures = 0      # failed POSTs (retried)
        self.rejected = 0      # alerts Alertmanager refused as invalid (400): dropped, logged
        self.up = False
        self._ctx = settings.ssl_context()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._pump, name=f"alertmanager-{self.url}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self.drain(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def enqueue(self, rows: list[tuple[str, bytes]]) -> None:
        if rows:
            self.outbox.append([(key, payload, 0, False) for key, payload in rows])
            self._wake.set()

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.outbox.empty():
            self._wake.set()
            time.sleep(0.02)
        return self.outbox.empty()

    def _pump(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(backoff or 0.5)
            self._wake.clear()
            rows = self.outbox.pending(limit=self.settings.batch)
            if not rows:
                continue
            try:
                self._post(rows)
            except (OSError, ValueError) as exc:  # HTTPError is a URLError is an OSError
                if isinstance(exc, urllib.error.HTTPError) and exc.code in (400, 422):
                    # refused as malformed: retrying would block everything behind it
                    self._one_by_one(rows)
                    continue
                self.failures += 1
                if self.up or backoff == 0:
                    log.warning("Alertmanager %s: %s; %d alert(s) wait in its outbox", self.url, exc, len(self.outbox))
                self.up = False
                backoff = min(self.settings.max_backoff_s, max(0.25, backoff * 2))
                continue
            if not self.up:
                log.info("Alertmanager %s: reachable", self.url)
            self.up = True
            backoff = 0.0
            self.outbox.ack([r.seq for r in rows])
            self.posted += len(rows)
            if not self.outbox.empty():
                self._wake.set()

    def _one_by_one(self, rows) -> None:
        """A batch was refused as invalid: send its rows one at a time, drop (and log) only the bad ones."""
        done = []
        for r in rows:
            try:
                self._post([r])
            except urllib.error.HTTPError as exc:
                if exc.code not in (400, 422):
                    break
                log.error("Alertmanager %s refused alert %s as invalid (%s); dropped", self.url, r.topic, exc)
                self.rejected += 1
            except (OSError, urllib.error.URLError, ValueError):
                break
            else:
                self.posted += 1
            done.append(r.seq)
        self.outbox.ack(done)

    def _post(self, rows) -> None:
        now = time.time_ns()
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:  # oldest first: the newest word on a label set wins
            alert = json.loads(r.payload)
            latest[json.dumps(alert["labels"], sort_keys=True)] = alert
        body = []
        for alert in latest.values():
            if "endsAt" not in alert:
                alert["endsAt"] = iso(now + int(4 * self.settings.resend_s * _NS))
            body.append(alert)
        _request(self.settings, self._ctx, "POST", self.url + "/api/v2/alerts", body)


class AlertmanagerCluster:
    """All peers of one Alertmanager cluster, plus silence reconciliation."""

    def __init__(self, settings: AlertmanagerSettings, state_dir: Path, *, owner: str) -> None:
        """``owner``: this engine's name in the silences it makes (unique per replica: the pod name)."""
        if not settings.urls:
            raise ValueError("alertmanager: urls is empty")
        self.settings = settings
        self.owner = owner
        self.peers = [AlertmanagerPeer(u, settings, Outbox(Path(state_dir) / f"alertmanager-{i}.sqlite",
                                                           max_messages=settings.outbox_max))
                      for i, u in enumerate(settings.urls)]
        self.silence_syncs = 0
        self._ctx = settings.ssl_context()
        self._want: dict[str, dict[str, Any]] | None = None
        self._synced: dict[str, dict[str, Any]] | None = None
        self._next_sync = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for p in self.peers:
            p.start()
        self._thread = threading.Thread(target=self._silence_loop, name="alertmanager-silences", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        for p in self.peers:
            p.stop(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for p in self.peers:
            p.outbox.close()

    def enqueue(self, rows: list[tuple[str, bytes]]) -> None:
        """(fingerprint, postable alert JSON) rows, to every peer's outbox."""
        for p in self.peers:
            p.enqueue(rows)

    def pending_keys(self) -> set[str]:
        """Fingerprints with a row still waiting for some peer (a resend adds nothing for those)."""
        out: set[str] = set()
        for p in self.peers:
            out |= p.outbox.keys()
        return out

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(p.drain(max(0.0, deadline - time.monotonic())) for p in self.peers)

    def set_silences(self, want: dict[str, dict[str, Any]]) -> None:
        """The Alertmanager silences dcim should own, by key (``silence_body`` values)."""
        with self._lock:
            if want == self._want:
                return
            self._want = want
        self._wake.set()

    def _silence_loop(self) -> None:
        backoff = 0.0
        first = 0  # the peer that answered last is asked first
        quiet = False  # warned already: say it again only after a success
        while not self._stop.is_set():
            self._wake.wait(backoff or 1.0)
            self._wake.clear()
            with self._lock:
                want = self._want
            if want is None or (want is self._synced and time.monotonic() < self._next_sync):
                continue
            order = self.peers[first:] + self.peers[:first]
            for p in order:
                try:
                    self._reconcile(p.url, want)
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    if not quiet:
                        log.warning("Alertmanager %s: silences not synced: %s", p.url, exc)
                    continue
                first = self.peers.index(p)
                self._synced = want
                self._next_sync = time.monotonic() + self.settings.resend_s  # re-check now and then
                self.silence_syncs += 1
                backoff = 0.0
                quiet = False
                break
            else:
                quiet = True
                backoff = min(self.settings.max_backoff_s, max(0.5, backoff * 2))

    def _reconcile(self, url: str, want: dict[str, dict[str, Any]]) -> None:
        """Make ``url`` hold ``want``: create what no dcim silence covers yet, expire this engine's
        silences that nothing wants any more.  Other engines' silences (the HA replica's, other
        shards') are never expired here, but one of them doing the same job is reused."""
        have = _request(self.settings, self._ctx, "GET", url + "/api/v2/silences") or []
        satisfied: set[str] = set()
        mine = []
        for s in have:
            if s.get("status", {}).get("state") == "expired":
                continue
            owned = owned_silence_key(s.get("comment", ""))
            if owned is None:
                continue  # a person's silence: not ours to touch
            match = next((k for k, w in want.items() if k not in satisfied and same_silence(w, s)), None)
            if match is not None:
                satisfied.add(match)
            elif owned[0] == self.owner:
                mine.append(s)
        for s in mine:
            _request(self.settings, self._ctx, "DELETE", f"{url}/api/v2/silence/{s['id']}")
        for key, body in want.items():
            if key not in satisfied:
                _request(self.settings, self._ctx, "POST", url + "/api/v2/silences", body)
