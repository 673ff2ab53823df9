"""Which collector class serves which protocol.

Imports are lazy so that ``dcim probe snmp://...`` does not import pymodbus,
redfish or NVML, and a missing optional library only breaks its own protocol.
"""
from __future__ import annotations

import importlib

from collectors.base import Collector
from contract.protocols import PROTOCOLS as _TABLE

__all__ = ["PROTOCOLS", "collector_class", "make_collector"]

#: protocol name -> "module:Class", for every polled protocol of the table (contract/protocols.py)
PROTOCOLS: dict[str, str] = {name: p.collector for name, p in _TABLE.items() if p.collector}


def collector_class(protocol: str) -> type[Collector]:
    try:
        spec = PROTOCOLS[protocol]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown protocol {protocol!r} (known: {known})") from None
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_collector(protocol: str, **options) -> Collector:
    return collector_class(protocol)(**options)
