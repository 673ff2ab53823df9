"""Trap receiving: traps/s per core, dcim's receiver (with mapping to samples) vs Debian's snmptrapd.

Both receivers get the same stream, sent by this script from ``--senders``
loopback addresses (each an inventory device for dcim): real datagrams
captured from net-snmp's ``snmptrap`` — a v2c UPS-MIB upsTrapOnBattery with
one varbind and, with ``--v3``, the same trap as v3 authPriv (SHA-256/AES-128)
— replayed at a fixed rate.  Each receiver is its own process; its CPU (utime
+ stime from /proc) over the stream is divided into the traps it accepted.

- dcim: ``TrapListener`` as ``dcim run`` builds it (limiter, receiver, USM,
  catalog -> the ``trap`` and ``ups`` samples, consumer call), limits raised so
  none is refused.
- snmptrapd: ``-f -Lf FILE -C -c CONF -n``, one ``T`` line per trap (format1/2),
  ``authCommunity log`` and ``authUser log`` for the same credentials.

Runs alternate A B A B; medians.  A fixed CPU calibration loop brackets each
pair; pairs where it moved more than 25% are dropped (the shared machine's
speed drifts).  Then the latency part: the shipped on-battery rule, fed by the
listener in-process, its firing event read back from a real Mosquitto:
datagram sent -> MQTT message received, median and p99.

    python bench/traps.py            # about a minute
    python bench/traps.py --quick
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.snmp.traps.listener import TrapListener, TrapSettings  # noqa: E402
from localservers.process import free_port  # noqa: E402

COMMUNITY = "bench"
ENGINE = "8000000001020304"
V3 = ["-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "authpass-256", "-x", "AES", "-X", "privpass-aes",
      "-e", f"0x{ENGINE}"]
TRAP = ["", "1.3.6.1.2.1.33.2.1", "1.3.6.1.2.1.33.1.2.3.0", "i", "12"]


def calibrate() -> float:
    """CPU seconds for a fixed pure-Python loop: a yardstick for machine drift."""
    t0 = time.process_time()
    x = 0
    for i in range(1_000_000):
        x += i * i % 7
    return time.process_time() - t0


def netsnmp_env(d: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNMP")}
    env.update({"SNMP_PERSISTENT_DIR": str(d), "SNMPCONFPATH": str(d), "MIBS": "", "MIBDIRS": str(d)})
    return env


def capture(env: dict[str, str], options: list[str], trap: list[str] = TRAP) -> bytes:
    """One datagram exactly as net-snmp's snmptrap sends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        subprocess.run(["snmptrap", *options, f"127.0.0.1:{sock.getsockname()[1]}", *trap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=30)
        return sock.recvfrom(65535)[0]
    finally:
        sock.close()


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def sender_targets(n: int) -> list:
    from collectors.base import Target
    from inventory.secrets import SecretValue

    out = []
    for i in range(n):
        out.append(Target(device_id=f"ups-{i:03d}", protocol="snmp", host=f"127.0.2.{i + 1}", port=161, kind="ups",
                          tags={"site": "bench", "device": f"ups-{i:03d}"},
                          options={"version": "3", "user": "ops", "auth_protocol": "SHA-256", "priv_protocol": "AES"},
                          secrets={"community": SecretValue(COMMUNITY), "auth_key": SecretValue("authpass-256"),
                                   "priv_key": SecretValue("privpass-aes")}))
    return out


# -- the dcim receiver, as a child process -------------------------------------------------------
def serve(port: int, senders: int) -> None:
    """Child: a TrapListener; prints its accepted count and samples on each line of stdin."""
    count = [0, 0]

    def consume(samples) -> None:
        count[0] += 1
        count[1] += len(samples)

    async def main() -> None:
        lis = TrapListener(sender_targets(senders), consume,
                           settings=TrapSettings(host="127.0.0.1", port=port, rate_per_s=1e9, burst=10 ** 9))
        await lis.start()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            print(json.dumps({"accepted": count[0], "samples": count[1],
                              "refused": sum(lis.receiver.stats.refused.values())}), flush=True)
        lis.close()

    asyncio.run(main())


