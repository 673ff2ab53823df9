"""``dcim run`` with derived metrics (and the rule engine) beside collection, against the twin."""
from __future__ import annotations

import subprocess
import sys

from inventory.loader import load_site
from localservers.site import load_relocated, write_site
from localservers.twin import TwinThread


def test_run_with_derived_writes_pue_for_the_twin(tmp_path, influx_server, influx_db, monkeypatch):
    monkeypatch.setenv("DCIM_SNMP_COMMUNITY", "public")
    monkeypatch.setenv("DCIM_BMC_USER", "u")
    monkeypatch.setenv("DCIM_BMC_PASSWORD", "p")
    site = load_relocated()
    site.defaults.interval_s = 2.0
    for d in site.all_devices():
        d.interval_s = None
    site_file = write_site(site, tmp_path / "site.yaml")
    assert load_site(site_file).device("ups-1a").port == site.device("ups-1a").port  # round trip
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"site: {site_file}\ninfluxdb: {{url: '{influx_server.url}', database: {influx_db}, api: v1}}\n")
    with TwinThread(site, refresh_s=1.0) as twin:
        proc = subprocess.run([sys.executable, "-m", "dcim.cli", "run", "--config", str(cfg), "--derived", "--duration", "7"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        truth_pue = twin.twin.model.facility_w() / twin.twin.model.it_w()
    rows = influx_server.query('SELECT last("pue") FROM "pue" WHERE "hall" = \'\' ', db=influx_db)
    series = rows["results"][0].get("series")
    assert series, rows
    pue = series[0]["values"][0][1]
    # category-1 IT (UPS-output meters) vs the model's UPS output: same quantity, read over the wire
    assert abs(pue - truth_pue) < 0.05, (pue, truth_pue)
