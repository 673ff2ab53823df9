"""A real Mosquitto broker on a free loopback port, with persistence in a private directory.

Used by the alert tests, the rules bench and the demo.  ``restart`` keeps the
port and the persistence file, so persistent sessions (clean_start False) and
their queued QoS 1 messages survive, as with a production broker restart.
``queue_settings_from`` lifts the queue/in-flight limits out of the shipped
``alerts/mosquitto/mosquitto.conf`` so tests run under the production limits
on a plain loopback listener (no TLS, anonymous).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Iterable

from localservers.process import ManagedProcess, ManagedServer, ServerStartError, free_port, require_binary

__all__ = ["MosquittoServer", "queue_settings_from", "SHIPPED_CONF"]

SHIPPED_CONF = Path(__file__).resolve().parents[1] / "alerts" / "mosquitto" / "mosquitto.conf"
_QUEUE_KEYS = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages", "max_inflight_bytes",
               "queue_qos0_messages", "persistent_client_expiration", "autosave_interval", "autosave_on_changes",
               "upgrade_outgoing_qos", "max_packet_size")


def queue_settings_from(conf: Path = SHIPPED_CONF) -> list[str]:
    """The queueing lines of a broker config (everything else is listener/auth specific)."""
    out = []
    for line in Path(conf).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line.split()[0] in _QUEUE_KEYS:
            out.append(line)
    return out


class MosquittoServer(ManagedServer):
    def __init__(self, workdir: Path, *, port: int | None = None, config_extra: Iterable[str] = (),
                 config_text: str | None = None) -> None:
        """``config_text``: a complete config to run instead of the generated one (e.g. the
        shipped production file with its paths rewritten); it must listen on ``port``."""
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.config_extra = list(config_extra)
        self.custom_config = config_text
        self.process: ManagedProcess | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def config_text(self) -> str:
        if self.custom_config is not None:
            return self.custom_config
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "persistence_file mosquitto.db",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp true",
        ]
        if os.geteuid() == 0:
            # as root mosquitto drops to user "mosquitto", which cannot write our private
            # (0700, root-owned) temp dir; a test broker keeps the caller's identity instead
            lines.append("user root")
        keys = {l.split()[0] for l in self.config_extra if l.strip()}
        if "max_queued_messages" not in keys:
            lines.append("max_queued_messages 0")  # 0 = no maximum (mosquitto.conf(5)); tests bound their own loads
        return "\n".join(lines + self.config_extra) + "\n"

    def start(self) -> "MosquittoServer":
        binary = require_binary("mosquitto", "mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config_text(), encoding="utf-8")
        self.process = ManagedProcess([binary, "-c", str(self.conf_path)], self.workdir / "mosquitto.log")
        self.process.start(self._ready)
        return self

    def _ready(self, proc: ManagedProcess) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ServerStartError(f"mosquitto exited with status {proc.proc.returncode}")  # type: ignore[union-attr]
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if self.custom_config is not None:
                        return  # may be TLS and authenticated: listening is all we can check here
                    # a CONNECT for MQTT 3.1.1, clean session, client id "probe": expect CONNACK 0x20
                    s.sendall(bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 5]) + b"probe")
                    if s.recv(4)[:1] == b"\x20":
                        s.sendall(b"\xe0\x00")  # DISCONNECT
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerStartError(f"mosquitto not answering MQTT on {self.host}:{self.port}")

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> "MosquittoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
