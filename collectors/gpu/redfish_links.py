"""Following a Redfish service's links, sans-I/O: the steps every Redfish walk is made of.

A walk is a generator that yields the path it needs and is sent the resource
back as a dict (or thrown :class:`ResourceMissing` for a 404), so the chassis
walk (``redfish.py``) and the CDU walk (``redfish_cdu.py``) run unchanged under
the asyncio collector, the blocking getter and the benchmarks.  Links are only
ever taken from ``@odata.id`` values, never guessed, since vendors name the
same resource ``1``, ``1U`` or ``System.Embedded.1``.
"""
from __future__ import annotations

from typing import Any, Callable, Generator

__all__ = ["ResourceMissing", "Getter", "Walk", "num", "link", "members", "optional", "reading", "ident"]


class ResourceMissing(LookupError):
    """A 404: the resource is optional, the walk goes on (thrown into the walk)."""


Getter = Callable[[str], dict]
#: yields a path, is sent its resource (or thrown ResourceMissing), returns the value
Walk = Generator[str, dict, Any]


def num(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (null, strings, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def link(obj: Any, key: str) -> str | None:
    """The ``@odata.id`` of ``obj[key]`` (a link object), without any fragment."""
    target = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(target, dict) and isinstance(target.get("@odata.id"), str):
        return target["@odata.id"].split("#", 1)[0] or None
    return None


def members(path: str | None, limit: int = 256) -> Walk:
    """Fetch a collection and each member it links to (missing members are skipped; at most ``limit``)."""
    coll = yield from optional(path)
    out = []
    for member in ((coll or {}).get("Members", []) or [])[:limit]:
        ref = member.get("@odata.id") if isinstance(member, dict) else None
        if isinstance(ref, str):
            res = yield from optional(ref.split("#", 1)[0])
            if res is not None:
                out.append(res)
    return out


def optional(path: str | None) -> Walk:
    """The resource at ``path``, or None when there is no link or it is missing (404)."""
    if not path:
        return None
    try:
        res = yield path
    except ResourceMissing:
        return None
    return res if isinstance(res, dict) else None


def reading(obj: Any, key: str) -> float | None:
    """``obj[key]["Reading"]`` of a newer-schema SensorExcerpt."""
    excerpt = obj.get(key) if isinstance(obj, dict) else None
    return num(excerpt.get("Reading")) if isinstance(excerpt, dict) else None


def ident(res: dict) -> str:
    """A member's ``Id``, else the last segment of its ``@odata.id`` (the tag naming it)."""
    return str(res.get("Id") or res.get("@odata.id", "?").rstrip("/").rsplit("/", 1)[-1])
