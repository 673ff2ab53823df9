"""``modbus://`` URLs -> Target, for ``dcim probe``.  Pure.

- ``modbus://HOST[:PORT]/UNIT``            Modbus TCP (port 502)
- ``modbus+rtutcp://HOST:PORT/UNIT``       RTU frames over TCP (serial gateways in transparent mode)
- ``modbus+rtu:///dev/ttyUSB0?baud=19200&parity=E&unit=7``  RTU on a local serial port

Query parameters become target options (``max_in_flight``, ``max_gap``,
``baud``, ``parity``, ``stopbits``, ``bytesize``, ``timeout``).
"""
from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl

from collectors.base import Target
from contract.protocols import PROTOCOLS
from contract.protocols import SCHEMES as _ALL_SCHEMES

__all__ = ["target_from_url", "SCHEMES"]

#: scheme -> protocol, the table's rows this module parses (contract/protocols.py)
SCHEMES = {s: p for s, p in _ALL_SCHEMES.items() if PROTOCOLS[p].url_parser == __name__}


def _unit(text: str, url: str) -> int:
    try:
        unit = int(text)
    except ValueError:
        raise ValueError(f"{url}: unit id {text!r} is not a number (0..255)") from None
    if not 0 <= unit <= 255:
        raise ValueError(f"{url}: unit id {unit} out of range 0..255")
    return unit


def target_from_url(parts: SplitResult, profile: str) -> Target:
    """Parse a split ``modbus…://`` URL; raises ValueError naming what is wrong."""
    url = parts.geturl()
    protocol = SCHEMES.get(parts.scheme.lower())
    if protocol is None:
        raise ValueError(f"{url}: scheme must be one of {', '.join(sorted(SCHEMES))}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    timeout = float(query.pop("timeout", 2.0))
    row = PROTOCOLS[protocol]
    if row.needs_serial:
        device = parts.path or parts.netloc
        if not device:
            raise ValueError(f"{url}: give the serial device, e.g. modbus+rtu:///dev/ttyUSB0?unit=1")
        unit = _unit(query.pop("unit", "1"), url)
        return Target(device_id=f"{device}#{unit}", protocol=protocol, host=device, unit=unit,
                      profile=profile, timeout_s=timeout, options=query)
    if not parts.hostname:
        raise ValueError(f"{url}: no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url}: bad port") from None
    if row.rtu and port is None:  # RTU framing over TCP: the table's 502 is for the inventory, not a guess here
        raise ValueError(f"{url}: RTU-over-TCP gateways have no standard port; give HOST:PORT")
    path = parts.path.strip("/")
    unit = _unit(path or query.pop("unit", "1"), url)
    query.pop("unit", None)
    port = port or row.default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Target(device_id=f"{shown}:{port}/{unit}", protocol=protocol, host=host, port=port, unit=unit,
                  profile=profile, timeout_s=timeout, options=query)
