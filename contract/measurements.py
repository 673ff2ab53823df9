"""Measurement names read by parts other than the one that writes them.

Most measurements are named by the device profiles that produce them (``pdu``,
``ups``, ``cdu`` … in the profile YAML).  The ones here are also spelled in code
by a consumer: the PUE/energy report and the energy dashboards read ``meter``;
storage keeps ``trap`` (like ``alert``, :data:`contract.alert_event.ALERT_MEASUREMENT`)
out of its rollups because events are read raw.
"""
from __future__ import annotations

__all__ = ["METER", "TRAP"]

#: energy meters (boundary, IT, renewable, water): counters ``energy_kwh`` and gauges ``power_w``
METER = "meter"
#: one point per received SNMP trap (collectors/snmp/traps)
TRAP = "trap"
