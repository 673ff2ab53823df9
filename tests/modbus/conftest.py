"""Fixtures for the Modbus collector tests: real pymodbus servers on loopback."""
from __future__ import annotations

import pytest

from modbus_cases import case_names, image_from_case, load_case
from testkit.modbus import ModbusTestServer


@pytest.fixture(scope="session")
def case_server():
    """One server holding every test case's device at its own unit id (like a gateway)."""
    devices = {}
    units = {}
    for name in case_names():
        device, _ = load_case(name)
        unit = int(device["unit"])
        assert unit not in devices, f"testcases {name} and {units.get(unit)} share unit {unit}"
        devices[unit] = image_from_case(device)
        units[unit] = name
    with ModbusTestServer(devices) as srv:
        yield srv
