"""Bad replies from real agents: missing objects, wrong types, truncated walks, garbage.

Each case is a small crafted snmpsim recording (written to a private temp dir,
served by a real snmpsim) or a real UDP socket answering garbage.  The poll must
end in a PollError of the right kind, with the trustworthy samples as partial,
and never crash or stall.
"""
from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from collectors.base import PollError, Target
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.engine import ENGINES
from collectors.snmp.profiles import load_profiles
from inventory.secrets import SecretValue
from testkit.snmp import SnmpsimServer

S3 = "1.3.6.1.4.1.1718.3"
SYS = ["1.3.6.1.2.1.1.1.0|4|Sentry Switched CDU", f"1.3.6.1.2.1.1.2.0|6|{S3}"]


def infeed(col: int, rows: list[tuple[str, int]], typ: int = 2) -> list[str]:
    return [f"{S3}.2.2.1.{col}.{idx}|{typ}|{v}" for idx, v in rows]


ROWS = [("1.1", 111), ("1.2", 40), ("1.3", 59)]
CASES = {
    # all good: the reference
    "s3_good": SYS + [f"{S3}.1.6.0|2|279"] + infeed(7, ROWS) + infeed(11, [(i, 2300) for i, _ in ROWS])
    + infeed(12, [("1.1", 147), ("1.2", 53), ("1.3", 78)]),
    # systemTotalPower missing: noSuchObject on a required scalar
    "s3_nosuch": SYS + infeed(7, ROWS) + infeed(11, [(i, 2300) for i, _ in ROWS]),
    # infeedVoltage as an OCTET STRING of garbage text on one row
    "s3_wrongtype": SYS + [f"{S3}.1.6.0|2|279"] + infeed(7, ROWS)
    + [f"{S3}.2.2.1.11.1.1|2|2300", f"{S3}.2.2.1.11.1.2|4|n/a", f"{S3}.2.2.1.11.1.3|2|2300"],
    # the last column of the MIB stops after row 1.1: endOfMibView mid-table
    "s3_truncated": SYS + [f"{S3}.1.6.0|2|279"] + infeed(7, ROWS) + infeed(11, [(i, 2300) for i, _ in ROWS])
    + infeed(12, [("1.1", 147)]),
    # nothing of the profile at all
    "s3_empty": SYS,
    # s3_good with a fourth inlet row
    "s3_more": SYS + [f"{S3}.1.6.0|2|279"] + infeed(7, ROWS + [("1.4", 7)])
    + infeed(11, [(i, 2300) for i, _ in ROWS + [("1.4", 0)]])
    + infeed(12, [("1.1", 147), ("1.2", 53), ("1.3", 78), ("1.4", 16)]),
}


@pytest.fixture(scope="module")
def crafted():
    d = Path(tempfile.mkdtemp(prefix="snmp-crafted-"))
    os.chmod(d, 0o755)
    paths = []
    for name, lines in CASES.items():
        p = d / f"{name}.snmprec"
        p.write_text("\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n")
        paths.append(p)
    server = SnmpsimServer(paths).start()
    yield server
    server.stop()
    for p in paths:
        p.unlink()
    d.rmdir()


def poll(port: int, community: str, engine: str, profile: str = "auto", timeout: float = 2.0, profiles=None):
    async def go():
        c = SnmpCollector(profiles=profiles)
        try:
            t = Target(community, "snmp", "127.0.0.1", port, profile=profile, timeout_s=timeout, retries=0,
                       options={"engine": engine}, secrets={"community": SecretValue(community)})
            return await asyncio.wait_for(c.poll(t), 10)
        finally:
            await c.close()
    return asyncio.run(go())


@pytest.mark.parametrize("engine", list(ENGINES))
def test_good_reference(crafted, engine):
    samples = poll(crafted.port, "s3_good", engine)
    inlet2 = [s for s in samples if s.tags.get("inlet") == "2"][0]
    assert inlet2.fields == {"current_a": 0.4, "voltage_v": 230.0, "power_w": 53.0}


#: systemTotalPower is optional in the shipped sentry3 profile (older CDU firmware lacks it), so the
#: required-scalar case uses a profile of the same tables that requires it
REQUIRED_SCALAR = f"""
name: s3-required-scalar
detect: {{sysobjectid: [{S3}], priority: 99}}
groups:
  - measurement: pdu
    scalars: [{{oid: {S3}.1.6.0, field: power_w, invalid: [-1]}}]
  - measurement: pdu
    table: {S3}.2.2.1
    index: [pdu, inlet]
    columns:
      - {{col: 7, field: current_a, divide: 100, invalid: [-1]}}
      - {{col: 11, field: voltage_v, divide: 10, invalid: [-1]}}
      - {{col: 12, field: power_w, invalid: [-1]}}
"""


@pytest.mark.parametrize("engine", list(ENGINES))
def test_missing_scalar_gives_partial(crafted, engine, tmp_path):
    (tmp_path / "s3-required-scalar.yaml").write_text(REQUIRED_SCALAR)
    profiles = load_profiles(tmp_path)
    with pytest.raises(PollError) as ei:
        poll(crafted.port, "s3_nosuch", engine, profiles=profiles)
    e = ei.value
    assert e.kind == "device" and "1.3.6.1.4.1.1718.3.1.6.0" in e.message
    assert len([s for s in e.partial if "inlet" in s.tags]) == 3          # the infeed rows still come back
    assert not any("power_w" in s.fields and "inlet" not in s.tags for s in e.partial)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_wrong_type_is_a_decode_error(crafted, engine):
    with pytest.raises(PollError) as ei:
        poll(crafted.port, "s3_wrongtype", engine)
    e = ei.value
    assert e.kind == "decode" and "expected a number" in e.message
    by_inlet = {s.tags["inlet"]: s.fields for s in e.partial if "inlet" in s.tags}
    assert "voltage_v" not in by_inlet["2"] and by_inlet["2"]["current_a"] == 0.4
    assert by_inlet["3"]["voltage_v"] == 230.0


