"""Which collector class serves which protocol.

Imports are lazy so that ``dcim probe snmp://...`` does not import pymodbus,
redfish or NVML, and a missing optional library only breaks its own protocol.
"""
from __future__ import annotations

import importlib

from collectors.base import Collector

__all__ = ["PROTOCOLS", "collector_class", "make_collector"]

#: protocol name -> "module:Class"
PROTOCOLS: dict[str, str] = {
    "snmp": "collectors.snmp.collector:SnmpCollector",
    "modbus": "collectors.modbus.collector:ModbusCollector",
    "modbus-rtu": "collectors.modbus.collector:ModbusCollector",
    "modbus-rtutcp": "collectors.modbus.collector:ModbusCollector",
    "dcgm": "collectors.gpu.dcgm:DcgmCollector",
    "redfish": "collectors.gpu.redfish:RedfishCollector",
    "redfish-https": "collectors.gpu.redfish:RedfishCollector",
    "nvml": "collectors.gpu.nvml:NvmlCollector",
}


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
