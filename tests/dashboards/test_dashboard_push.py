"""``dcim dashboards push`` against a fake Grafana HTTP API.

Grafana itself cannot be installed here (no package, no network), so this
test serves the part of Grafana's documented HTTP API that push uses, in a
``http.server`` thread, and records every request:

* ``GET/PUT /api/datasources/uid/:uid``, ``POST /api/datasources``
  (the stored datasource hides ``secureJsonData`` and reports
  ``secureJsonFields`` instead, as Grafana does);
* ``GET/PUT /api/folders/:uid``, ``POST /api/folders``;
* ``GET /api/dashboards/uid/:uid`` (``{"dashboard", "meta"}``),
  ``POST /api/dashboards/db`` (``overwrite``; bumps ``version``).
Unknown objects answer 404 with ``{"message": ...}``; a request without the
bearer token answers 401.
"""
from __future__ import annotations

import argparse
import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dcim.commands.dashboards import cmd_push

SITE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "tetouan.yaml"
TOKEN = "glsa_test-token-0123456789"


class FakeGrafana:
    def __init__(self) -> None:
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._ids = iter(range(1, 10_000))
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                fake.requests.append((method, self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"message": "Unauthorized"})
                status, out = fake.route(method, self.path.split("?")[0], body)
                self._reply(status, out)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _store_ds(self, body: dict, ds_id: int) -> dict:
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        stored["id"] = ds_id
        stored["secureJsonFields"] = {k: True for k in (body.get("secureJsonData") or {})}
        self.datasources[body["uid"]] = stored
        return stored

    def route(self, method: str, path: str, body) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
            uid = parts[3]
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            if method == "GET":
                return 200, self.datasources[uid]
            if method == "PUT":
                return 200, {"datasource": self._store_ds(body, self.datasources[uid]["id"]),
                             "message": "Datasource updated"}
        if parts == ["api", "datasources"] and method == "POST":
            if body["uid"] in self.datasources:
                return 409, {"message": "data source with the same uid already exists"}
            return 200, {"datasource": self._store_ds(body, next(self._ids)), "message": "Datasource added"}
        if parts[:2] == ["api", "folders"] and len(parts) == 3:
            uid = parts[2]
            if uid not in self.folders:
                return 404, {"message": "folder not found"}
            if method == "GET":
                return 200, self.folders[uid]
            if method == "PUT":
                self.folders[uid]["title"] = body["title"]
                return 200, self.folders[uid]
        if parts == ["api", "folders"] and method == "POST":
            self.folders[body["uid"]] = {"id": next(self._ids), "uid": body["uid"], "title": body["title"]}
            return 200, self.folders[body["uid"]]
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            stored = self.dashboards.get(parts[3])
            if stored is None:
                return 404, {"message": "Dashboard not found"}
            return 200, copy.deepcopy(stored)
        if parts == ["api", "dashboards", "db"] and method == "POST":
            dash = body["dashboard"]
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            prev = self.dashboards.get(dash["uid"])
            if prev is not None and not body.get("overwrite"):
                return 412, {"message": "version-mismatch"}
            version = (prev["dashboard"]["version"] + 1) if prev else 1
            dash = {**dash, "id": prev["dashboard"]["id"] if prev else next(self._ids), "version": version}
            self.dashboards[dash["uid"]] = {"dashboard": dash, "meta": {"folderUid": body["folderUid"]}}
            return 200, {"id": dash["id"], "uid": dash["uid"], "status": "success", "version": version}
        return 404, {"message": f"no route {method} {path}"}

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]


@pytest.fixture()
def grafana():
    fake = FakeGrafana()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _args(url: str, **kw) -> argparse.Namespace:
    base = dict(site=SITE, datasource_uid="iozera-influxdb", url=url, token_env="TEST_GRAFANA_TOKEN",
                influx_url="http://127.0.0.1:8086", db="dcim", influx_token_env=None, timeout=5.0)
    base.update(kw)
    return argparse.Namespace(**base)


def _actions(text: str) -> dict[str, str]:
    out = {}
    for line in text.strip().splitlines():
        kind, uid, action = line.split()
        out[f"{kind}:{uid}"] = action
    return out


def test_push_creates_then_is_idempotent(grafana, monkeypatch, capsys):
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)
    assert cmd_push(_args(grafana.url)) == 0
    first = _actions(capsys.readouterr().out)
    assert len(first) == 1 + 1 + 7
    assert set(first.values()) == {"created"}
    assert len(grafana.dashboards) == 7 and "iozera-influxdb" in grafana.datasources
    assert all(d["meta"]["folderUid"] == "iozera-dcim" for d in grafana.dashboards.values())
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in grafana.requests)
    n_writes = len(grafana.writes())

    assert cmd_push(_args(grafana.url)) == 0
    out = capsys.readouterr().out
    second = _actions(out)
    assert set(second) == set(first) and set(second.values()) == {"unchanged"}
    assert len(grafana.writes()) == n_writes, "an unchanged push must not write"
    assert TOKEN not in out


def test_changed_datasource_is_updated_and_secret_stays_hidden(grafana, monkeypatch, capsys):
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_INFLUX_TOKEN", "influx-secret-value")
    assert cmd_push(_args(grafana.url)) == 0
    capsys.readouterr()
    assert cmd_push(_args(grafana.url, influx_url="http://127.0.0.1:9999", influx_token_env="TEST_INFLUX_TOKEN")) == 0
    out = capsys.readouterr().out
    acts = _actions(out)
    assert acts["datasource:iozera-influxdb"] == "updated"
    assert [a for k, a in acts.items() if k.startswith("dashboard:")] == ["unchanged"] * 7
    stored = grafana.datasources["iozera-influxdb"]
    assert stored["url"] == "http://127.0.0.1:9999" and stored["secureJsonFields"] == {"httpHeaderValue1": True}
    assert "influx-secret-value" not in out


def test_changed_dashboard_is_updated(grafana, monkeypatch, capsys):
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)
    assert cmd_push(_args(grafana.url)) == 0
    capsys.readouterr()
    uid = next(iter(grafana.dashboards))
    grafana.dashboards[uid]["dashboard"]["title"] = "edited in the UI"
    assert cmd_push(_args(grafana.url)) == 0
    acts = _actions(capsys.readouterr().out)
    assert acts[f"dashboard:{uid}"] == "updated"
    assert grafana.dashboards[uid]["dashboard"]["version"] == 2
    assert sum(a == "updated" for a in acts.values()) == 1


def test_wrong_token_and_missing_env_are_clear_errors(grafana, monkeypatch, capsys):
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", "wrong-token-value")
    assert cmd_push(_args(grafana.url)) == 1
    err = capsys.readouterr().err
    assert "401" in err and "wrong-token-value" not in err
    monkeypatch.delenv("TEST_GRAFANA_TOKEN")
    assert cmd_push(_args(grafana.url)) == 2
    assert "TEST_GRAFANA_TOKEN is not set" in capsys.readouterr().err


def test_unreachable_grafana_is_one_line(monkeypatch, capsys):
    from localservers.process import free_port

    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{free_port()}"
    assert cmd_push(_args(url, timeout=2.0)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Grafana at {url} unreachable") and err.count("\n") == 1
    assert TOKEN not in err
