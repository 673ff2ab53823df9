"""``dcim agent``: the NVML node agent for GPU nodes without a DCGM exporter.

It runs on the node itself, reads the local GPUs through the NVIDIA driver
(nvidia-ml-py) and writes the same ``gpu`` samples as the DCGM path, tagged
from the inventory entry of the node (site, hall, row, rack, device), so GPU
power sits beside the PDU outlets that feed the node.  It is the collection
service with one device whose protocol is ``nvml``: same scheduler, same
``poll`` samples, same writer with its disk spool.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="NVML node agent: this machine's GPUs into InfluxDB (nodes without DCGM)")
    p.add_argument("--config", required=True, type=Path, help="service config (site file + influxdb), as for dcim run")
    p.add_argument("--device", default=None, help="this node's inventory id (default: the host name)")
    p.add_argument("--interval", type=float, default=None, help="seconds between reads (default: the inventory's)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_cmd_agent)


def _cmd_agent(args: argparse.Namespace) -> int:
    from dcim.config import open_service

    opened = open_service(args.config, "dcim agent")
    if isinstance(opened, int):
        return opened
    cfg, site, influx = opened
    device_id = args.device or socket.gethostname().split(".")[0]
    if not site.has_device(device_id):
        print(f"dcim agent: no device {device_id!r} in {cfg.site_path()} (give --device NODE_ID)", file=sys.stderr)
        return 2
    dev = site.device(device_id)
    if dev.kind not in ("gpu_node", "server"):
        print(f"dcim agent: {device_id} is a {dev.kind}, not a GPU node", file=sys.stderr)
        return 2
    dev.protocol, dev.host, dev.port = "nvml", "local", None
    if args.interval is not None:
        if not 0.5 <= args.interval <= 3600:
            print("dcim agent: --interval must be 0.5..3600 s", file=sys.stderr)
            return 2
        dev.interval_s = args.interval
    from sinks.spool import SpoolInUse

    try:
        return asyncio.run(_run(site, dev, influx, args.duration))
    except SpoolInUse as exc:
        print(f"dcim agent: {exc}", file=sys.stderr)
        return 2


async def _run(site, dev, influx, duration: float | None) -> int:
    from dcim.service import CollectionService, run_until_stopped

    service = CollectionService(site, influx, devices=[dev])
    if service.problems:
        for p in service.problems:
            print(f"dcim agent: {p.device_id}: {p.message}", file=sys.stderr)
        return 2
    await run_until_stopped(service, duration)
    return 0
