"""The protocol table: one row per inventory ``protocol:``, every fact the parts need about it.

The inventory model (which protocols exist, which need ``host:``/``serial:``/
``unit:``, default ports, credential families), the probe URL parsers
(schemes), the targets (credential family), the scheduler (default
concurrency), sharding (which protocols put many units behind one gateway),
endpoint collision checks (transport) and the twin (which kind of endpoint to
serve) all read this table instead of keeping their own lists.  Adding a
protocol is one row here plus its collector.

The collector class and the URL parser are dotted names, not imports, so this
package stays at the bottom of the import graph and ``dcim probe snmp://``
does not import pymodbus.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Protocol", "PROTOCOLS", "NONE", "SCHEMES", "protocol", "served_by"]


@dataclass(frozen=True, slots=True)
class Protocol:
    """What the parts need to know about one inventory ``protocol:`` value."""

    name: str
    #: probe URL schemes (``dcim probe SCHEME://...``); the first is the one documented
    schemes: tuple[str, ...]
    #: port used when the inventory or URL gives none
    default_port: int | None
    #: key under the inventory's ``defaults.credentials`` (several protocols share one set)
    credential_family: str | None
    #: default number of polls of this protocol in flight at once (per collector process)
    concurrency: int
    #: ``module:Class`` of the collector that polls it (None: not polled)
    collector: str | None
    #: module whose ``target_from_url(parts, profile)`` parses its probe URLs
    url_parser: str | None
    #: socket the collector talks to: ``udp``, ``tcp``, ``serial``, or None (local or not polled)
    transport: str | None
    #: the device family: which twin endpoint serves it and which profiles apply (snmp, modbus, dcgm, redfish, nvml)
    family: str
    #: Modbus-style unit id needed (``unit:``)
    unit: bool = False
    #: many devices behind one host:port or serial line: they stay on one shard (one connection)
    gateway: bool = False
    #: TLS on the wire
    tls: bool = False
    #: Modbus RTU framing (CRC, no transaction id): one request at a time per connection
    rtu: bool = False

    @property
    def needs_host(self) -> bool:
        return self.transport in ("udp", "tcp")

    @property
    def needs_serial(self) -> bool:
        return self.transport == "serial"


_SNMP = "collectors.snmp.collector:SnmpCollector"
_MODBUS = "collectors.modbus.collector:ModbusCollector"
_REDFISH = "collectors.gpu.redfish:RedfishCollector"

#: inventory protocol name -> its row; order is the order people read in docs and errors
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("snmp", ("snmp",), 161, "snmp", 1000, _SNMP, "collectors.snmp.url", "udp", "snmp"),
    Protocol("modbus", ("modbus", "modbus+tcp"), 502, "modbus", 200, _MODBUS, "collectors.modbus.url", "tcp",
             "modbus", unit=True, gateway=True),
    Protocol("modbus-rtu", ("modbus+rtu",), None, "modbus", 16, _MODBUS, "collectors.modbus.url", "serial",
             "modbus", unit=True, gateway=True, rtu=True),
    Protocol("modbus-rtutcp", ("modbus+rtutcp",), 502, "modbus", 200, _MODBUS, "collectors.modbus.url", "tcp",
             "modbus", unit=True, gateway=True, rtu=True),
    Protocol("dcgm", ("dcgm",), 9400, "dcgm", 1000, "collectors.gpu.dcgm:DcgmCollector", "collectors.gpu.url",
             "tcp", "dcgm"),
    Protocol("redfish", ("redfish",), 80, "redfish", 100, _REDFISH, "collectors.gpu.url", "tcp", "redfish"),
    Protocol("redfish-https", ("redfish+https",), 443, "redfish", 100, _REDFISH, "collectors.gpu.url", "tcp",
             "redfish", tls=True),
    Protocol("nvml", ("nvml",), None, None, 4, "collectors.gpu.nvml:NvmlCollector", "collectors.gpu.url", None,
             "nvml"),
    Protocol("none", (), None, None, 0, None, None, None, "none"),
)}

#: ``protocol: none``: a device in the model (a transformer, a busway) that nothing polls
NONE = "none"

#: probe URL scheme -> inventory protocol name
SCHEMES: dict[str, str] = {s: p.name for p in PROTOCOLS.values() for s in p.schemes}


def protocol(name: str) -> Protocol:
    """The row for ``name``; ValueError listing the known names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r} (known: {', '.join(PROTOCOLS)})") from None


def served_by(collector: str) -> tuple[str, ...]:
    """The protocol names a collector class (``module:Class``) polls."""
    return tuple(p.name for p in PROTOCOLS.values() if p.collector == collector)
