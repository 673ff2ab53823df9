"""Subprocess lifecycle for local servers (demo, tests, benchmarks): start, wait until ready, stop by pid."""
from __future__ import annotations

import os
import shutil
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["ServerStartError", "ManagedProcess", "ManagedServer", "free_port", "server_port", "wait_for_port", "require_binary"]


class ServerStartError(RuntimeError):
    """A test server did not come up; the message carries its output."""


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the OS says is free now on ``host`` (TCP by default, UDP with SOCK_DGRAM)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_taken: set[int] = set()


def server_port(kind: int = socket.SOCK_STREAM) -> int:
    """A free loopback port *below* the ephemeral range, never handed out twice in this process.

    The OS's "any free port" comes from the ephemeral range, where the next outgoing
    connection of any client may grab it between our check and the twin's bind; the
    twin binds many ports long after choosing them, so it takes them from below.
    """
    high = _ephemeral_low() - 1
    for _ in range(2000):
        port = random.randint(20000, high)
        if port in _taken:
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(f"process exited with status {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerStartError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}") if os.path.exists(p)), None
    )
    if not path:
        raise ServerStartError(f"{name} not found: install the Debian package {package} (scripts/setup.sh does)")
    return path


class ManagedProcess:
    """A server subprocess we started and therefore may stop.

    Output goes to ``log_path`` so a failed start can show it.  ``stop`` signals
    only this pid (and its process group, which we created), never anything else.
    """

    def __init__(self, argv: Sequence[str], log_path: Path, *, env: dict | None = None, cwd: str | None = None) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self, ready: Callable[["ManagedProcess"], None]) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True,
            )
        finally:
            log.close()
        try:
            ready(self)
        except Exception as exc:
            self.stop()
            raise ServerStartError(f"{self.argv[0]} failed to start: {exc}\n--- output ---\n{self.output()[-4000:]}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)  # type: ignore[union-attr]

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            self.proc.wait(5)  # type: ignore[union-attr]


class ManagedServer:
    """What every local server wrapper shares: its :class:`ManagedProcess` and the verbs on it.

    Subclasses set ``self.process`` in ``start()``; ``restart`` stops (SIGTERM, so a
    server can save its state) and starts again on the same ports and directories.
    """

    process: ManagedProcess | None = None

    def start(self) -> "ManagedServer":
        raise NotImplementedError

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def restart(self) -> "ManagedServer":
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.process.output() if self.process else ""
