"""Site files moved onto free loopback ports, so tests never collide with a demo.

The example inventory names fixed ports (16101…, 15020, 19401…) so the README's
demo is predictable; tests run beside other tests and maybe a demo, so they
take the same site with every endpoint moved to a port the OS says is free.
Devices that share an endpoint (Modbus units behind one gateway) keep sharing.
"""
from __future__ import annotations

import socket
from pathlib import Path

from contract.protocols import PROTOCOLS
from inventory.loader import load_site
from inventory.model import Site
from localservers.process import server_port

__all__ = ["relocate_ports", "load_relocated", "write_site", "write_loopback_slice", "EXAMPLE_SITE"]

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "inventory" / "examples" / "tetouan.yaml"


def relocate_ports(site: Site) -> Site:
    """Give every polled endpoint of ``site`` a free 127.0.0.1 port, in place."""
    moved: dict[tuple, int] = {}
    for dev in site.polled_devices():
        row = PROTOCOLS[dev.protocol]
        if not row.needs_host:  # local (nvml) or serial: no port to move
            continue
        kind = socket.SOCK_DGRAM if row.transport == "udp" else socket.SOCK_STREAM
        key = (kind, dev.host, dev.effective_port())
        if key not in moved:
            moved[key] = server_port(kind)
        dev.host = "127.0.0.1"
        dev.port = moved[key]
    return site


def load_relocated(path: Path = EXAMPLE_SITE) -> Site:
    return relocate_ports(load_site(path))


def write_site(site: Site, path: Path) -> Path:
    """The (relocated) site as a YAML file a subprocess can load."""
    from inventory.generate import dump_site

    data = site.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    path.write_text(dump_site(data, header="# written by a test from a site moved to free ports\n"), encoding="utf-8")
    return path


def write_loopback_slice(path: Path, **shape) -> Path:
    """A generated site (``inventory.generate``, loopback plan) whose four protocol ports
    are free ones, so it never collides with another twin of the same shape on this machine.

    The plan gives every device its own 127.0.0.0/8 address on one port per protocol; two
    twins of the same shape on the default ports would share every socket.
    """
    import dataclasses

    from inventory.generate import FULL_SITE, dump_site, generate_site

    ports = {"snmp_port": server_port(socket.SOCK_DGRAM), "dcgm_port": server_port(),
             "redfish_port": server_port(), "modbus_port": server_port()}
    chosen = dataclasses.replace(FULL_SITE, address_plan="loopback", **{**ports, **shape})
    path.write_text(dump_site(generate_site(chosen)), encoding="utf-8")
    return path
