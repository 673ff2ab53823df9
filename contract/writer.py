"""The ``writer`` measurement: the InfluxDB writer's own record of what it kept and lost.

Losses are a writer-wide fact (one spool, one memory queue for every device of a
collection service), so they are not fields of each device's ``poll`` sample: the
collection service writes one ``writer`` sample every ``stats_interval_s``
(``sinks.influx_writer.InfluxWriter.status_sample``), and one more when it stops.
The NOC dashboard's "Writer: points dropped and spooled" panel reads it.  Tags:
``site`` and ``shard`` (the collector host's share of the site).

A ``writer`` sample goes through the same writer, so a sample written while the
spool's disk is full can itself be lost: the ``dropped_*`` fields count what was
dropped since the previous sample (sum them over a range), and
``dropped_total`` (cumulative since the service started) lets the first sample
stored after an outage state the whole loss even when the ones in between are
missing.
"""
from __future__ import annotations

__all__ = ["WRITER_MEASUREMENT", "SHARD", "DROPPED", "DROPPED_TOTAL", "SPOOLING", "SPOOL_BYTES", "SPOOL_POINTS",
           "MEMORY_POINTS", "SPOOL_ERROR", "DROP_DISK_FULL", "DROP_READ_ONLY", "DROP_POLICY", "DROP_OTHER",
           "DROP_KINDS", "dropped_field"]

WRITER_MEASUREMENT = "writer"
#: tag: ``<index>/<count>``, the collector host's shard of the site (also on ``trap_receiver``)
SHARD = "shard"

# -- why points were dropped ------------------------------------------------------------------
#: the spool's disk is full (ENOSPC) and the memory queue too
DROP_DISK_FULL = "disk_full"
#: the spool's disk is read-only (EROFS) and the memory queue full
DROP_READ_ONLY = "read_only"
#: the spool reached its size cap and its policy (drop_oldest / drop_newest) chose what goes
DROP_POLICY = "policy"
#: anything else: no spool configured, the spool's directory gone or unreadable, shutdown with an unusable disk
DROP_OTHER = "other"
DROP_KINDS = (DROP_DISK_FULL, DROP_READ_ONLY, DROP_POLICY, DROP_OTHER)

# -- fields -----------------------------------------------------------------------------------
#: int: points dropped since the previous ``writer`` sample, every reason
DROPPED = "dropped"
#: int: points dropped since the service started, every reason
DROPPED_TOTAL = "dropped_total"
#: bool: a spool is configured and its disk takes writes
SPOOLING = "spooling"
#: int: bytes of batches on disk waiting for InfluxDB
SPOOL_BYTES = "spool_bytes"
#: int: points in those batches
SPOOL_POINTS = "spool_points"
#: int: points queued in memory (unsent lines, batches, the batch in flight)
MEMORY_POINTS = "memory_points"
#: str: why the spool's disk refuses writes ("No space left on device"), "" when it takes them
SPOOL_ERROR = "spool_error"


def dropped_field(kind: str) -> str:
    """``dropped_<kind>``: points dropped for one of :data:`DROP_KINDS` since the previous sample."""
    if kind not in DROP_KINDS:
        raise ValueError(f"unknown drop kind {kind!r}; one of {', '.join(DROP_KINDS)}")
    return f"{DROPPED}_{kind}"
