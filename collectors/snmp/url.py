"""``snmp://`` URLs for ``dcim probe``: a pure parse into a Target.

    snmp://[COMMUNITY@]HOST[:PORT][?engine=gufo|pysnmp&timeout=2&retries=1]
    snmp://USER@HOST[:PORT]?version=3&auth_protocol=SHA-256&auth_key_env=VAR
                            &priv_protocol=AES&priv_key_env=VAR

Keys never travel in URLs (shell history, process lists): v3 keys and, when
preferred, the community come from environment variables named in the query
(``auth_key_env``, ``priv_key_env``, ``community_env``).
"""
from __future__ import annotations

import os
import urllib.parse
from typing import Mapping

from collectors.base import Target
from contract.protocols import PROTOCOLS
from inventory.secrets import SecretValue

__all__ = ["target_from_url"]

_OPTION_KEYS = ("engine", "version", "user", "auth_protocol", "priv_protocol", "key_expansion", "max_repetitions")


def target_from_url(parts: urllib.parse.SplitResult, profile: str = "auto",
                    environ: Mapping[str, str] | None = None) -> Target:
    """Parse an ``snmp://`` URL; raise ValueError with a message a person can act on."""
    env = os.environ if environ is None else environ
    if parts.scheme != "snmp":
        raise ValueError(f"not an snmp:// URL: scheme {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise ValueError("snmp:// URL needs a host, e.g. snmp://public@10.0.0.5")
    try:
        port = parts.port or PROTOCOLS["snmp"].default_port
    except ValueError:
        raise ValueError(f"snmp:// URL has an invalid port in {parts.netloc.rpartition('@')[2]!r}") from None
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - set(_OPTION_KEYS) - {"timeout", "retries", "auth_key_env", "priv_key_env", "community_env"}
    if unknown:
        raise ValueError(f"snmp:// URL: unknown query parameter(s) {', '.join(sorted(unknown))}")
    options: dict = {k: query[k] for k in _OPTION_KEYS if k in query}
    secrets: dict[str, SecretValue] = {}
    userinfo = urllib.parse.unquote(parts.username) if parts.username else None
    if parts.password:
        raise ValueError("snmp:// URL must not carry a password; use auth_key_env / priv_key_env")
    version = str(options.get("version", "2c")).lstrip("v")
    if version not in ("1", "2c", "3"):
        raise ValueError(f"snmp:// URL: version must be 1, 2c or 3, not {version!r}")
    options["version"] = version

    def from_env(param: str, secret: str) -> None:
        var = query.get(param)
        if var is None:
            return
        if var not in env:
            raise ValueError(f"snmp:// URL: environment variable {var} (from {param}) is not set")
        secrets[secret] = SecretValue(env[var])

    if version == "3":
        if userinfo:
            options.setdefault("user", userinfo)
        if not options.get("user"):
            raise ValueError("SNMPv3 URL needs a user: snmp://USER@HOST?version=3&...")
        from_env("auth_key_env", "auth_key")
        from_env("priv_key_env", "priv_key")
        if options.get("auth_protocol") and "auth_key" not in secrets:
            raise ValueError("SNMPv3 URL with auth_protocol needs auth_key_env=VARIABLE")
        if options.get("priv_protocol") and "priv_key" not in secrets:
            raise ValueError("SNMPv3 URL with priv_protocol needs priv_key_env=VARIABLE")
    else:
        if userinfo:
            secrets["community"] = SecretValue(userinfo)
        from_env("community_env", "community")
        secrets.setdefault("community", SecretValue("public"))
    try:
        timeout = float(query.get("timeout", 2.0))
        retries = int(query.get("retries", 1))
    except ValueError:
        raise ValueError("snmp:// URL: timeout must be seconds and retries an integer") from None
    if "max_repetitions" in options:
        options["max_repetitions"] = int(options["max_repetitions"])
    return Target(device_id=host, protocol="snmp", host=host, port=port, profile=profile or "auto",
                  timeout_s=timeout, retries=retries, options=options, secrets=secrets)
