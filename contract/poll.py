"""The ``poll`` measurement: the collector's own record of each device poll.

Written by the scheduler (``collectors.scheduler.poll_sample``) for every poll
of every device; read by the NOC dashboard (slowest poll per protocol), the
demo's live view (failing devices), the ``device_down`` rule kind (``ok``) and
anyone hunting a slow device (``SELECT max(duration_ms) FROM poll WHERE
$timeFilter GROUP BY device``).  Tags: the device's location tags plus
``protocol``.
"""
from __future__ import annotations

__all__ = ["POLL_MEASUREMENT", "PROTOCOL", "OK", "DURATION_MS", "ATTEMPTS", "SAMPLES", "ERROR_KIND", "ERROR",
           "QUEUE_MS", "SKIPPED", "EXCESS", "IMPLAUSIBLE", "ERROR_KINDS"]

POLL_MEASUREMENT = "poll"
#: tag: the inventory protocol of the device (contract/protocols.py)
PROTOCOL = "protocol"

# -- fields ---------------------------------------------------------------------------------
#: bool: the poll gave the device's samples
OK = "ok"
#: float ms, the whole poll including retries
DURATION_MS = "duration_ms"
ATTEMPTS = "attempts"
#: samples the poll produced
SAMPLES = "samples"
#: one of :data:`ERROR_KINDS`, or "" when ok
ERROR_KIND = "error_kind"
#: message for a person, never a secret (at most 300 characters)
ERROR = "error"
#: ms spent waiting for a concurrency slot
QUEUE_MS = "queue_ms"
#: ticks missed because the previous poll of the device overran
SKIPPED = "skipped"
#: bytes or items beyond a reply bound, dropped
EXCESS = "excess"
#: values removed by the plausibility screen
IMPLAUSIBLE = "implausible"

#: the error kinds a poll can end with (``error_kind``), so dashboards can group failures
ERROR_KINDS = (
    "timeout",       # no reply within the deadline
    "unreachable",   # connection refused / no route / DNS
    "auth",          # bad community, v3 key, credentials, token
    "protocol",      # garbage, malformed or truncated reply
    "device",        # the device answered with an error (SNMP error-status, Modbus exception)
    "decode",        # reply well-formed but values could not be decoded per the profile
    "config",        # the target itself is wrong (unknown profile, missing secret)
    "internal",      # a bug in the collector; reported, never fatal to the others
)
