"""Tier configuration, field classification and the statements ``dcim storage init`` plans: pure."""
from __future__ import annotations

import pytest

from dcim.config import load_run_config
from inventory import InventoryError
from contract.fields import field_kind
from storage.fields import rollups
from storage.influxql import create_cq, tier_rows
from storage.plan import RetentionPolicy, ServerState, plan_init
from storage.read import counter_readings
from storage.tiers import StorageConfig, Tier, disk_per_day, parse_duration


@pytest.mark.parametrize("field,typ,kind", [
    ("energy_kwh", "float", "counter"), ("volume_l", "float", "counter"), ("violation_thermal_us", "integer", "counter"),
    ("compressor_1a_runtime_s", "integer", "counter"), ("runtime_s", "integer", "gauge_low"),
    ("power_w", "float", "gauge"), ("temp_c", "float", "gauge"), ("voltage_v", "float", "gauge_low"),
    ("flow_lpm", "float", "gauge_low"), ("state", "string", "state"), ("leak_detected", "boolean", "state"),
    ("xid_last", "integer", "state"), ("alarm_word", "integer", "state"), ("charge_pct", "float", "gauge_low"),
])
def test_each_field_gets_the_rollup_its_meaning_needs(field, typ, kind):
    assert field_kind(field, typ) == kind


def test_rollups_keep_the_field_name_for_the_mean_and_last():
    assert [(r.function, r.target, r.type) for r in rollups("power_w")] == [
        ("mean", "power_w", "float"), ("max", "power_w_max", "float")]
    assert [(r.function, r.target, r.type) for r in rollups("energy_kwh")] == [
        ("last", "energy_kwh", "float"), ("max", "energy_kwh_max", "float")]
    assert [(r.function, r.type) for r in rollups("xid_last", "integer")] == [("last", "integer")]


def test_defaults_and_the_span_table():
    cfg = StorageConfig()
    assert [(t.name, t.step_s, t.rp) for t in cfg.tiers] == [("1m", 60, "rollup_1m"), ("1h", 3600, "rollup_1h")]
    assert cfg.choose(6 * 3600) is None                       # a NOC's 6 h: raw
    assert cfg.choose(3 * 86400).name == "1m"
    assert cfg.choose(30 * 86400).name == "1h"
    assert cfg.choose(3600, oldest_age_s=60 * 86400).name == "1m"   # raw has expired there
    spans = cfg.spans()
    assert [s[0] for s in spans] == ["raw", "1m", "1h"]
    assert all(a[3] == b[2] for a, b in zip(spans, spans[1:]))        # contiguous
    assert len(tier_rows(cfg)) == 3


@pytest.mark.parametrize("bad,needle", [
    ({"tiers": [{"name": "1h", "step": "1h", "retention": "1d"}, {"name": "1m", "step": "1m", "retention": "1d"}]},
     "finest first"),
    ({"tiers": [{"name": "x", "step": "7m", "retention": "1d"}]}, "divide a day"),
    ({"tiers": [{"name": "x", "step": "1m", "retention": "30m"}]}, "between 1h and 10 years"),
    ({"raw": {"retention": "forever"}}, "not a duration"),
    ({"tiers": [{"name": "x", "step": "1m", "retention": "1d", "rp": "1bad"}]}, "retention policy name"),
])
def test_bad_tier_config_is_refused(bad, needle):
    with pytest.raises(ValueError, match=needle):
        StorageConfig(**bad)


def test_a_bad_storage_section_names_file_and_line(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("site: s.yaml\nstorage:\n  tiers:\n    - {name: 1m, step: 1m, retention: 90d, steps: 3}\n")
    with pytest.raises(InventoryError) as exc:
        load_run_config(cfg)
    text = str(exc.value)
    assert "run.yaml:4" in text and "steps" in text


def test_init_plan_creates_then_plans_nothing_but_new_fields():
    cfg = StorageConfig()
    empty = ServerState(database_exists=False)
    first = plan_init("dcim", cfg, empty, use_cq=True)
    assert first[0] == 'CREATE DATABASE "dcim"'
    assert any("CREATE RETENTION POLICY \"autogen\"" in s and s.endswith("DEFAULT") for s in first)
    assert not any("CONTINUOUS" in s for s in first)          # no fields yet
    fields = {"pdu": {"power_w": "float", "energy_kwh": "float"}, "alert": {"summary": "string"}}
    present = ServerState(True, {"autogen": RetentionPolicy("autogen", 30 * 86400, True),
                                 "rollup_1m": RetentionPolicy("rollup_1m", 90 * 86400, False),
                                 "rollup_1h": RetentionPolicy("rollup_1h", 1825 * 86400, False),
                                 "dcim_meta": RetentionPolicy("dcim_meta", None, False)}, [], fields)
    cqs = plan_init("dcim", cfg, present, use_cq=True)
    assert len(cqs) == 2 and all(s.startswith("CREATE CONTINUOUS QUERY") for s in cqs)   # alert excluded
    assert 'mean("power_w") AS "power_w"' in cqs[0] and 'last("energy_kwh") AS "energy_kwh"' in cqs[0]
    names = [s.split('"')[1] for s in cqs]
    present.continuous_queries = names
    assert plan_init("dcim", cfg, present, use_cq=True) == []
    # a new field changes the query: the old one is dropped, the new one created
    fields["pdu"]["current_a"] = "float"
    again = plan_init("dcim", cfg, present, use_cq=True)
    assert sum(s.startswith("DROP CONTINUOUS QUERY") for s in again) == 2
    assert sum(s.startswith("CREATE CONTINUOUS QUERY") for s in again) == 2
    # a changed retention is altered, not recreated
    present.policies["autogen"] = RetentionPolicy("autogen", 7 * 86400, True)
    assert any(s.startswith('ALTER RETENTION POLICY "autogen"') and "DURATION 30d" in s
               for s in plan_init("dcim", cfg, present, use_cq=True))


def test_continuous_query_recomputes_recent_buckets():
    cfg = StorageConfig(tiers=[Tier(name="1m", step="1m", retention="1d")])
    q = create_cq("dcim", cfg, cfg.tiers[0], "ups", rollups("voltage_v"))
    assert "RESAMPLE EVERY 1m FOR 2m" in q and 'min("voltage_v") AS "voltage_v_min"' in q
    assert 'INTO "dcim"."rollup_1m"."ups" FROM "dcim"."autogen"."ups" GROUP BY time(1m), *' in q


def test_counter_read_from_a_tier_bridges_a_reset_inside_a_bucket():
    # raw: 100.0 at the end of hour 0; in hour 1 it climbs to 100.5, resets, counts up to 0.7
    rows = [(0, 100.0, 100.0), (3600, 0.7, 100.5), (7200, 1.9, 1.9)]
    rs = counter_readings(rows, 3600)
    assert rs.tolist() == [[3600, 100.0], [5400, 100.5], [7200, 0.7], [10800, 1.9]]


def test_disk_estimate_scales_with_retention():
    est = disk_per_day(300_000, 2.0)
    assert est["raw/day"] == pytest.approx(300_000 * 86400 * 2.0)
    assert est["raw/held"] == pytest.approx(est["raw/day"] * 30)
    assert est["1h/day"] < est["1m/day"] < est["raw/day"]


def test_durations():
    assert parse_duration("30d") == 30 * 86400 and parse_duration("10s") == 10
    with pytest.raises(ValueError):
        parse_duration("1.5h")
