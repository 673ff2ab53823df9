"""``dcim simulate``: the twin of a site file, and its fault-control client.

    dcim simulate --site SITE.yaml [--control-port 8899] [--duration S]
    dcim simulate --scale halls=1,rows=4,racks=10,nodes=8 --write-site slice.yaml
    dcim simulate fault inject ups_on_battery ups-1a [--control http://127.0.0.1:8899]
    dcim simulate fault inject cdu_pump_fail cdu-1 --param pump=1
    dcim simulate fault clear ups_on_battery ups-1a
    dcim simulate fault list
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["register", "parse_scale"]

log = logging.getLogger("dcim.twin")
DEFAULT_CONTROL = 8899
_SCALE_KEYS = {"halls": "halls", "rows": "rows_per_hall", "racks": "racks_per_row", "nodes": "nodes_per_rack",
               "ups": "ups_per_hall", "cdus": "cdus_per_hall", "bmcs": "bmc_per_rack"}


def parse_scale(text: str):
    """``halls=1,rows=4,racks=10,nodes=8`` -> a loopback SiteShape (clear error on a bad key/value)."""
    from inventory.generate import FULL_SITE

    changes: dict = {"address_plan": "loopback"}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in _SCALE_KEYS:
            raise ValueError(f"--scale: {part!r}: use KEY=N with KEY one of {', '.join(_SCALE_KEYS)}")
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"--scale: {key}={value!r}: not a whole number") from None
        if n < (0 if key == "bmcs" else 1):
            raise ValueError(f"--scale: {key}={n}: must be at least {0 if key == 'bmcs' else 1}")
        changes[_SCALE_KEYS[key]] = n
    return dataclasses.replace(FULL_SITE, **changes)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", allow_abbrev=False, help="serve a site's devices from the digital twin (SNMP, Modbus, DCGM, Redfish)")
    p.add_argument("--site", type=Path, help="site file whose devices to serve")
    p.add_argument("--scale", help="generate a loopback slice instead: halls=1,rows=4,racks=10,nodes=8,…")
    p.add_argument("--write-site", type=Path, help="with --scale: write the generated site file here (for the collectors)")
    p.add_argument("--control-port", type=int, default=DEFAULT_CONTROL, help="fault-control API port on 127.0.0.1 (0: any)")
    p.add_argument("--control-host", default="127.0.0.1", help="fault-control API address (default loopback only)")
    p.add_argument("--refresh", type=float, default=1.0, help="model step in seconds (default 1)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shard", help="i/N: serve only this shard of the devices (the collectors' split); "
                                   "N twins serve a site too big for one process's open-file limit")
    p.set_defaults(func=_cmd_simulate)
    fsub = p.add_subparsers(dest="simulate_command", metavar="ACTION")
    f = fsub.add_parser("fault", help="inject, clear or list faults on a running twin")
    f.add_argument("action", choices=["inject", "clear", "list"])
    f.add_argument("fault", nargs="?", help="pdu_breaker_trip, ups_on_battery, chiller_trip, cdu_leak, cdu_pump_fail, "
                                            "cdu_low_flow, cdu_filter_clog, gpu_overtemp, xid_storm, no_answer, slow, garbage")
    f.add_argument("device", nargs="?", help="inventory id")
    f.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a fault parameter, e.g. pump=1 (cdu_pump_fail), pct=20 loop=2 (cdu_low_flow), "
                        "severity=0.97 (cdu_filter_clog), detector=RACK (cdu_leak); repeatable")
    f.add_argument("--control", default=f"http://127.0.0.1:{DEFAULT_CONTROL}", help="the twin's control URL")
    f.set_defaults(func=_cmd_fault)


def _fail(msg: str) -> int:
    print(f"dcim simulate: {msg}", file=sys.stderr)
    return 2


def _cmd_fault(args: argparse.Namespace) -> int:
    if args.action != "list" and not (args.fault and args.device):
        return _fail(f"fault {args.action} needs FAULT and DEVICE")
    url = args.control.rstrip("/") + "/faults"
    if args.action == "list":
        req = urllib.request.Request(url)
    else:
        params = {}
        for item in args.param:
            name, sep, value = item.partition("=")
            if not sep or not name:
                return _fail(f"--param {item!r}: expected NAME=VALUE")
            params[name] = value
        body = json.dumps({"fault": args.fault, "device": args.device, "params": params}).encode()
        req = urllib.request.Request(url, data=body, method="POST" if args.action == "inject" else "DELETE",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(r.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        return _fail(json.loads(exc.read() or b"{}").get("error", str(exc)))
    except (urllib.error.URLError, OSError) as exc:
        return _fail(f"no twin answering at {args.control}: {getattr(exc, 'reason', exc)}")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from inventory import InventoryError, load_site
    from inventory.generate import dump_site, generate_site
    from inventory.loader import load_site_text

    if bool(args.site) == bool(args.scale):
        return _fail("give exactly one of --site FILE or --scale SHAPE")
    try:
        if args.scale:
            text = dump_site(generate_site(parse_scale(args.scale)))
            if args.write_site:
                args.write_site.write_text(text, encoding="utf-8")
            site = load_site_text(text, str(args.write_site or "<generated>"))
        else:
            site = load_site(args.site)
    except InventoryError as exc:
        exc.print_issues()
        return 1
    except ValueError as exc:
        return _fail(str(exc))
    return asyncio.run(_serve(site, args))


async def _serve(site, args: argparse.Namespace) -> int:
    from dcim.service import install_signal_handlers
    from simulator.control import ControlServer
    from simulator.twin import Twin

    devices = None
    if args.shard:
        from dcim.config import parse_shard
        from dcim.service import select_shard

        try:
            devices = select_shard(site, parse_shard(args.shard))
        except ValueError as exc:
            return _fail(str(exc))
    twin = Twin(site, seed=args.seed, refresh_s=args.refresh, devices=devices)
    try:
        await twin.start()
    except OSError as exc:
        return _fail(f"cannot bind the site's endpoints: {exc} (another twin or demo running?)")
    control = await ControlServer(twin).start(args.control_host, args.control_port)
    # the site model (for the full site ≈1.5 M objects: devices, states, 344,000 GPU states) and the
    # endpoints live until exit: move them out of the collector's generations, or every full
    # collection walks them all, CPU taken from the collectors polling this twin on the same cores
    gc.freeze()
    n = len(twin.endpoints)
    print(f"twin of {site.site.id}: {n} device endpoint(s) on loopback; control API http://{args.control_host}:{control.port}",
          flush=True)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    t0, c0 = time.monotonic(), time.process_time()
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
    except asyncio.TimeoutError:
        pass
    await control.stop()
    await twin.stop()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    print(f"twin stopped after {wall:.0f} s; CPU {cpu:.2f} s ({100 * cpu / max(wall, 1e-9):.1f}% of one core)", flush=True)
    return 0
