"""Test-only servers and helpers: snmpsim/snmpd, Modbus servers, HTTP/Redfish/Alertmanager
fakes and launchers, TLS material, tmpfs, the shared recordings.

The servers the demo also starts (influxd, Mosquitto, the twin, site port
relocation, the process helpers) live in :mod:`localservers`; nothing outside ``tests/`` and
``bench/`` imports this package.
"""
