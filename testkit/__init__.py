"""Real servers for tests, benchmarks and the demo, started on free loopback ports.

Not part of collection: only ``dcim demo`` (its private InfluxDB and Mosquitto) and
the tests and benchmarks import this package.  Every starter
raises :class:`ServerStartError` with the server's own output when it cannot
start, so a fixture fails loudly instead of skipping.
"""
from testkit.process import ManagedProcess, ServerStartError, free_port, wait_for_port

__all__ = ["ManagedProcess", "ServerStartError", "free_port", "wait_for_port"]
