"""``dcim traps listen``: watch traps and informs on a terminal, decoded and mapped as ``dcim run`` would.

One JSON object per datagram on stdout: the sender, the device it maps to, the
trap's name (or OID), its varbinds and the samples it becomes; a refused
datagram says why (``refused``: bad_community, wrong_digest, unknown_sender …).
Credentials come from the site file (``--site``) or the service config
(``--config``, whose ``traps:`` section also gives the listen address), so
what this shows is what the service would accept.  Nothing is written
anywhere and no device is polled.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("traps", help="SNMP traps and informs: watch them on a terminal")
    t = p.add_subparsers(dest="traps_cmd", required=True)
    li = t.add_parser("listen", help="receive traps/informs and print each as a JSON line")
    src = li.add_mutually_exclusive_group(required=True)
    src.add_argument("--site", type=Path, help="site file: its SNMP devices and credentials")
    src.add_argument("--config", type=Path, help="service config: its site and traps: settings")
    li.add_argument("--listen", help="HOST:PORT (default: the config's traps.listen, else 127.0.0.1:1162)")
    li.add_argument("--count", type=int, default=0, help="stop after this many datagrams (0: until Ctrl-C)")
    li.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    li.set_defaults(func=_listen)


def _record(r, addr, catalog) -> dict:
    from contract.sample import now_ns
    from collectors.snmp.ber import oid_text
    from collectors.snmp.traps.definitions import varbind_text

    out: dict = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": f"{addr[0]}:{addr[1]}"}
    if r.target is not None:
        out["device"] = r.target.device_id
    n = r.notification
    if n is not None:
        d = catalog.lookup(n.trap_oid)
        out.update(version=n.version, oid=oid_text(n.trap_oid), trap=d.name if d else None,
                   inform=n.confirmed, varbinds={oid_text(o): varbind_text(v) for o, _t, v in n.varbinds})
        if n.user:
            out["user"] = n.user
        if r.target is not None:
            samples, _ = catalog.samples(n, r.target.tags, now_ns())
            out["samples"] = [s.to_json() for s in samples]
    if r.refused:
        out.update(refused=r.refused, detail=r.detail)
    return out


def _listen(args: argparse.Namespace) -> int:
    from collectors.snmp.traps.listener import TrapListenError, TrapListener, TrapSettings, parse_listen
    from collectors.targets import build_targets
    from inventory import InventoryError, load_site
    from inventory.secrets import SecretError

    settings = TrapSettings(host="127.0.0.1", port=1162)
    try:
        if args.config:
            from dcim.config import load_run_config

            cfg = load_run_config(args.config)
            site = load_site(cfg.site_path())
            if cfg.traps is not None:
                settings = cfg.traps.to_settings()
        else:
            site = load_site(args.site)
        if args.listen:
            settings.host, settings.port = parse_listen(args.listen)
    except InventoryError as exc:
        exc.print_issues()
        return 1
    except (SecretError, ValueError) as exc:
        print(f"dcim traps listen: {exc}", file=sys.stderr)
        return 2
    targets, problems = build_targets(site, [d for d in site.polled_devices() if d.protocol == "snmp"])
    for p in problems:
        print(f"dcim traps listen: {p.device_id}: {p.message} (its traps will be refused)", file=sys.stderr)

    async def go() -> int:
        listener = TrapListener(targets, lambda samples: None, settings=settings)
        done = asyncio.Event()
        seen = [0]

        def show(r, addr) -> None:
            print(json.dumps(_record(r, addr, listener.catalog), sort_keys=True, default=str), flush=True)
            seen[0] += 1
            if args.count and seen[0] >= args.count:
                done.set()

        listener.watchers.append(show)
        try:
            await listener.start()
        except TrapListenError as exc:
            print(f"dcim traps listen: {exc}", file=sys.stderr)
            return 2
        print(f"dcim traps listen: on {settings.host}:{listener.port}, {len(targets)} SNMP devices", file=sys.stderr)
        try:
            await asyncio.wait_for(done.wait(), timeout=args.duration)
        except asyncio.TimeoutError:
            pass
        finally:
            listener.close()
        return 0

    return asyncio.run(go())
