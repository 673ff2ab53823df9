"""SNMP collector: PDUs, UPSes and cooling units, vendor knowledge as YAML profiles.

Layers (each file small and named for its concern):

- ``engine.py``      transport: get / bulk walk -> ``(oid, value)`` pairs; two engines
- ``profiles.py``    load + validate + compile ``profiles/*.yaml`` once
- ``decode.py``      pure: fetched varbinds + compiled profile + tags -> Samples
- ``counters.py``    pure state machine for cumulative energy counters (wrap/reset)
- ``collector.py``   ``SnmpCollector``: detection, fetching, error mapping
- ``url.py``         ``snmp://`` URL -> Target for ``dcim probe``
"""
