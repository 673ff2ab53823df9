"""snmpsim (PyPI) serving ``.snmprec`` recordings of real devices on loopback.

The SNMP community selects the recording: community ``NAME`` serves
``NAME.snmprec``.  snmpsim refuses to run as root, so it drops to
``nobody``; its data and cache directories are private temp dirs owned by
nobody, and the interpreter must be readable by nobody (the project's venv is
built from Debian's python3 for that reason).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from testkit.process import ManagedProcess, ServerStartError, free_port, require_binary

__all__ = ["SnmpsimServer"]


class SnmpsimServer:
    def __init__(self, workdir: Path, recordings: list[Path]) -> None:
        if not recordings:
            raise ValueError("snmpsim needs at least one recording")
        self.workdir = Path(workdir)
        self.recordings = [Path(r) for r in recordings]
        self.port = free_port(kind=2)  # SOCK_DGRAM
        self.host = "127.0.0.1"
        self.process: ManagedProcess | None = None

    def communities(self) -> list[str]:
        return [r.name[: -len(".snmprec")] for r in self.recordings]

    def start(self) -> "SnmpsimServer":
        data, cache = self.workdir / "data", self.workdir / "cache"
        for d in (data, cache):
            d.mkdir(parents=True, exist_ok=True)
        for rec in self.recordings:
            shutil.copyfile(rec, data / rec.name)  # a copy: the shared recordings stay untouched
        responder = Path(sys.executable).with_name("snmpsim-command-responder")
        if not responder.exists():
            raise ServerStartError(f"{responder} not found: install the test extras (pip install -e '.[test]')")
        argv = [str(responder), f"--data-dir={data}", f"--cache-dir={cache}",
                f"--agent-udpv4-endpoint={self.host}:{self.port}"]
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "nobody:nogroup", str(self.workdir)], check=True)
            os.chmod(self.workdir, 0o755)
            argv += ["--process-user=nobody", "--process-group=nogroup"]
        self.process = ManagedProcess(argv, self.workdir / "snmpsim.log")
        self.process.start(self._ready)
        return self

    def _ready(self, p: ManagedProcess) -> None:
        snmpget = require_binary("snmpget", "snmp")
        community = self.communities()[0]
        import time

        deadline = time.monotonic() + 60  # the first start builds an index of each recording
        while time.monotonic() < deadline:
            if not p.alive():
                raise ServerStartError("snmpsim exited")
            r = subprocess.run([snmpget, "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On",
                                f"{self.host}:{self.port}", "1.3.6.1.2.1.1.2.0"], capture_output=True, text=True)
            if r.returncode == 0 and "1.3.6.1.2.1.1.2.0" in r.stdout:
                return
            time.sleep(0.3)
        raise ServerStartError(f"snmpsim did not answer on udp {self.host}:{self.port}")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
