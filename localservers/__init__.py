"""Local servers started on free loopback ports in private directories.

What ``dcim demo`` starts (its InfluxDB, Mosquitto and the digital twin), and
what the tests and benchmarks start for the same servers: ``influxd``
(:mod:`localservers.influx`), Mosquitto (:mod:`localservers.mosquitto`), the
twin on its own event-loop thread (:mod:`localservers.twin`), a site moved
onto free loopback ports (:mod:`localservers.site`, ``dcim demo --free-ports``)
and the process helpers they share (:mod:`localservers.process`).  Every starter raises
:class:`ServerStartError` with the server's own output when it cannot start,
so a caller fails loudly instead of skipping.  Test-only servers and fakes
stay in ``testkit``.
"""
from localservers.process import ManagedProcess, ServerStartError, free_port, wait_for_port

__all__ = ["ManagedProcess", "ServerStartError", "free_port", "wait_for_port"]