class DcimReceiver:
    name = "dcim"

    def __init__(self, senders: int) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port), "--senders", str(senders)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout.readline().strip() == "ready"

    def accepted(self) -> int:
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["accepted"]

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Snmptrapd:
    name = "snmptrapd"

    def __init__(self, work: Path) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.dir = Path(tempfile.mkdtemp(dir=work))
        conf = self.dir / "snmptrapd.conf"
        conf.write_text(f"authCommunity log {COMMUNITY}\ncreateUser -e 0x{ENGINE} ops SHA-256 authpass-256 AES "
                        "privpass-aes\nauthUser log ops priv\nformat1 T\\n\nformat2 T\\n\n")
        self.log = self.dir / "log"
        self.proc = subprocess.Popen(["snmptrapd", "-f", "-Lf", str(self.log), "-C", "-c", str(conf), "-n",
                                      f"127.0.0.1:{self.port}"], env=netsnmp_env(self.dir),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (self.log.exists() and "NET-SNMP" in self.log.read_text()):
            assert self.proc.poll() is None and time.monotonic() < deadline, "snmptrapd did not start"
            time.sleep(0.05)

    def accepted(self) -> int:
        return sum(1 for line in self.log.read_text().splitlines() if line == "T")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_stream(rx, datagrams: list[bytes], senders: list[socket.socket], n: int, rate: float) -> tuple[int, float]:
    """Send ``n`` datagrams at ``rate``/s round-robin over the senders; (accepted, receiver CPU s)."""
    before = cpu_s(rx.proc.pid)
    start_count = rx.accepted()
    dest = ("127.0.0.1", rx.port)
    t0 = time.monotonic()
    batch = 50
    for i in range(0, n, batch):
        for j in range(i, min(n, i + batch)):
            senders[j % len(senders)].sendto(datagrams[j % len(datagrams)], dest)
        ahead = t0 + (i + batch) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    deadline = time.monotonic() + 20
    got, last_change, prev = 0, time.monotonic(), -1
    while time.monotonic() < deadline:  # until everything arrived, or nothing more for 1 s
        got = rx.accepted() - start_count
        if got >= n:
            break
        if got != prev:
            prev, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > 1.0:
            break
        time.sleep(0.05)
    return got, cpu_s(rx.proc.pid) - before


# -- latency: trap -> firing event on MQTT ---------------------------------------------------------
def latency(n: int, work: Path, env: dict[str, str]) -> list[float]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from alerts.mqtt_publisher import MqttSettings
    from alerts.runtime import AlertRuntime
    from localservers.mosquitto import MosquittoServer
    from localservers.site import load_relocated

    site = load_relocated()
    ups = site.device("ups-1a")
    ups.host = "127.0.0.5"
    from collectors.targets import build_targets

    os.environ.setdefault("DCIM_SNMP_COMMUNITY", COMMUNITY)
    targets, _ = build_targets(site, [ups])
    v2c = ["-v2c", "-c", os.environ["DCIM_SNMP_COMMUNITY"]]
    on = capture(env, v2c)
    off = capture(env, v2c, ["", "1.3.6.1.4.1.318.0.9"])  # APC powerRestored: state normal, resolves it
    broker = MosquittoServer(work / "mosquitto").start()
    got: list[tuple[float, dict]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_connect = lambda c, *a: c.subscribe("dcim/+/alerts/#", qos=1)
    sub.on_message = lambda c, u, m: got.append((time.perf_counter(), json.loads(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    times: list[float] = []

    async def main() -> None:
        runtime = AlertRuntime(site, ROOT / "alerts" / "rules" / "site.yaml", state_dir=work / "state",
                               mqtt=MqttSettings(port=broker.port, site=site.site.id))
        lis = TrapListener(targets, runtime.consume, settings=TrapSettings(host="127.0.0.1", port=0))
        await lis.start()
        await runtime.start()
        await asyncio.sleep(1.0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.5", 0))
        for i in range(n):
            for datagram, state in ((on, "firing"), (off, "resolved")):
                k = len(got)
                t0 = time.perf_counter()
                s.sendto(datagram, ("127.0.0.1", lis.port))
                end = t0 + 5
                while time.perf_counter() < end and not any(
                        e["state"] == state and e["rule"] == "ups-on-battery" for _, e in got[k:]):
                    await asyncio.sleep(0.0005)
                hit = [t for t, e in got[k:] if e["state"] == state and e["rule"] == "ups-on-battery"]
                if hit and state == "firing":
                    times.append(hit[0] - t0)
                await asyncio.sleep(0.25)  # past the listener's per-device poll gap and the limiter's refill
        s.close()
        lis.close()
        await runtime.stop()

    try:
        asyncio.run(main())
    finally:
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--traps", type=int, default=20_000, help="datagrams per run")
    ap.add_argument("--rate", type=float, default=8_000, help="datagrams per second sent")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--v3", action="store_true", help="half the stream v3 authPriv (SHA-256/AES-128)")
    ap.add_argument("--latency", type=int, default=20, help="on-battery traps for the MQTT latency part (0: skip)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.senders)
        return
    if args.quick:
        args.traps, args.pairs, args.latency = 6_000, 2, 8
    if shutil.which("snmptrapd") is None:
        sys.exit("bench/traps.py: snmptrapd not found (Debian package snmptrapd; scripts/setup.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="bench-traps-"))
    env = netsnmp_env(work)
    datagrams = [capture(env, ["-v2c", "-c", COMMUNITY])]
    if args.v3:
        datagrams.append(capture(env, V3))
    senders = []
    for i in range(args.senders):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.2.{i + 1}", 0))
        senders.append(s)
    dcim, trapd = DcimReceiver(args.senders), Snmptrapd(work)
    results: dict[str, list[float]] = {"dcim": [], "snmptrapd": []}
    accepted: dict[str, list[int]] = {"dcim": [], "snmptrapd": []}
    dropped_pairs = 0
    try:
        run_stream(dcim, datagrams, senders, 1000, args.rate)  # warm-up (imports, key localization)
        run_stream(trapd, datagrams, senders, 1000, args.rate)
        for _ in range(args.pairs):
            c0 = calibrate()
            pair = {}
            for rx in (dcim, trapd):
                got, cpu = run_stream(rx, datagrams, senders, args.traps, args.rate)
                pair[rx.name] = (got, cpu)
            c1 = calibrate()
            if abs(c1 - c0) / c0 > 0.25:
                dropped_pairs += 1
                continue
            for name, (got, cpu) in pair.items():
                accepted[name].append(got)
                results[name].append(got / cpu if cpu > 0 else float("inf"))
    finally:
        dcim.stop()
        trapd.stop()
        for s in senders:
            s.close()
    if not results["dcim"]:
        sys.exit("every pair was dropped: the machine's speed drifted too much; run again")
    d, t = statistics.median(results["dcim"]), statistics.median(results["snmptrapd"])
    kind = "v2c + v3 authPriv" if args.v3 else "v2c"
    print(f"stream: {args.traps} {kind} traps per run at {args.rate:.0f}/s from {args.senders} senders; "
          f"{len(results['dcim'])} pairs kept, {dropped_pairs} dropped (calibration moved)")
    print(f"accepted per run: dcim {accepted['dcim']}, snmptrapd {accepted['snmptrapd']}")
    print(f"dcim receiver (decode, auth, map to samples): {d:,.0f} traps/s per core ({1e6 / d:.1f} us CPU/trap)")
    print(f"snmptrapd (decode, auth, log one line):       {t:,.0f} traps/s per core ({1e6 / t:.1f} us CPU/trap)")
    print(f"ratio dcim / snmptrapd: {d / t:.2f}x (medians; shared 2-core machine: the ratio matters, not the absolutes)")
    if args.latency:
        times = sorted(latency(args.latency, work, env))
        if times:
            p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
            print(f"on-battery trap -> firing event on MQTT (shipped rule, real Mosquitto): median "
                  f"{statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms "
                  f"over {len(times)} of {args.latency} traps")
        else:
            print("latency: no firing event arrived")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
