"""modbus:// URLs -> Target (pure)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from collectors.modbus.url import target_from_url


def parse(url: str, profile: str = "eastron_sdm630"):
    return target_from_url(urlsplit(url), profile)


def test_tcp_with_port_and_unit():
    t = parse("modbus://10.1.2.3:1502/17")
    assert (t.protocol, t.host, t.port, t.unit, t.profile) == ("modbus", "10.1.2.3", 1502, 17, "eastron_sdm630")


def test_tcp_defaults_to_port_502_unit_1():
    t = parse("modbus://meter-7")
    assert (t.host, t.port, t.unit) == ("meter-7", 502, 1)


def test_ipv6_host():
    t = parse("modbus://[::1]:5020/3")
    assert (t.host, t.port, t.unit) == ("::1", 5020, 3)
    assert t.device_id == "[::1]:5020/3"


def test_rtu_over_tcp():
    t = parse("modbus+rtutcp://127.0.0.1:4001/9?max_gap=0&timeout=0.5")
    assert (t.protocol, t.port, t.unit, t.timeout_s) == ("modbus-rtutcp", 4001, 9, 0.5)
    assert t.options == {"max_gap": "0"}


def test_rtu_serial():
    t = parse("modbus+rtu:///dev/ttyUSB0?baud=19200&parity=E&unit=7")
    assert (t.protocol, t.host, t.unit) == ("modbus-rtu", "/dev/ttyUSB0", 7)
    assert t.options == {"baud": "19200", "parity": "E"}


@pytest.mark.parametrize("url,msg", [
    ("modbus://h/300", "out of range"),
    ("modbus://h/x", "not a number"),
    ("modbus+rtutcp://h/3", "give HOST:PORT"),
    ("modbus+rtu://?unit=1", "serial device"),
    ("http://h/1", "scheme"),
])
def test_bad_urls_say_what_is_wrong(url, msg):
    with pytest.raises(ValueError, match=msg):
        parse(url)
