"""``dcgm://``, ``redfish://``, ``redfish+https://`` and ``nvml://`` URLs -> Target.  Pure.

- ``dcgm://HOST[:PORT][/PATH]``           dcgm-exporter page (port 9400, path ``/metrics``)
- ``redfish://[USER@]HOST[:PORT]``        Redfish over plain HTTP (port 80; labs and simulators)
- ``redfish+https://[USER@]HOST[:PORT]``  Redfish over HTTPS (port 443), certificate verified
  unless ``?tls_verify=0``; ``?ca_bundle=/path/ca.pem`` for a private CA
- ``nvml://local``                        the GPUs of this machine through the NVIDIA driver

A password is never taken from the URL (it would sit in shell history and
process lists): pass ``--secret-env password=ENVVAR``.  Query parameters other
than ``timeout`` become target options.
"""
from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl

from collectors.base import Target
from contract.protocols import PROTOCOLS
from contract.protocols import SCHEMES as _ALL_SCHEMES

__all__ = ["target_from_url", "SCHEMES"]

#: scheme -> protocol, the table's rows this module parses (contract/protocols.py)
SCHEMES = {s: p for s, p in _ALL_SCHEMES.items() if PROTOCOLS[p].url_parser == __name__}
_FALSE = {"0", "false", "no", "off"}


def target_from_url(parts: SplitResult, profile: str) -> Target:
    """Parse a split GPU-node URL; raises ValueError naming what is wrong."""
    url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never echo user info
    protocol = SCHEMES.get(parts.scheme.lower())
    if protocol is None:
        raise ValueError(f"{url}: scheme must be one of {', '.join(s + '://' for s in sorted(SCHEMES))}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        timeout = float(query.pop("timeout", 2.0 if protocol == "dcgm" else 5.0))
    except ValueError:
        raise ValueError(f"{url}: timeout must be a number of seconds") from None
    if protocol == "nvml":
        where = parts.hostname or parts.path.strip("/") or "local"
        if where not in ("local", "localhost"):
            raise ValueError(f"{url}: NVML reads this machine's GPUs only; use nvml://local")
        return Target(device_id="nvml:local", protocol="nvml", host="local", profile=profile,
                      timeout_s=timeout, options=query)
    if not parts.hostname:
        raise ValueError(f"{url}: no host")
    if parts.password is not None:
        raise ValueError(f"{url}: do not put a password in the URL; pass --secret-env password=ENVVAR")
    try:
        port = parts.port or PROTOCOLS[protocol].default_port
    except ValueError:
        raise ValueError(f"{url}: bad port") from None
    options: dict = dict(query)
    if protocol == "dcgm":
        options["path"] = parts.path or "/metrics"
    elif parts.path.strip("/") not in ("", "redfish/v1"):
        raise ValueError(f"{url}: give the BMC address only; the service root /redfish/v1 is found from it")
    if "tls_verify" in options:
        options["tls_verify"] = options["tls_verify"].lower() not in _FALSE
    if parts.username:
        options["username"] = parts.username
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Target(device_id=f"{shown}:{port}", protocol=protocol, host=host, port=port, profile=profile,
                  timeout_s=timeout, options=options)
