"""GPU-node URLs -> Targets, and clear errors for bad ones."""
from __future__ import annotations

import pytest

from collectors.url import target_from_url


def test_dcgm_defaults_and_path():
    t = target_from_url("dcgm://10.0.0.5")
    assert (t.protocol, t.host, t.port, t.options["path"]) == ("dcgm", "10.0.0.5", 9400, "/metrics")
    t = target_from_url("dcgm://[::1]:9500/custom?timeout=0.5")
    assert (t.host, t.port, t.options["path"], t.timeout_s, t.device_id) == ("::1", 9500, "/custom", 0.5, "[::1]:9500")


def test_redfish_schemes_tls_and_user():
    t = target_from_url("redfish+https://admin@bmc1?tls_verify=0&ca_bundle=/etc/ca.pem")
    assert (t.protocol, t.port, t.options["tls_verify"], t.options["ca_bundle"], t.options["username"]) == \
        ("redfish-https", 443, False, "/etc/ca.pem", "admin")
    t = target_from_url("redfish://127.0.0.1:8000")
    assert (t.protocol, t.port, "tls_verify" in t.options) == ("redfish", 8000, False)


def test_nvml_local():
    t = target_from_url("nvml://local")
    assert (t.protocol, t.host) == ("nvml", "local")


@pytest.mark.parametrize("url, words", [
    ("redfish://admin:hunter2@bmc1", "password"),
    ("nvml://gpu-node-7", "local"),
    ("dcgm://", "no host"),
    ("dcgm://h:99999", "bad port"),
    ("redfish://bmc1/redfish/v1/Chassis", "BMC address only"),
    ("dcgm://h?timeout=soon", "timeout"),
])
def test_bad_urls(url, words):
    with pytest.raises(ValueError, match=words) as info:
        target_from_url(url)
    assert "hunter2" not in str(info.value)
