"""``dcim probe`` URLs -> Targets, dispatched to each protocol's own parser.

Each protocol package owns ``url.py`` with ``target_from_url(parts, profile)``;
this module only picks the package by URL scheme.
"""
from __future__ import annotations

import importlib
import urllib.parse

from collectors.base import Target

__all__ = ["target_from_url", "SCHEMES"]

SCHEMES = {
    "snmp": "collectors.snmp.url",
    "modbus": "collectors.modbus.url",
    "modbus+tcp": "collectors.modbus.url",
    "modbus+rtu": "collectors.modbus.url",
    "modbus+rtutcp": "collectors.modbus.url",
    "dcgm": "collectors.gpu.url",
    "redfish": "collectors.gpu.url",
    "redfish+https": "collectors.gpu.url",
    "nvml": "collectors.gpu.url",
}


def target_from_url(url: str, profile: str = "auto") -> Target:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"unsupported URL scheme {scheme or '(none)'!r} in {url!r}; use one of {known}")
    module = importlib.import_module(SCHEMES[scheme])
    return module.target_from_url(parts, profile)
