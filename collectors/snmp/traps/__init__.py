"""SNMP traps and informs: a sans-I/O receiver, USM, trap definitions as data, a thin UDP listener.

A trap-born domain sample carries :data:`contract.sample.TRAP_FIELD` (the trap's
name), which the rule engine reads to fire at once (see collectors/snmp/README.md).
"""
