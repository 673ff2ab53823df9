"""Push the datasource, folder and dashboards to a Grafana server through its HTTP API.

Idempotent on purpose: each object is read first and compared with what we
would send, so a second push of the same build reports ``unchanged`` for
everything and writes nothing (no new dashboard versions piling up in
Grafana's history).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

__all__ = ["PushResult", "push_all"]

_DS_KEYS = ("name", "type", "access", "url", "isDefault", "jsonData")
_VOLATILE_DASH_KEYS = ("id", "version")


@dataclass(frozen=True)
class PushResult:
    kind: str  # datasource | folder | dashboard
    uid: str
    action: str  # created | updated | unchanged

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.uid:<40} {self.action}"


def _get(fn, *args) -> dict | None:
    """The object, or None when Grafana answers 404."""
    try:
        return fn(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _push_datasource(api: GrafanaApi, model: dict[str, Any]) -> PushResult:
    uid = model["uid"]
    current = _get(api.datasource.get_datasource_by_uid, uid)
    if current is None:
        api.datasource.create_datasource(model)
        return PushResult("datasource", uid, "created")
    same = all(current.get(k) == model.get(k) for k in _DS_KEYS)
    # the token cannot be read back: only "is one set" can be compared
    wants_secret = set(model.get("secureJsonData", {}))
    has_secret = {k for k, v in (current.get("secureJsonFields") or {}).items() if v}
    if same and wants_secret <= has_secret:
        return PushResult("datasource", uid, "unchanged")
    api.datasource.update_datasource_by_uid(uid, {**model, "id": current.get("id")})
    return PushResult("datasource", uid, "updated")


def _push_folder(api: GrafanaApi, uid: str, title: str) -> PushResult:
    current = _get(api.folder.get_folder, uid)
    if current is None:
        api.folder.create_folder(title, uid=uid)
        return PushResult("folder", uid, "created")
    if current.get("title") == title:
        return PushResult("folder", uid, "unchanged")
    api.folder.update_folder(uid, title=title, overwrite=True)
    return PushResult("folder", uid, "updated")


def _normalised(dash: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dash.items() if k not in _VOLATILE_DASH_KEYS}


def _push_dashboard(api: GrafanaApi, dash: dict[str, Any], folder_uid: str) -> PushResult:
    uid = dash["uid"]
    current = _get(api.dashboard.get_dashboard, uid)
    if current is not None and _normalised(current.get("dashboard", {})) == _normalised(dash) \
            and current.get("meta", {}).get("folderUid", folder_uid) == folder_uid:
        return PushResult("dashboard", uid, "unchanged")
    body = {**dash, "id": None}
    api.dashboard.update_dashboard({"dashboard": body, "folderUid": folder_uid, "overwrite": True,
                                    "message": "iozera dcim dashboards push"})
    return PushResult("dashboard", uid, "created" if current is None else "updated")


def push_all(api: GrafanaApi, datasource: dict[str, Any], folder_uid: str, folder_title: str,
             dashboards: list[dict[str, Any]]) -> list[PushResult]:
    results = [_push_datasource(api, datasource), _push_folder(api, folder_uid, folder_title)]
    results += [_push_dashboard(api, d, folder_uid) for d in dashboards]
    return results
