"""InfluxQL reads through ``/query``: served by InfluxDB 1.x, 2.x (DBRP) and 3.x.

Reports and dashboard checks use this one path so a query an auditor sees in
a report is the query that ran.

Results are asked for as MessagePack where the server offers it (InfluxDB 1.x
does): half the bytes of JSON, about half the server's encoding time on a
year of hourly buckets, and floats stay floats (JSON turns ``1005.0`` into
``1005``).  A server answering JSON is read as JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

import msgpack
import urllib3

from inventory.secrets import SecretValue

__all__ = ["InfluxQuery", "QueryError", "Series"]


class QueryError(Exception):
    pass


@dataclass
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list]

    def rows(self) -> list[dict]:
        return [dict(zip(self.columns, v)) for v in self.values]


class InfluxQuery:
    def __init__(self, url: str, database: str, token: SecretValue | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.token = token
        self.timeout_s = timeout_s
        self._http = urllib3.PoolManager(maxsize=4)

    def query(self, q: str, *, epoch: str = "ns", params: dict | None = None) -> list[Series]:
        """Run one InfluxQL statement; return its series (empty list when none)."""
        results = self.query_multi(q, epoch=epoch, params=params)
        return results[0] if results else []

    def query_multi(self, q: str, *, epoch: str = "ns", params: dict | None = None) -> list[list[Series]]:
        args = {"db": self.database, "q": q, "epoch": epoch}
        if params:
            args["params"] = json.dumps(params)
        headers = {"Accept": "application/x-msgpack, application/json;q=0.5"}
        if self.token is not None:
            headers["Authorization"] = "Token " + self.token.reveal()
        try:
            resp = self._http.request("POST", f"{self.url}/query", body=urlencode(args),
                                      headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                                      timeout=self.timeout_s, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise QueryError(f"InfluxDB at {self.url} unreachable: {exc}") from None
        body = _decode(resp)
        if resp.status >= 300 and "error" in body:
            raise QueryError(f"InfluxDB answered {resp.status}: {body['error']}")
        out: list[list[Series]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise QueryError(f"query failed: {result['error']} (query: {q})")
            if result.get("partial"):
                # a server's max-row-limit cut the rows: an answer computed on part of them would be wrong.
                # (A series' own "partial" in a non-chunked answer only says it was merged from
                # several chunks: InfluxDB 1.6 sets it on every series over 10,000 rows, all there)
                raise QueryError(f"InfluxDB returned a partial result (its max-row-limit?) for: {q[:200]}")
            out.append([
                Series(s.get("name", ""), s.get("tags") or {}, s.get("columns", []), s.get("values", []))
                for s in result.get("series", [])
            ])
        return out

    def command(self, q: str) -> None:
        """A statement without results (CREATE DATABASE, DROP ...)."""
        self.query_multi(q)


def _decode(resp) -> dict:
    data = resp.data or b""
    if "msgpack" in (resp.headers.get("Content-Type") or ""):
        try:
            body = msgpack.unpackb(data, raw=False, strict_map_key=False) if data else {}
        except (ValueError, msgpack.UnpackException):
            raise QueryError(f"InfluxDB answered {resp.status} with an undecodable MessagePack body") from None
    else:
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            raise QueryError(f"InfluxDB answered {resp.status} with a non-JSON body") from None
    if not isinstance(body, dict):
        raise QueryError(f"InfluxDB answered {resp.status} with an unexpected body")
    return body
