"""A real ``influxd`` (Debian package influxdb, 1.6 here) in a private directory.

Also :class:`V2WriteFront`: a tiny HTTP front that maps the v2 write API onto
InfluxDB 1.x's ``/write`` exactly as InfluxDB 1.8+ does
(``/api/v2/write?bucket=db/rp`` -> ``/write?db=db&rp=rp``), so the
influxdb-client path of the writer is exercised against real storage.  Test
code only: 1.6 lacks ``/api/v2/write`` and this front stands in for 1.8+.
"""
from __future__ import annotations

import http.client
import http.server
import os
import threading
import urllib.parse
from pathlib import Path

from localservers.process import ManagedProcess, ServerStartError, free_port, require_binary, wait_for_port

__all__ = ["InfluxServer", "V2WriteFront"]

#: Go's collector target for influxd (docs/storage.md, "Server settings"): under the full site's
#: writes influxd spent ≈22 % of its CPU in garbage collection at Go's default of 100 and ≈10 %
#: at 200 (pprof, bench/site_full.py), which is what let the 2-core run keep up; a ``GOGC`` in
#: the environment wins (``GOGC=100 python bench/site_full.py`` runs Go's default to compare)
GOGC = "200"


class InfluxServer:
    def __init__(self, workdir: Path, *, index: str = "inmem", memory_limit: str | None = None,
                 cache_max_bytes: int | None = None, snapshot_bytes: int | None = None) -> None:
        """``index``: ``inmem`` (what the tests measure) or ``tsi1`` (docs/storage.md's production
        setting: the series index on disk, not in influxd's heap).  ``memory_limit``: Go's soft
        heap limit (``GOMEMLIMIT``, e.g. ``8GiB``): with ``GOGC`` at 200 and the ``inmem`` index the
        full site's influxd reached 13.7 GB, six times its live heap, and was killed for memory.
        ``cache_max_bytes``: ``cache-max-memory-size`` (influxd's default 1 GiB: writes are
        refused with a 500 while the write cache holds more, as when snapshots lag).
        ``snapshot_bytes``: ``cache-snapshot-memory-size`` (influxd's default 25 MiB: the cache is
        written out to a TSM file, and emptied, once it holds that much)."""
        if index not in ("inmem", "tsi1"):
            raise ValueError(f"influxd index-version must be inmem or tsi1, not {index!r}")
        self.workdir = Path(workdir)
        self.index = index
        self.memory_limit = memory_limit
        self.cache_max_bytes = cache_max_bytes
        self.snapshot_bytes = snapshot_bytes
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None

    def config_text(self) -> str:
        d = self.workdir
        cache = "".join(f"\n  {key} = {value}" for key, value in (("cache-max-memory-size", self.cache_max_bytes),
                                                                   ("cache-snapshot-memory-size", self.snapshot_bytes))
                        if value)
        return f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  # the full site's cardinality (docs/storage.md, "Server settings"): 345,600 GPU uuid values
  # in one tag, past the default limit of 100,000, and over a million series within a month
  max-values-per-tag = 0
  max-series-per-database = 0
  index-version = "{self.index}"{cache}
[coordinator]
  write-timeout = "10s"
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = true
  run-interval = "1s"
  log-enabled = false
[subscriber]
  enabled = false
"""

    def start(self) -> "InfluxServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "influxdb.conf").write_text(self.config_text())
        self.start_same()
        return self

    def _ready(self, p: ManagedProcess) -> None:
        wait_for_port(self.port, proc=p.proc, timeout=30)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/ping")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 204:
            raise ServerStartError(f"/ping answered {resp.status}")

    def restart(self) -> None:
        """Start again on the same port and data directory (outage tests)."""
        self.start_same()

    def environment(self) -> dict[str, str]:
        """influxd's environment: ours, with ``GOGC`` (and ``GOMEMLIMIT``) unless it sets them."""
        env = {"GOGC": GOGC, **({"GOMEMLIMIT": self.memory_limit} if self.memory_limit else {})}
        return {**env, **os.environ}

    def start_same(self) -> None:
        conf = self.workdir / "influxdb.conf"
        self.process = ManagedProcess([require_binary("influxd", "influxdb"), "-config", str(conf)],
                                      self.workdir / "influxd.log", env=self.environment())
        self.process.start(lambda p: self._ready(p))

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"', method="POST")

    def counters(self, wanted: dict[str, tuple[str, ...]], timeout: float = 30.0) -> dict[str, float]:
        """influxd's own counters (``/debug/vars``): for each statistic name in ``wanted`` (e.g.
        ``tsm1_engine``), the named values summed over every instance of it (one per shard).
        Raises ``OSError`` when influxd does not answer."""
        import json

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/debug/vars")
            stats = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        out: dict[str, float] = {}
        for v in stats.values():
            if isinstance(v, dict) and v.get("name") in wanted:
                for f in wanted[v["name"]]:
                    out[f] = out.get(f, 0) + float(v.get("values", {}).get(f, 0))
        return out

    def query(self, q: str, db: str | None = None, method: str = "GET") -> dict:
        import json

        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if method == "POST":
            conn.request("POST", "/query", body=urllib.parse.urlencode(params),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            conn.request("GET", "/query?" + urllib.parse.urlencode(params))
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"{}")
        if resp.status >= 300:
            raise RuntimeError(f"query failed {resp.status}: {body}")
        return body


class V2WriteFront:
    """Maps ``/api/v2/write`` to ``/write`` the way InfluxDB 1.8+ does; proxies the rest."""

    def __init__(self, backend_port: int, version: str = "1.8.10") -> None:
        self.backend_port = backend_port
        self.version = version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str, dict]] = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self, method: str, path: str, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-encoding", "content-type", "authorization")}
                conn = http.client.HTTPConnection("127.0.0.1", front.backend_port, timeout=30)
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError as exc:
                    self.send_response(503)
                    msg = str(exc).encode()
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("content-type", "x-influxdb-error"):
                        self.send_header(k, v)
                self.send_header("X-Influxdb-Version", front.version)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                front.requests.append(("GET", self.path, dict(self.headers)))
                if self.path.startswith("/ping"):
                    self.send_response(204)
                    self.send_header("X-Influxdb-Version", front.version)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._forward("GET", self.path, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                front.requests.append(("POST", self.path, dict(self.headers)))
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/api/v2/write":
                    q = dict(urllib.parse.parse_qsl(url.query))
                    db, _, rp = q.get("bucket", "").partition("/")
                    params = {"db": db, "precision": q.get("precision", "ns")}
                    if rp:
                        params["rp"] = rp
                    self._forward("POST", "/write?" + urllib.parse.urlencode(params), body)
                    return
                self._forward("POST", self.path, body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "V2WriteFront":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
