"""Real servers for tests and benchmarks, started on free loopback ports.

Test code only: nothing in the product imports this package.  Every starter
raises :class:`ServerStartError` with the server's own output when it cannot
start, so a fixture fails loudly instead of skipping.
"""
from testkit.process import ManagedProcess, ServerStartError, free_port, wait_for_port

__all__ = ["ManagedProcess", "ServerStartError", "free_port", "wait_for_port"]
