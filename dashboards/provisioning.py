"""Dashboard JSON files plus Grafana provisioning files (datasource and dashboard provider).

The InfluxDB token never appears in a file: the datasource's header value is
``Token ${VAR}``, which Grafana expands from its own environment when it reads
the provisioning file.  Only the variable's *name* comes from our options.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from inventory.model import Site

from dashboards.builder import Datasource
from dashboards.catalog import build_dashboards

__all__ = ["FOLDER_UID", "FOLDER_TITLE", "datasource_model", "dashboards_json", "write_build"]

FOLDER_UID = "iozera-dcim"
FOLDER_TITLE = "Iozera DCIM"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def datasource_model(ds: Datasource, influx_url: str, database: str, token: str | None = None) -> dict[str, Any]:
    """The datasource as Grafana's HTTP API and provisioning both describe it (InfluxQL mode)."""
    model: dict[str, Any] = {
        "uid": ds.uid, "name": ds.name, "type": ds.type, "access": "proxy", "url": influx_url,
        "isDefault": False, "jsonData": {"dbName": database, "httpMode": "POST", "version": "InfluxQL"},
    }
    if token is not None:
        model["jsonData"]["httpHeaderName1"] = "Authorization"
        model["secureJsonData"] = {"httpHeaderValue1": f"Token {token}"}
    return model


def dashboards_json(site: Site, ds: Datasource) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON for every dashboard of the site."""
    return {d.uid: d.to_json(ds) for d in build_dashboards(site).values()}


def write_build(site: Site, out: Path, influx_url: str, database: str, token_env: str | None,
                ds: Datasource = Datasource()) -> list[Path]:
    """``out/dashboards/<uid>.json``, ``out/provisioning/datasources/iozera.yaml``,
    ``out/provisioning/dashboards/iozera.yaml``; returns the paths written."""
    if token_env is not None and not _ENV_NAME.fullmatch(token_env):
        raise ValueError(f"--token-env {token_env!r}: expected an environment variable name")
    out = out.resolve()
    dash_dir = out / "dashboards"
    ds_dir = out / "provisioning" / "datasources"
    prov_dir = out / "provisioning" / "dashboards"
    for d in (dash_dir, ds_dir, prov_dir):
        d.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for uid, body in dashboards_json(site, ds).items():
        p = dash_dir / f"{uid}.json"
        p.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(p)
    model = datasource_model(ds, influx_url, database, "${" + token_env + "}" if token_env else None)
    model["editable"] = False
    p = ds_dir / "iozera.yaml"
    p.write_text(yaml.safe_dump({"apiVersion": 1, "datasources": [model]}, sort_keys=False), encoding="utf-8")
    written.append(p)
    provider = {"apiVersion": 1, "providers": [{
        "name": "iozera", "orgId": 1, "folder": FOLDER_TITLE, "folderUid": FOLDER_UID, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 30,
        "options": {"path": str(dash_dir), "foldersFromFilesStructure": False}}]}
    p = prov_dir / "iozera.yaml"
    p.write_text(yaml.safe_dump(provider, sort_keys=False), encoding="utf-8")
    written.append(p)
    return written
