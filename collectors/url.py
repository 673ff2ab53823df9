"""``dcim probe`` URLs -> Targets, dispatched to each protocol's own parser.

Each protocol package owns ``url.py`` with ``target_from_url(parts, profile)``;
this module only picks the package by URL scheme.
"""
from __future__ import annotations

import importlib
import urllib.parse

from collectors.base import Target
from contract.protocols import PROTOCOLS

__all__ = ["target_from_url", "SCHEMES"]

#: URL scheme -> the module that parses it (contract/protocols.py)
SCHEMES = {s: p.url_parser for p in PROTOCOLS.values() if p.url_parser for s in p.schemes}


def target_from_url(url: str, profile: str = "auto") -> Target:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"unsupported URL scheme {scheme or '(none)'!r} in {url!r}; use one of {known}")
    module = importlib.import_module(SCHEMES[scheme])
    return module.target_from_url(parts, profile)
