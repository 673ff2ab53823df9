"""``dcim run --config``: bad configs are refused with file:line: field, before anything starts."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dcim.config import load_run_config, parse_shard
from inventory import InventoryError


def test_bad_config_names_file_line_and_field(tmp_path):
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text("site: site.yaml\nshard: 3/2\ninfluxdb:\n  batch_size: 0\n  token: s3cret-token\n  colour: blue\n")
    with pytest.raises(InventoryError) as err:
        load_run_config(cfg)
    text = [str(i).replace(str(cfg), "dcim.yaml") for i in err.value.issues]
    assert "dcim.yaml:2: shard: shard '3/2': need N >= 1 and 0 <= i < N" in text
    assert "dcim.yaml:4: influxdb.batch_size: must be >= 1; got 0" in text
    assert any(t.startswith("dcim.yaml:5: influxdb.token: clear-text secret not allowed") for t in text)
    assert "dcim.yaml:6: influxdb.colour: unknown field (check the spelling; see docs/inventory.md)" in text
    assert all("s3cret" not in t for t in text)


def test_cli_run_refuses_bad_config_without_traceback(tmp_path):
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text("site: nowhere.yaml\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "nowhere.yaml: cannot read file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("text,want", [("0/1", (0, 1)), ("7/8", (7, 8))])
def test_parse_shard(text, want):
    assert parse_shard(text) == want


@pytest.mark.parametrize("text", ["8/8", "-1/2", "a/b", "1", "0/0"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError):
        parse_shard(text)


def test_alertmanager_section(tmp_path):
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text("site: site.yaml\nalertmanager:\n  urls: [http://127.0.0.1:9093, https://am-1:9093]\n  resend_s: 30\n")
    am = load_run_config(cfg).alertmanager
    assert am.urls == ["http://127.0.0.1:9093", "https://am-1:9093"] and am.resend_s == 30
    cfg.write_text("site: site.yaml\nalertmanager:\n  urls: [am-0:9093]\n  resend_s: 0\n")
    with pytest.raises(InventoryError) as err:
        load_run_config(cfg)
    text = [str(i).replace(str(cfg), "dcim.yaml") for i in err.value.issues]
    assert any(t.startswith("dcim.yaml:3: alertmanager.urls") and "http(s)://" in t for t in text), text
    assert any(t.startswith("dcim.yaml:4: alertmanager.resend_s") for t in text), text


def test_cli_run_refuses_bad_alertmanager_url(tmp_path):
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text("site: nowhere.yaml\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--alertmanager", "am:9093"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--alertmanager 'am:9093': expected http(s)://HOST:PORT" in proc.stderr


@pytest.mark.parametrize("command", [["run"], ["derived", "run"]])
def test_a_bad_rule_file_is_refused_with_file_line_and_field_before_the_site_loads(tmp_path, command):
    """The rules are read first: a typo in them is one line naming file, line and field (exit 1),
    not a traceback from inside the running service; the site (here: missing) is not even read."""
    cfg = tmp_path / "dcim.yaml"
    cfg.write_text("site: nowhere.yaml\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: hot\n    measurement: pdu\n    fiel: current_a\n")
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", *command, "--config", str(cfg), "--alerts", str(rules),
                           "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"{rules}:4: rules[0].fiel: unknown field" in proc.stderr
    assert "Traceback" not in proc.stderr and "nowhere.yaml" not in proc.stderr


def test_each_process_of_a_sharded_config_has_its_own_spool(tmp_path):
    from dcim.config import own_spool
    from sinks.influx_writer import InfluxConfig

    base = InfluxConfig(spool_dir=str(tmp_path / "spool"))
    shard = own_spool(base, "shard-2")
    assert shard.spool_dir == str(tmp_path / "spool" / "shard-2") and shard.spool_adopt_dir == base.spool_dir
    assert own_spool(base, None) is base and own_spool(InfluxConfig(), "derived").spool_dir is None


def test_run_refuses_a_spool_another_process_holds(tmp_path):
    """``dcim run --shard 1/3`` whose spool (``spool_dir/shard-1``) another process holds exits 2 naming
    the directory and the holder, before polling anything."""
    import os

    from dcim.demo import DEMO_SECRETS
    from localservers.site import EXAMPLE_SITE
    from tests.test_spool import _holder

    holder = _holder(tmp_path / "spool" / "shard-1")
    try:
        cfg = tmp_path / "dcim.yaml"
        cfg.write_text(f"site: {EXAMPLE_SITE}\ninfluxdb: {{url: 'http://127.0.0.1:9', api: v1, "
                       f"spool_dir: {tmp_path / 'spool'}}}\n")
        proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--shard", "1/3",
                               "--duration", "30"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **DEMO_SECRETS})
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert f"spool directory {tmp_path / 'spool' / 'shard-1'} is in use by process {holder.pid}" in proc.stderr
    assert "Traceback" not in proc.stderr and "polling" not in proc.stderr


@pytest.mark.parametrize("command", [["run", "--shard", "0/2"], ["derived", "run"]])
def test_an_alert_state_dir_held_by_another_engine_is_refused(tmp_path, command):
    """Two engines on one --state-dir would overwrite each other's snapshot and outbox: the second
    command exits 2 naming the directory and the holder, before the site is even read."""
    from alerts.state_dir import ENGINE_LOCK

    state = tmp_path / "state"
    state.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from sinks.durable import lock_dir; "
                               f"fd = lock_dir({str(state)!r}, {ENGINE_LOCK!r}); print('ready', flush=True); "
                               "sys.stdin.readline()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        cfg = tmp_path / "dcim.yaml"
        cfg.write_text("site: nowhere.yaml\n")
        rules = tmp_path / "rules.yaml"
        rules.write_text("rules: []\n")
        proc = subprocess.run([sys.executable, "-m", "dcim.cli", *command, "--config", str(cfg), "--alerts", str(rules),
                               "--state-dir", str(state)], capture_output=True, text=True, timeout=60)
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert f"alert state directory {state} is in use by process {holder.pid}" in proc.stderr
    assert "Traceback" not in proc.stderr and "nowhere.yaml" not in proc.stderr
