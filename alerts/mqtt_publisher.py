"""Alert events to MQTT through the persisted outbox (paho-mqtt 2, callback API v2).

Topics (``<site>`` is the inventory site id):

* ``dcim/<site>/alerts/<severity>/<rule>/<device>`` — every event, QoS 1, not retained;
* ``dcim/<site>/active/<fingerprint>`` — retained current state of a firing
  alert, cleared by an empty retained payload when it resolves;
* ``dcim/<site>/engine/status`` — retained ``online``; the Last Will says ``offline``;
* ``dcim/<site>/commands/silence`` and ``.../ack`` — JSON commands in;
* ``dcim/<site>/active/#`` is also read back with ``share_roots`` (sharded engines): the firing
  root causes of every shard's engine, for suppression across shards.

Delivery is at least once: a message leaves the outbox only on the broker's
PUBACK (paho ``on_publish``), and after a reconnect everything unacknowledged
is sent again in order.  Every event carries ``id`` (fingerprint, state, time)
so a consumer can drop the rare duplicate of a message whose PUBACK was lost
with the connection.

paho runs its network loop in its own thread; the only thing its callbacks do
is hand over (acks into a deque, commands into a queue, a wake-up event), so
there is no lock shared between paho's thread and ours.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.outbox import Outbox
from contract import alert_event as ev
from inventory.secrets import SecretRef, SecretValue

__all__ = ["MqttSettings", "MqttPublisher", "event_messages", "topics"]

log = logging.getLogger(__name__)


@dataclass
class MqttSettings:
    """Where and how to connect.  Secrets are references (env/file), read at connect time."""

    host: str = "127.0.0.1"
    port: int = 1883
    site: str = "site"
    client_id: str | None = None
    username: str | None = None
    password: SecretRef | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: int = 30
    window: int = 100  # QoS 1 messages in flight
    outbox_max: int = 100_000
    share_roots: bool = False  # read every engine's retained active state (cross-shard suppression; dcim run: N > 1)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, host_port: str, site: str, environ: dict[str, str] | None = None, **kw: Any) -> "MqttSettings":
        """``HOST:PORT`` plus ``DCIM_MQTT_USERNAME``, ``DCIM_MQTT_PASSWORD`` or ``DCIM_MQTT_PASSWORD_FILE``,
        ``DCIM_MQTT_CA``, ``DCIM_MQTT_CERT``, ``DCIM_MQTT_KEY`` (TLS when a CA is given)."""
        env = os.environ if environ is None else environ
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--mqtt {host_port!r}: expected HOST:PORT")
        password = None
        if env.get("DCIM_MQTT_PASSWORD_FILE"):
            password = SecretRef(file=env["DCIM_MQTT_PASSWORD_FILE"])
        elif "DCIM_MQTT_PASSWORD" in env:
            password = SecretRef(env="DCIM_MQTT_PASSWORD")
        return cls(host=host.strip("[]"), port=int(port), site=site, username=env.get("DCIM_MQTT_USERNAME"),
                   password=password, ca_file=env.get("DCIM_MQTT_CA"), cert_file=env.get("DCIM_MQTT_CERT"),
                   key_file=env.get("DCIM_MQTT_KEY"), **kw)

    def resolve_password(self) -> SecretValue | None:
        return self.password.resolve() if self.password else None


def topics(site: str) -> dict[str, str]:
    base = f"dcim/{site}"
    return {"base": base, "status": f"{base}/engine/status", "commands": f"{base}/commands/#",
            "active": f"{base}/active", "alerts": f"{base}/alerts"}


def event_messages(site: str, event: dict[str, Any], qos: int = 1) -> list[tuple[str, bytes, int, bool]]:
    """The outbox rows for one event: the event itself and the retained active state."""
    base = f"dcim/{site}"
    payload = json.dumps(event, separators=(",", ":"), default=str).encode()
    out = [(f"{base}/alerts/{event[ev.SEVERITY]}/{event[ev.RULE]}/{event[ev.DEVICE] or '_'}", payload, qos, False)]
    if event[ev.STATE] == ev.FIRING:
        out.append((f"{base}/active/{event[ev.FINGERPRINT]}", payload, qos, True))
    elif event[ev.STATE] == ev.RESOLVED:
        out.append((f"{base}/active/{event[ev.FINGERPRINT]}", b"", qos, True))
    return out


def active_message(site: str, event: dict[str, Any], qos: int = 1) -> tuple[str, bytes, int, bool]:
    """Only the retained state (a firing alert whose suppression or ack changed)."""
    return (f"dcim/{site}/active/{event[ev.FINGERPRINT]}", json.dumps(event, separators=(",", ":"), default=str).encode(),
            qos, True)


class MqttPublisher:
    """Sends outbox rows in order with a bounded in-flight window; hands commands to the runtime."""

    def __init__(self, settings: MqttSettings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=10_000)
        #: retained active-state messages of all engines (topic, payload), read by the runtime's tick
        self.active_updates: collections.deque[tuple[str, bytes]] = collections.deque()
        self.connected = False
        self.published = 0
        self.connects = 0
        self._acks: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        t = topics(settings.site)
        self._status_topic = t["status"]
        self._commands_topic = t["commands"]
        self._active_prefix = t["active"] + "/"
        cid = settings.client_id or f"dcim-alerts-{settings.site}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True,
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(settings.window)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 2)
        self.client.will_set(self._status_topic, b"offline", qos=1, retain=True)
        if settings.username:
            pw = settings.resolve_password()
            self.client.username_pw_set(settings.username, pw.reveal() if pw else None)
        if settings.ca_file:
            self.client.tls_set(ca_certs=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file,
                                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._pump, name="mqtt-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Drain what can be sent within ``timeout``, say ``offline``, disconnect; the rest stays in the outbox."""
        self.drain(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.connected:
            info = self.client.publish(self._status_topic, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(min(timeout, 2.0))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def kill(self) -> None:
        """Stop without draining or saying goodbye (crash tests): the broker publishes the Last Will."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2)
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def enqueue(self, messages: list[tuple[str, bytes, int, bool]]) -> None:
        self.outbox.append(messages)
        self._wake.set()

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (everything acknowledged); False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.outbox) == 0:
                return True
            self._wake.set()
            time.sleep(0.02)
        return len(self.outbox) == 0

    # -- paho callbacks (paho's thread): hand over only -----------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect to %s:%s refused: %s", self.settings.host, self.settings.port, reason_code)
            return
        self.connects += 1
        # paho would resend its own unacknowledged messages now; the outbox resends them in
        # order anyway, so drop paho's copies rather than send everything twice
        client.drop_out_messages()
        client.publish(self._status_topic, b"online", qos=1, retain=True)
        client.subscribe(self._commands_topic, qos=1)
        if self.settings.share_roots:
            client.subscribe(self._active_prefix + "#", qos=1)
        self._generation += 1
        self.connected = True
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self._wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.append(mid)
        self._wake.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.startswith(self._active_prefix):
            self.active_updates.append((msg.topic, bytes(msg.payload)))
            return
        try:
            self.commands.put_nowait((msg.topic, bytes(msg.payload)))
        except queue.Full:
            log.warning("MQTT command queue full; dropped a command on %s", msg.topic)

    # -- the pump (our thread) ----------------------------------------------------------------
    def _pump(self) -> None:
        inflight: dict[int, int] = {}  # mid -> outbox seq
        last_sent = 0
        generation = -1
        window = self.settings.window
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            done = []
            while self._acks:
                seq = inflight.pop(self._acks.popleft(), None)
                if seq is not None:
                    done.append(seq)
            if done:
                self.outbox.ack(done)
                self.published += len(done)
            if not self.connected:
                continue
            if generation != self._generation:  # new connection: resend all that is unacknowledged
                generation = self._generation
                inflight.clear()
                last_sent = 0
            room = window - len(inflight)
            if room <= 0:
                continue
            for m in self.outbox.pending(after=last_sent, limit=room):
                info = self.client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                last_sent = m.seq
                if m.qos == 0:
                    self.outbox.ack([m.seq])
                else:
                    inflight[info.mid] = m.seq
                    if self._acks:
                        self._wake.set()
