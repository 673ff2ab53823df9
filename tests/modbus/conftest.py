"""Fixtures for the Modbus collector tests: real pymodbus servers on loopback."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testkit.modbus import DeviceImage, ModbusTestServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TESTCASES = HERE / "testcases"


def testdata_dir() -> Path:
    """``<repo root>/../shared/testdata``; fails loudly when the checkout lacks it."""
    path = REPO.parent / "shared" / "testdata"
    if not path.is_dir():
        raise RuntimeError(f"test data not found at {path}: the repository's parent must hold shared/testdata")
    return path


def load_case(name: str) -> tuple[dict, list[dict]]:
    device = yaml.safe_load((TESTCASES / name / "device.yaml").read_text())
    expected = yaml.safe_load((TESTCASES / name / "expected.yaml").read_text())
    return device, expected


def image_from_case(device: dict, dense: bool = False) -> DeviceImage:
    img = DeviceImage(dense=dense)
    for r in device["registers"]:
        img.put(r["function"], r["address"], r["value"], r.get("type", "uint16"), r.get("order", "ABCD"))
    return img


def case_names() -> list[str]:
    return sorted(p.name for p in TESTCASES.iterdir() if (p / "device.yaml").is_file())


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
