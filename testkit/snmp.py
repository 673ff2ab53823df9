"""SNMP agents for tests and benchmarks: snmpsim (recordings) and net-snmp snmpd.

snmpsim serves real-device ``.snmprec`` recordings: the community string picks
the file.  It refuses to run as root unless it drops to ``nobody``, and after
dropping it can no longer import stdlib modules lazily, so the launcher below
imports them first (see shared/NOTES.md).  net-snmp ``snmpd`` is the load and
SNMPv3 target: it costs ~50x less CPU per varbind than snmpsim and does not
truncate GETBULK replies.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

from collectors.base import Target
from inventory.secrets import SecretValue
from localservers.process import ManagedProcess, ServerStartError, free_port, require_binary

__all__ = ["SnmpsimServer", "SnmpdServer", "wait_for_snmp", "V3User", "community_target"]

# Imported before snmpsim drops privileges, or it fails with "no dbm clone found".
_SNMPSIM_LAUNCHER = """
import sys, dbm, dbm.dumb, encodings, encodings.idna, encodings.ascii, encodings.latin_1, encodings.utf_8
import encodings.hex_codec, encodings.punycode, codecs, json, random, hashlib, hmac
from snmpsim.commands.responder import main
sys.argv[0] = 'snmpsim-command-responder'
sys.exit(main())
"""


def _get_request(community: str, oid: str = "1.3.6.1.2.1.1.2.0") -> bytes:
    """A minimal v2c GET, BER-encoded by the twin's hand-written codec: readiness checks need no SNMP library."""
    from collectors.snmp.ber import GET, INTEGER, OCTETS, OID, oid_body, parse_oid, tlv

    vb = tlv(0x30, tlv(OID, oid_body(parse_oid(oid))) + b"\x05\x00")
    pdu = tlv(GET, tlv(INTEGER, b"\x01") + tlv(INTEGER, b"\x00") + tlv(INTEGER, b"\x00") + tlv(0x30, vb))
    return tlv(0x30, tlv(INTEGER, b"\x01") + tlv(OCTETS, community.encode()) + pdu)


def wait_for_snmp(port: int, community: str, host: str = "127.0.0.1", timeout: float = 30.0,
                  proc: ManagedProcess | None = None) -> None:
    """Poll with a raw GET until the agent answers (UDP has no 'listening' state to probe)."""
    deadline = time.monotonic() + timeout
    req = _get_request(community)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise ServerStartError("agent exited before answering")
            try:
                s.sendto(req, (host, port))
                s.recv(65535)
                return
            except OSError:
                time.sleep(0.1)
    raise ServerStartError(f"no SNMP answer on {host}:{port} (community {community!r}) after {timeout:.0f}s")


def _make_nobody_readable(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o777)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


