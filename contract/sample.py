"""The one shared type every producer yields and every consumer reads.

A Sample is one row of line protocol: measurement, tags, fields, time.  It is a
plain slotted class rather than a pydantic model because collectors create
hundreds of thousands per second and validation belongs at the edges (profiles,
inventory), not on the hot path.

Conventions (see docs/conventions.md):
- measurement by domain: pdu, ups, meter, chiller, cdu, crah, gpu, node, env, poll
- tags: the location tags the inventory adds (:data:`contract.tags.LOCATION_TAGS`)
  plus series tags (every other tag: inlet, phase, stage, outlet, ...)
- field names carry their unit: power_w, current_a, voltage_v, energy_kwh, ...
- time: integer nanoseconds since the epoch, UTC, taken when the reply arrived.
"""
from __future__ import annotations

import time
from typing import Union

FieldValue = Union[float, int, bool, str]

#: The field a trap-born sample carries (the trap's name): the device asserted the event
#: itself, so the rule engine fires at once instead of waiting a rule's ``for_s`` (which
#: debounces polled readings); the poll the trap triggers confirms or clears it.
TRAP_FIELD = "trap"

__all__ = ["Sample", "FieldValue", "now_ns", "TRAP_FIELD"]


def now_ns() -> int:
    """Wall-clock time in integer nanoseconds (UTC epoch)."""
    return time.time_ns()


class Sample:
    """One measurement at one instant: ``measurement,tags fields time``."""

    __slots__ = ("measurement", "tags", "fields", "time_ns")

    def __init__(
        self,
        measurement: str,
        tags: dict[str, str],
        fields: dict[str, FieldValue],
        time_ns: int,
    ) -> None:
        self.measurement = measurement
        self.tags = tags
        self.fields = fields
        self.time_ns = time_ns

    def to_json(self) -> dict:
        """The shape ``dcim probe`` prints: one JSON object per sample."""
        return {
            "measurement": self.measurement,
            "tags": dict(self.tags),
            "fields": dict(self.fields),
            "time": self.time_ns,
        }

    @classmethod
    def from_json(cls, obj: dict) -> "Sample":
        return cls(obj["measurement"], dict(obj.get("tags", {})), dict(obj["fields"]), int(obj["time"]))

    def key(self) -> tuple:
        """Series identity: measurement plus sorted tags."""
        return (self.measurement, tuple(sorted(self.tags.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return (
            self.measurement == other.measurement
            and self.tags == other.tags
            and self.fields == other.fields
            and self.time_ns == other.time_ns
        )

    def __repr__(self) -> str:
        return f"Sample({self.measurement!r}, {self.tags!r}, {self.fields!r}, {self.time_ns})"
