"""SNMP traps and informs: a sans-I/O receiver, USM, trap definitions as data, a thin UDP listener.

``TRAP_FIELD`` is the field a trap-born domain sample carries (the trap's
name).  The rule engine reads it: such a sample is the device's own assertion
of an event, so a rule's ``for_s`` (which debounces polled readings) does not
delay it, and the immediate poll the trap triggers confirms or clears it.
"""

TRAP_FIELD = "trap"

__all__ = ["TRAP_FIELD"]