class SnmpsimServer:
    """snmpsim serving copies of recordings from a private temp dir.

    ``recordings``: paths (each served under its file name's stem as the community) or a
    mapping community -> path (a case's ``NAME.snmprec`` served under a community of its own).
    """

    def __init__(self, recordings: Iterable[Path] | Mapping[str, Path], workdir: Path | None = None,
                 python: str = sys.executable, hosts: int = 1) -> None:
        named = recordings.items() if isinstance(recordings, Mapping) else ((Path(r).stem, r) for r in recordings)
        self.served = [(community, Path(path)) for community, path in named]
        #: the agent answers on 127.0.0.1 … 127.0.0.<hosts>, same port: several inventory
        #: devices backed by one agent, each on its own endpoint as the inventory demands
        self.hosts = [f"127.0.0.{i}" for i in range(1, hosts + 1)]
        self.python = python
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="snmpsim-"))
        self.port = 0
        self.process: ManagedProcess | None = None

    def start(self, timeout: float = 60.0) -> "SnmpsimServer":
        data = self.workdir / "data"
        cache = self.workdir / "cache"
        data.mkdir(parents=True, exist_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        for community, rec in self.served:
            if not rec.is_file():
                raise ServerStartError(f"recording not found: {rec}")
            shutil.copy(rec, data / f"{community}.snmprec")
        _make_nobody_readable(self.workdir)
        os.chmod(self.workdir, 0o777)
        self.port = free_port(socket.SOCK_DGRAM)
        argv = [self.python, "-c", _SNMPSIM_LAUNCHER,
                f"--data-dir={data}", f"--cache-dir={cache}",
                *(f"--agent-udpv4-endpoint={h}:{self.port}" for h in self.hosts), "--log-level=error"]
        if os.geteuid() == 0:
            argv += ["--process-user=nobody", "--process-group=nogroup"]
        first = self.served[0][0] if self.served else "public"
        self.process = ManagedProcess(argv, self.workdir / "snmpsim.log", cwd=str(self.workdir)).start(
            lambda p: wait_for_snmp(self.port, first, timeout=timeout, proc=p))
        atexit.register(self.stop)   # a crashed script must not leave the agent behind
        return self

    def __enter__(self) -> "SnmpsimServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process:
            self.process.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class V3User:
    """An SNMPv3 user for snmpd's config (``createUser``)."""

    def __init__(self, name: str, auth_protocol: str, auth_key: str, priv_protocol: str | None, priv_key: str | None) -> None:
        self.name, self.auth_protocol, self.auth_key = name, auth_protocol, auth_key
        self.priv_protocol, self.priv_key = priv_protocol, priv_key

    def create_line(self) -> str:
        line = f"createUser {self.name} {self.auth_protocol} {self.auth_key}"
        if self.priv_protocol:
            line += f" {self.priv_protocol} {self.priv_key}"
        return line


class SnmpdServer:
    """net-snmp snmpd with a fixture-written config on a free loopback UDP port.

    ``extra_config`` lines are appended verbatim (e.g. ``override`` directives
    that give the agent a static PDU-shaped MIB for the benchmark).
    """

    def __init__(self, community: str = "public", users: Iterable[V3User] = (), extra_config: Iterable[str] = (),
                 workdir: Path | None = None) -> None:
        self.community = community
        self.users = list(users)
        self.extra_config = list(extra_config)
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="snmpd-"))
        self.port = 0
        self.process: ManagedProcess | None = None

    def config_text(self) -> str:
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"rocommunity {self.community} 127.0.0.1",
            "sysLocation test-lab",
            "sysContact test@example.invalid",
            "sysServices 72",
            "master no",
            "dontLogTCPWrappersConnects yes",
        ]
        for u in self.users:
            lines.append(u.create_line())
            lines.append(f"rouser {u.name} {'priv' if u.priv_protocol else 'auth'}")
        lines += self.extra_config
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> "SnmpdServer":
        binary = require_binary("snmpd", "snmpd")
        self.workdir.mkdir(parents=True, exist_ok=True)
        persist = self.workdir / "persist"
        persist.mkdir(exist_ok=True)
        self.port = free_port(socket.SOCK_DGRAM)
        conf = self.workdir / "snmpd.conf"
        conf.write_text(self.config_text())
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(persist), MIBS="", MIBDIRS="/nonexistent")
        argv = [binary, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(self.workdir / "snmpd.pid"),
                "--persistentDir=" + str(persist), "-I", "-smux,mteTrigger,mteTriggerConf,ipCidrRouteTable"]
        self.process = ManagedProcess(argv, self.workdir / "snmpd.log", env=env).start(
            lambda p: wait_for_snmp(self.port, self.community, timeout=timeout, proc=p))
        atexit.register(self.stop)   # a crashed script must not leave the agent behind
        return self

    def __enter__(self) -> "SnmpdServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process:
            self.process.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def community_target(community: str, port: int, engine: str = "gufo", timeout_s: float = 3.0):
    """A v2c target on 127.0.0.1:``port`` whose device id and community are ``community`` (snmpsim's file name)."""
    return Target(device_id=community, protocol="snmp", host="127.0.0.1", port=port, timeout_s=timeout_s, retries=1,
                  tags={"device": community}, options={"engine": engine},
                  secrets={"community": SecretValue(community)})