@pytest.mark.parametrize("engine", list(ENGINES))
def test_truncated_walk_is_flagged(crafted, engine):
    with pytest.raises(PollError) as ei:
        poll(crafted.port, "s3_truncated", engine)
    e = ei.value
    assert e.kind == "protocol" and "truncated" in e.message
    by_inlet = {s.tags["inlet"]: s.fields for s in e.partial if "inlet" in s.tags}
    assert by_inlet["1"]["power_w"] == 147.0 and "power_w" not in by_inlet["3"]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_agent_without_profile_data(crafted, engine):
    with pytest.raises(PollError) as ei:
        poll(crafted.port, "s3_empty", engine)
    assert ei.value.kind == "device"


def test_unknown_forced_profile_is_config_error(crafted):
    with pytest.raises(PollError) as ei:
        poll(crafted.port, "s3_good", "gufo", profile="no-such-profile")
    assert ei.value.kind == "config" and "sentry3" in ei.value.message


class GarbageAgent:
    """A real UDP socket that answers every datagram with bytes that are not SNMP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                _, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            self.sock.sendto(b"\x30\x82\xff\xffGARBAGE" + os.urandom(20), addr)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.mark.parametrize("engine", list(ENGINES))
def test_garbage_answers_end_in_a_flagged_error_not_a_crash(engine):
    agent = GarbageAgent()
    try:
        t0 = time.monotonic()
        with pytest.raises(PollError) as ei:
            poll(agent.port, "public", engine, profile="sentry3", timeout=1.0)
        elapsed = time.monotonic() - t0
    finally:
        agent.close()
    # gufo rejects the datagram as undecodable; pysnmp drops it, but the datagrams came: garbage, not silence
    assert ei.value.kind == "protocol", ei.value.message
    assert elapsed < 5


def test_garbage_datagrams_never_escape_as_a_native_panic():
    """gufo-snmp's Rust codec panics on some truncated datagrams; each must be a protocol/timeout PollError."""
    import asyncio
    import random
    import socket
    import threading

    from collectors.base import PollError, Target
    from collectors.snmp.collector import SnmpCollector

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    rng = random.Random(1234)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, addr = sock.recvfrom(4096)
            except OSError:
                continue
            # a plausible SEQUENCE header followed by random bytes: reaches the codec's BER reader
            sock.sendto(b"\x30" + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60))), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    kinds = []

    async def run() -> None:
        collector = SnmpCollector(engine="gufo")
        try:
            for _ in range(60):
                t = Target("liar", "snmp", "127.0.0.1", sock.getsockname()[1], profile="apc-rpdu2",
                           timeout_s=0.1, retries=0, options={"version": "2c"})
                try:
                    await collector.poll(t)
                except PollError as exc:
                    kinds.append(exc.kind)
        finally:
            await collector.close()

    try:
        asyncio.run(run())
    finally:
        stop.set()
        thread.join(2)
        sock.close()
    assert len(kinds) == 60 and set(kinds) <= {"protocol", "timeout"}, kinds
    assert "protocol" in kinds  # the garbage was read and refused, not merely ignored


@pytest.mark.parametrize("engine", list(ENGINES))
def test_known_rows_are_read_back_until_one_goes_and_new_ones_come_with_the_next_walk(crafted, engine):
    """After a walk the collector GETs the rows it found; the same device answering with other
    rows (a replaced agent: here another community under the same device id) is handled as a
    fresh walk would: a row gone is walked again at once, a row added appears at the next walk."""
    def target(community: str) -> Target:
        return Target("pdu-x", "snmp", "127.0.0.1", crafted.port, profile="auto", timeout_s=2.0, retries=0,
                      options={"engine": engine}, secrets={"community": SecretValue(community)})

    async def go():
        c = SnmpCollector(rewalk_s=3600.0)
        try:
            inlets = lambda samples: sorted(s.tags["inlet"] for s in samples if "inlet" in s.tags)  # noqa: E731
            assert inlets(await c.poll(target("s3_good"))) == ["1", "2", "3"] and c.known_polls == 0
            assert inlets(await c.poll(target("s3_more"))) == ["1", "2", "3"] and c.known_polls == 1  # rows known
            c.rewalk_s = 0.0  # time for the next walk
            assert inlets(await c.poll(target("s3_more"))) == ["1", "2", "3", "4"] and c.known_polls == 1
            c.rewalk_s = 3600.0
            assert inlets(await c.poll(target("s3_more"))) == ["1", "2", "3", "4"] and c.known_polls == 2
            with pytest.raises(PollError) as ei:  # rows 1.2 and 1.3 of a column gone: walked at once
                await c.poll(target("s3_truncated"))
            assert ei.value.kind == "protocol" and "truncated" in ei.value.message and c.known_polls == 2
            assert "pdu-x" not in c.known_rows  # a poll with problems walks next time
        finally:
            await c.close()
    asyncio.run(go())
