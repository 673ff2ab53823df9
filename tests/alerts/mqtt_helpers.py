"""A real MQTT subscriber for the tests (paho, its own network thread)."""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Subscriber:
    def __init__(self, port: int, topic: str, *, client_id: str = "test-sub", clean: bool = True,
                 delay_s: float = 0.0, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None) -> None:
        self.port, self.topic, self.delay_s = port, topic, delay_s
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(0.1, 1)
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(ca_certs=ca_file)

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def start(self) -> "Subscriber":
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("subscriber did not connect")
        time.sleep(0.1)  # SUBACK
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, r in self.messages if "/alerts/" in t and p]

    def wait_for(self, pred: Callable[["Subscriber"], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return True
            time.sleep(0.02)
        return pred(self)
