"""Helpers for the Modbus tests: test-case folders and the shared test data location.

A uniquely named module (not conftest) so that test files can import it without
colliding with other areas' conftest modules."""
from __future__ import annotations

from pathlib import Path

import yaml

from testkit.modbus import DeviceImage

HERE = Path(__file__).resolve().parent
TESTCASES = HERE / "testcases"


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


