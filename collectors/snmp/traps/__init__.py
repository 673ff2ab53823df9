"""SNMP traps and informs: a sans-I/O receiver, USM, trap definitions as data, a thin UDP listener."""
