"""A Redfish service serving a DMTF-style mockup directory, for tests and demos.

Each resource is ``<path>/index.json``; mockups come in two layouts (the DMTF
public ones start at the v1 root, vendor captures keep ``redfish/v1/``), and
both are served under ``/redfish/v1``.  Captures without a service root get a
minimal synthesised one.  Session login (``POST .../SessionService/Sessions``
-> ``X-Auth-Token`` + ``Location``) is implemented so clients can log in; with
``credentials`` set, every resource but the service root answers 401 without a
valid token.  Optional TLS with a given cert/key.  Loopback only; read-only
on the mockup.
"""
from __future__ import annotations

import json
import secrets
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from testkit.http import ThreadedHttpServer

__all__ = ["RedfishMockupServer"]

_SESSIONS = "/redfish/v1/SessionService/Sessions"


class RedfishMockupServer(ThreadedHttpServer):
    def __init__(self, mockup: Path, credentials: tuple[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        mockup = Path(mockup)
        self.v1 = mockup / "redfish" / "v1" if (mockup / "redfish" / "v1").is_dir() else mockup
        if not self.v1.is_dir():
            raise FileNotFoundError(f"no Redfish mockup at {mockup}")
        self.credentials = credentials
        self.tokens: set[str] = set()
        self.issued: list[str] = []  # every token ever handed out
        self.logins = 0
        self.logouts = 0
        self.gets = 0
        self.delay_s = 0.0  # sleep before answering each GET (a slow BMC)
        self.logout_delay_s = 0.0  # sleep before answering a logout (DELETE of a session)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stalls

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict | None = None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("OData-Version", "4.0")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _path(self) -> str:
                return self.path.split("?", 1)[0].split("#", 1)[0].rstrip("/") or "/"

            def do_GET(self) -> None:
                server.gets += 1
                if server.delay_s:
                    time.sleep(server.delay_s)
                path = self._path()
                if path != "/redfish/v1" and server.credentials and self.headers.get("X-Auth-Token") not in server.tokens:
                    return self._send(401, {"error": {"message": "no valid session"}})
                body = server.resource(path)
                if body is None:
                    return self._send(404, {"error": {"message": f"{path} not found"}})
                self._send(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self._path() != _SESSIONS:
                    return self._send(405, {"error": {"message": "read-only mockup"}})
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(400, {"error": {"message": "bad JSON"}})
                if server.credentials and (req.get("UserName"), req.get("Password")) != server.credentials:
                    return self._send(401, {"error": {"message": "bad credentials"}})
                token = secrets.token_hex(16)
                server.tokens.add(token)
                server.issued.append(token)
                server.logins += 1
                location = f"{_SESSIONS}/{token[:8]}"
                self._send(201, {"@odata.id": location, "Id": token[:8], "UserName": req.get("UserName")},
                           {"X-Auth-Token": token, "Location": location})

            def do_DELETE(self) -> None:
                if server.logout_delay_s:
                    time.sleep(server.logout_delay_s)
                token = self.headers.get("X-Auth-Token")
                if self._path().startswith(_SESSIONS + "/") and token in server.tokens:
                    server.tokens.discard(token)
                    server.logouts += 1
                    return self._send(204)
                self._send(404, {"error": {"message": "no such session"}})

        super().__init__(Handler, name="redfish-mockup", tls=tls)

    def resource(self, path: str) -> dict | None:
        """The JSON for ``/redfish/v1/...``, or None."""
        if path != "/redfish/v1" and not path.startswith("/redfish/v1/"):
            return None
        rel = path[len("/redfish/v1"):].strip("/")
        if ".." in rel.split("/"):
            return None
        file = self.v1 / rel / "index.json"
        if file.is_file():
            return json.loads(file.read_text())
        if rel == "":
            return {"@odata.id": "/redfish/v1", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "Id": "RootService",
                    "RedfishVersion": "1.6.0", "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
                    "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
                    "Links": {"Sessions": {"@odata.id": _SESSIONS}}}
        return None
