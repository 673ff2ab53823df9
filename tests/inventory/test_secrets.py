"""Secrets are resolved from env or files only, and never print."""
from __future__ import annotations

import os

import pytest

from collectors.targets import build_targets
from inventory import load_site_text
from inventory.secrets import SecretError, SecretRef, SecretValue

SITE = """
site: {id: s}
credentials:
  ro: {version: 2c, community: {env: TEST_DCIM_COMMUNITY}}
  bmc: {username: admin, password: {file: PWFILE}}
defaults: {credentials: {snmp: ro}}
devices:
  - {id: util, kind: utility}
  - {id: ups-1, kind: ups, fed_by: [util], protocol: snmp, host: 127.0.0.1, port: 1161}
  - {id: bmc-1, kind: server, fed_by: [util], protocol: redfish, host: 127.0.0.1, credentials: bmc}
"""


def test_secret_value_is_masked_everywhere():
    v = SecretValue("hunter2")
    assert "hunter2" not in repr(v) and "hunter2" not in str(v) and "hunter2" not in f"{v}"
    assert "hunter2" not in repr({"k": v})
    assert v.reveal() == "hunter2"


def test_targets_resolve_env_and_file_secrets(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o600)
    site = load_site_text(SITE.replace("PWFILE", str(pw)))
    targets, problems = build_targets(site, environ={"TEST_DCIM_COMMUNITY": "c0mm"})
    assert problems == []
    by_id = {t.device_id: t for t in targets}
    assert by_id["ups-1"].secret("community") == "c0mm"
    assert by_id["ups-1"].options["version"] == "2c"
    assert by_id["bmc-1"].secret("password") == "s3cret"
    assert by_id["bmc-1"].options["username"] == "admin"
    assert "c0mm" not in repr(by_id["ups-1"]) and "s3cret" not in repr(by_id["bmc-1"])
    assert by_id["ups-1"].tags == {"site": "s", "device": "ups-1"}


def test_missing_secret_names_the_variable_not_a_value(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x")
    os.chmod(pw, 0o600)
    site = load_site_text(SITE.replace("PWFILE", str(pw)))
    targets, problems = build_targets(site, environ={})
    assert [p.device_id for p in problems] == ["ups-1"]
    assert "TEST_DCIM_COMMUNITY" in problems[0].message
    assert [t.device_id for t in targets] == ["bmc-1"]  # the others still run


def test_world_readable_secret_file_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret")
    os.chmod(pw, 0o644)
    with pytest.raises(SecretError) as err:
        SecretRef(file=str(pw)).resolve()
    assert "chmod 600" in str(err.value) and "s3cret" not in str(err.value)
