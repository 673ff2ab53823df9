"""Real Prometheus Alertmanagers (Debian ``prometheus-alertmanager``) and a webhook receiver.

:class:`AlertmanagerServer` runs one instance on free loopback ports with its own
storage dir; give two of them each other's cluster address (``peers``) for a
gossiping HA pair (/work/shared/NOTES.md: the cluster listener is always set,
empty to disable, or it grabs :9094 on every interface).  :class:`WebhookReceiver`
is the receiver end: a local HTTP server that records every notification
Alertmanager posts, so tests count pages instead of guessing.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterable

from testkit.http import ThreadedHttpServer
from localservers.process import ManagedProcess, ManagedServer, ServerStartError, free_port, require_binary

__all__ = ["AlertmanagerServer", "WebhookReceiver", "webhook_config", "bcrypt_hash", "SHIPPED_CONFIG"]

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "alerts" / "alertmanager" / "alertmanager.yml"


def webhook_config(url: str, *, group_wait: str = "200ms", group_interval: str = "1s",
                   repeat_interval: str = "1h") -> str:
    """A minimal config: everything to one webhook, suppressed alerts to nobody (as the shipped one)."""
    return f"""\
route:
  receiver: webhook
  group_by: [site, hall, alertname]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: {repeat_interval}
  routes:
    - matchers: ['suppressed="true"']
      receiver: "null"
receivers:
  - name: "null"
  - name: webhook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def bcrypt_hash(password: str) -> str:
    """The bcrypt hash Alertmanager's ``basic_auth_users`` wants (glibc's crypt does bcrypt)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, enough for a test server

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


class AlertmanagerServer(ManagedServer):
    def __init__(self, workdir: Path, config_text: str, *, peers: Iterable[str] = (), cluster: bool = True,
                 tls=None, basic_auth: tuple[str, str] | None = None) -> None:
        """``tls``: a :class:`testkit.tls.TlsFiles` to serve HTTPS with; ``basic_auth``: (user, password)
        the API demands (``--web.config.file``)."""
        self.workdir = Path(workdir)
        self.config_text = config_text
        self.tls = tls
        self.basic_auth = basic_auth
        self.port = free_port()
        self.cluster_port = free_port() if cluster else None
        self.peers = list(peers)
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def cluster_address(self) -> str:
        return f"127.0.0.1:{self.cluster_port}"

    def argv(self) -> list[str]:
        binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
        argv = [binary, f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                f"--cluster.listen-address={self.cluster_address if self.cluster_port else ''}",
                "--log.level=warn"]
        if self.tls or self.basic_auth:
            argv.append(f"--web.config.file={self.workdir / 'web.yml'}")
        if self.cluster_port:
            # gossip fast on loopback so tests do not wait on the WAN defaults; the second peer waits
            # peer-timeout for the first one's notification log before notifying itself (generous: on a
            # loaded machine gossip lags, and a shorter wait shows up as a duplicate page)
            argv += [f"--cluster.advertise-address={self.cluster_address}", "--cluster.gossip-interval=50ms",
                     "--cluster.pushpull-interval=1s", "--cluster.settle-timeout=2s", "--cluster.peer-timeout=5s"]
            argv += [f"--cluster.peer={p}" for p in self.peers]
        return argv

    def start(self) -> "AlertmanagerServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "alertmanager.yml").write_text(self.config_text, encoding="utf-8")
        web = []
        if self.tls:
            web += ["tls_server_config:", f"  cert_file: {self.tls.server_cert}", f"  key_file: {self.tls.server_key}"]
        if self.basic_auth:
            web += ["basic_auth_users:", f"  {self.basic_auth[0]}: '{bcrypt_hash(self.basic_auth[1])}'"]
        if web:
            (self.workdir / "web.yml").write_text("\n".join(web) + "\n", encoding="utf-8")
        self.process = ManagedProcess(self.argv(), self.workdir / "alertmanager.log")
        self.process.start(self._ready)
        return self

    def _ready(self, proc: ManagedProcess) -> None:
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ServerStartError(f"alertmanager exited with status {proc.proc.returncode}")  # type: ignore[union-attr]
            try:
                status = self.api("GET", "/api/v2/status")
                if status.get("cluster", {}).get("status") in ("ready", "disabled", None):
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise ServerStartError(f"alertmanager on {self.url} not ready: {last}")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.basic_auth:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
        ctx = None
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            raw = r.read()
        return json.loads(raw) if raw.strip() else None

    def alerts(self, active_only: bool = True) -> list[dict[str, Any]]:
        q = "" if not active_only else "?active=true&silenced=true&inhibited=true"
        return self.api("GET", "/api/v2/alerts" + q)

    def silences(self) -> list[dict[str, Any]]:
        return [s for s in self.api("GET", "/api/v2/silences") if s["status"]["state"] != "expired"]


class WebhookReceiver:
    """Records each Alertmanager webhook notification (the JSON body) in arrival order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.time() of each notification's arrival (benchmarks)
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"unparsed": body.decode(errors="replace")}
                with receiver._cond:
                    receiver.notifications.append(doc)
                    receiver.arrivals.append(time.time())
                    receiver._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadedHttpServer(Handler, name="webhook")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/hook"

    def start(self) -> "WebhookReceiver":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate(notifications)`` holds (a condition with a deadline, no fixed sleeps)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.notifications)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    def first_arrival(self, device: str, status: str, after: float) -> float | None:
        """When the first notification with ``device``'s alert in ``status`` arrived after ``after``."""
        with self._cond:
            pairs = list(zip(self.arrivals, self.notifications))
        return min((t for t, n in pairs if t > after for a in n.get("alerts", [])
                    if a["labels"].get("device") == device and a.get("status") == status), default=None)

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every alert of every notification (one notification is a group), optionally by status."""
        with self._cond:
            out = [a for n in self.notifications for a in n.get("alerts", [])]
        return [a for a in out if status is None or a.get("status") == status]

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
