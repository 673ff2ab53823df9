"""Sending one gzip'd batch to InfluxDB, and classifying what came back.

Two transports behind one call, ``send(payload) -> None`` or raise:
- :class:`V2Transport` uses influxdb-client's generated ``WriteService`` (the
  v2 write API: InfluxDB 2.x, 3.x and 1.8+ with ``bucket=db/rp``).  We hand it
  bytes we already compressed at gzip level 1 instead of letting the client
  compress at its default level: most of the size gain for half the CPU.
- :class:`V1Transport` posts to ``/write`` for InfluxDB 1.x before 1.8.

:func:`detect_api` asks ``/ping`` for ``X-Influxdb-Version`` to choose.
Both are synchronous (urllib3 underneath) and are called from a worker thread.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3

from inventory.secrets import SecretValue

__all__ = ["WriteFailed", "V1Transport", "V2Transport", "detect_api", "parse_version", "server_version"]


class WriteFailed(Exception):
    """A batch InfluxDB did not take.

    ``retry``: worth sending again (5xx, 429, timeout, connection refused).
    ``status``: HTTP status or None for network errors.  Messages never carry
    the token.
    """

    def __init__(self, message: str, *, retry: bool, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.retry_after = retry_after


def parse_version(header: str | None) -> tuple[int, int] | None:
    if not header:
        return None
    m = re.search(r"(\d+)\.(\d+)", header)
    return (int(m.group(1)), int(m.group(2))) if m else None


def server_version(url: str, timeout: float = 5.0, pool: urllib3.PoolManager | None = None) -> tuple[int, int] | None:
    """(major, minor) from ``/ping``'s ``X-Influxdb-Version``; None when the server sends none (InfluxDB 3)."""
    http = pool or urllib3.PoolManager()
    try:
        resp = http.request("GET", url.rstrip("/") + "/ping", timeout=timeout, retries=False)
    except urllib3.exceptions.HTTPError as exc:
        raise WriteFailed(f"InfluxDB at {url} unreachable: {_reason(exc)}", retry=True) from None
    return parse_version(resp.headers.get("X-Influxdb-Version"))


def detect_api(url: str, timeout: float = 5.0, pool: urllib3.PoolManager | None = None) -> str:
    """'v2' for InfluxDB >= 1.8 (v2 write API available), 'v1' before that."""
    version = server_version(url, timeout, pool)
    if version is None:
        # InfluxDB 3 answers /ping with JSON; anything without a 1.x header speaks v2
        return "v2"
    return "v1" if version < (1, 8) else "v2"


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.split(": ", 1)[-1][:200]


def _classify(status: int, body: str, retry_after: str | None) -> WriteFailed:
    body = body.strip().replace("\n", " ")[:300]
    if status == 429 or status >= 500:
        ra = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        return WriteFailed(f"InfluxDB answered {status}: {body}", retry=True, status=status, retry_after=ra)
    if status in (401, 403):
        return WriteFailed(f"InfluxDB refused the credentials ({status}); check the token's environment variable or file", retry=False, status=status)
    if status == 404:
        return WriteFailed(f"InfluxDB has no such database/bucket ({status}): {body}", retry=False, status=status)
    if status == 413:
        return WriteFailed("batch too large for InfluxDB (413); lower batch_size", retry=False, status=status)
    return WriteFailed(f"InfluxDB rejected the batch ({status}): {body}", retry=False, status=status)


@dataclass
class V1Transport:
    url: str
    database: str
    retention_policy: str = ""
    token: SecretValue | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self._http = urllib3.PoolManager(maxsize=4)
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        self._endpoint = self.url.rstrip("/") + "/write?" + urlencode(params)

    def send(self, payload: bytes) -> None:
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        if self.token is not None:
            headers["Authorization"] = "Token " + self.token.reveal()
        try:
            resp = self._http.request("POST", self._endpoint, body=payload, headers=headers,
                                      timeout=self.timeout_s, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise WriteFailed(f"InfluxDB unreachable: {_reason(exc)}", retry=True) from None
        if resp.status >= 300:
            raise _classify(resp.status, resp.data.decode("utf-8", "replace"), resp.headers.get("Retry-After"))


@dataclass
class V2Transport:
    url: str
    bucket: str
    org: str = ""
    token: SecretValue | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.service.write_service import WriteService

        self._client = InfluxDBClient(
            url=self.url, token=self.token.reveal() if self.token else "", org=self.org or "-",
            timeout=int(self.timeout_s * 1000), enable_gzip=False,
        )
        self._service = WriteService(self._client.api_client)

    def send(self, payload: bytes) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._service.post_write(
                org=self.org or "-", bucket=self.bucket, body=payload, precision="ns",
                content_encoding="gzip", content_type="text/plain; charset=utf-8",
            )
        except ApiException as exc:
            headers = exc.headers or {}
            raise _classify(exc.status or 0, exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or exc.reason), headers.get("Retry-After")) from None
        except urllib3.exceptions.HTTPError as exc:
            raise WriteFailed(f"InfluxDB unreachable: {_reason(exc)}", retry=True) from None
        except OSError as exc:
            raise WriteFailed(f"InfluxDB unreachable: {exc.strerror or exc}", retry=True) from None

    def close(self) -> None:
        self._client.close()
