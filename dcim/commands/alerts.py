"""``dcim alerts ...``: check and test rule files, silence and ack, tail the event stream.

Subcommands:

* ``check RULES [--site SITE]`` — validate a rule file (and that selectors match devices);
* ``test FILE...`` — run rule unit tests (see :mod:`alerts.rule_tests`); exit 1 with a diff;
* ``silence --select device=X --duration 2h --author A --reason R`` with ``--state-dir D``
  (the engine picks the file up on its next tick) or ``--mqtt HOST:PORT --site S`` (command topic);
* ``ack FINGERPRINT... --author A`` (same two ways);
* ``tail --mqtt HOST:PORT --site S`` — readable stream, coloured by severity.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from alerts.rules import RuleError, load_rules
from contract.alert_event import (ACKED, DEVICE, RESOLVED, RULE, SEVERITY, SILENCED, STATE, SUPPRESSED_BY, TIME,
                                  summary_of)

__all__ = ["register"]

SEVERITY_STYLE = {"critical": "bold white on red", "major": "bold red", "minor": "yellow", "warning": "cyan", "info": "dim"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="alert rules: check, test, silence, ack, tail")
    a = p.add_subparsers(dest="alerts_cmd", required=True)

    c = a.add_parser("check", help="validate a rule file against a site")
    c.add_argument("rules", type=Path)
    c.add_argument("--site", type=Path, help="site file: also check that each rule's select matches devices")
    c.set_defaults(func=_check)

    t = a.add_parser("test", help="run rule unit tests (promtool-style YAML)")
    t.add_argument("files", type=Path, nargs="+")
    t.add_argument("--allow", type=Path, action="append", default=[], metavar="PATH",
                   help="a rules/site file (or directory) outside the test file's project that it may name")
    t.set_defaults(func=_test)

    s = a.add_parser("silence", help="mute alerts matching a selector for a while (recorded)")
    s.add_argument("--select", required=True, help="key=value[,key=value] over rule, device, severity, hall, row, rack, tags")
    s.add_argument("--duration", required=True, help="e.g. 30m, 2h, 1d")
    s.add_argument("--author", required=True)
    s.add_argument("--reason", required=True)
    s.add_argument("--start", help="ISO-8601 start time (default: now), e.g. 2026-11-25T22:00Z")
    _target_args(s)
    s.set_defaults(func=_silence)

    k = a.add_parser("ack", help="acknowledge firing alerts by fingerprint (recorded)")
    k.add_argument("fingerprints", nargs="+")
    k.add_argument("--author", required=True)
    k.add_argument("--comment", default="")
    _target_args(k)
    k.set_defaults(func=_ack)

    tl = a.add_parser("tail", help="follow alert events over MQTT")
    tl.add_argument("--mqtt", required=True, help="HOST:PORT (credentials: DCIM_MQTT_USERNAME/PASSWORD[_FILE], DCIM_MQTT_CA)")
    tl.add_argument("--site", required=True)
    tl.add_argument("--duration", type=float, default=0, help="stop after N seconds (default: until Ctrl-C)")
    tl.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    tl.set_defaults(func=_tail)


def _target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--state-dir", type=Path, help="the engine's state directory (same host)")
    g.add_argument("--mqtt", help="HOST:PORT of the broker: send as a command to the running engine")
    p.add_argument("--site", help="site id (with --mqtt)")


def _err(msg: str) -> int:
    print(f"dcim alerts: {msg}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.rules)
    except RuleError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    warnings = []
    if args.site:
        from inventory.errors import InventoryError
        from inventory.loader import load_site

        from alerts.selectors import compile_select

        try:
            site = load_site(args.site)
        except InventoryError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        for r in rules.rules:
            f = compile_select(r, site)
            if f.ids is not None and not f.ids:
                warnings.append(f"{args.rules}: rule {r.name}: select matches no device in {args.site}")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    kinds: dict[str, int] = {}
    for r in rules.rules:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    print(f"{args.rules}: {len(rules)} rules OK ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    return 0


def _test(args: argparse.Namespace) -> int:
    from alerts.rule_tests import run_test_file

    failed = 0
    for f in args.files:
        try:
            res = run_test_file(f, tuple(args.allow))
        except RuleError as exc:
            print(str(exc), file=sys.stderr)
            failed += 1
            continue
        if res.ok:
            print(f"{f}: PASS ({res.checked} checks)")
        else:
            failed += 1
            print(f"{f}: FAIL")
            for msg in res.failures:
                print(msg)
    return 1 if failed else 0


def _send_command(args: argparse.Namespace, verb: str, body: dict) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from alerts.mqtt_publisher import MqttSettings

    if not args.site:
        return _err("--site is needed with --mqtt")
    try:
        st = MqttSettings.from_env(args.mqtt, args.site)
        pw = st.resolve_password()
    except Exception as exc:  # bad HOST:PORT or an unreadable secret: say which, not the value
        return _err(str(exc))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dcim-cli-{int(time.time() * 1000)}")
    if st.username:
        client.username_pw_set(st.username, pw.reveal() if pw else None)
    if st.ca_file:
        client.tls_set(ca_certs=st.ca_file, certfile=st.cert_file, keyfile=st.key_file)
    try:
        client.connect(st.host, st.port, keepalive=10)
    except OSError as exc:
        return _err(f"cannot connect to {st.host}:{st.port}: {exc.strerror or exc}")
    client.loop_start()
    info = client.publish(f"dcim/{args.site}/commands/{verb}", json.dumps(body), qos=1)
    try:
        info.wait_for_publish(10)
    except (RuntimeError, ValueError) as exc:
        return _err(f"broker did not accept the command: {exc}")
    finally:
        client.disconnect()
        client.loop_stop()
    if not info.is_published():
        return _err("broker did not acknowledge the command within 10 s")
    print(f"sent {verb} to dcim/{args.site}/commands/{verb}")
    return 0


def _silence(args: argparse.Namespace) -> int:
    from alerts.selectors import parse_selector
    from alerts.silences import SilenceError, Silences, parse_duration

    from alerts.state_store import StateFileError

    try:
        match = parse_selector(args.select)
        dur = parse_duration(args.duration)
        start_ns = _parse_time(args.start) if args.start else None
    except ValueError as exc:
        return _err(str(exc))
    if args.mqtt:
        body = {"select": match, "duration_s": dur, "author": args.author, "reason": args.reason}
        if start_ns is not None:
            body["starts_ns"] = start_ns
        return _send_command(args, "silence", body)
    try:
        s = Silences(args.state_dir).add(match, duration_s=dur, author=args.author, reason=args.reason,
                                         now_ns=time.time_ns(), starts_ns=start_ns)
    except (SilenceError, StateFileError) as exc:
        return _err(str(exc))
    print(f"silence {s.id}: {args.select} for {args.duration} by {args.author}")
    return 0


def _parse_time(text: str) -> int:
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--start {text!r}: not an ISO-8601 time (e.g. 2026-11-25T22:00Z)") from None
    if t.tzinfo is None:
        raise ValueError(f"--start {text!r}: give a time zone (Z or +01:00)")
    return int(t.timestamp() * 1e9)


def _ack(args: argparse.Namespace) -> int:
    from alerts.silences import SilenceError, Silences

    if args.mqtt:
        return _send_command(args, "ack", {"fingerprints": args.fingerprints, "author": args.author,
                                           "comment": args.comment})
    from alerts.state_store import StateFileError

    try:
        store = Silences(args.state_dir)
        for fp in args.fingerprints:
            store.ack(fp, author=args.author, comment=args.comment, now_ns=time.time_ns())
    except (SilenceError, StateFileError) as exc:
        return _err(str(exc))
    print(f"acked {len(args.fingerprints)} alert(s) as {args.author}")
    return 0


def format_event(ev: dict) -> str:
    """One line for a person: time, severity, state, rule, device, summary, flags."""
    flags = []
    if ev.get(SUPPRESSED_BY):
        flags.append(f"suppressed by {ev[SUPPRESSED_BY]}")
    if ev.get(SILENCED):
        flags.append("silenced")
    if ev.get(ACKED):
        flags.append("acked")
    tail = f"  [{', '.join(flags)}]" if flags else ""
    return (f"{ev.get(TIME, '')}  {ev.get(SEVERITY, ''):8} {ev.get(STATE, ''):8} {ev.get(RULE, '')} "
            f"{ev.get(DEVICE, '')}: {summary_of(ev)}{tail}")


def _tail(args: argparse.Namespace) -> int:
    import queue

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from rich.console import Console
    from rich.text import Text

    from alerts.mqtt_publisher import MqttSettings

    try:
        st = MqttSettings.from_env(args.mqtt, args.site)
        pw = st.resolve_password()
    except Exception as exc:
        return _err(str(exc))
    console = Console(highlight=False)
    q: queue.Queue = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dcim-tail-{int(time.time() * 1000)}")
    if st.username:
        client.username_pw_set(st.username, pw.reveal() if pw else None)
    if st.ca_file:
        client.tls_set(ca_certs=st.ca_file, certfile=st.cert_file, keyfile=st.key_file)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe([(f"dcim/{args.site}/alerts/#", 1),
                                                            (f"dcim/{args.site}/engine/status", 1)])
    client.on_message = lambda c, u, m: q.put((m.topic, bytes(m.payload)))
    try:
        client.connect(st.host, st.port, keepalive=30)
    except OSError as exc:
        return _err(f"cannot connect to {st.host}:{st.port}: {exc.strerror or exc}")
    client.loop_start()
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                topic, payload = q.get(timeout=0.2)
            except queue.Empty:
                continue
            if topic.endswith("/engine/status"):
                console.print(Text(f"engine {payload.decode(errors='replace')}", style="dim"))
                continue
            try:
                ev = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if args.json:
                print(json.dumps(ev), flush=True)
            else:
                style = SEVERITY_STYLE.get(ev.get(SEVERITY, ""), "")
                if ev.get(STATE) == RESOLVED:
                    style = "green"
                console.print(Text(format_event(ev), style=style))
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0

