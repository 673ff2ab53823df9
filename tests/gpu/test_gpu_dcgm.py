"""DCGM page -> gpu samples (pure), and DcgmCollector against real HTTP servers."""
from __future__ import annotations

import re

import pytest

from collectors.base import PollError, Target
from collectors.gpu.dcgm import DcgmCollector, samples_from_page
from collectors.gpu.promtext import parse
from testkit.collect import poll_each
from localservers.process import free_port
from tests.gpu.dcgm_recording import BASE, PAGE, page_values


def test_real_page_one_sample_per_gpu_with_its_values():
    samples = samples_from_page(parse(PAGE.read_bytes()), BASE, 123)
    by_gpu = {s.tags["gpu"]: s for s in samples}
    assert sorted(by_gpu) == [str(i) for i in range(8)]
    for metric, field in [("DCGM_FI_DEV_POWER_USAGE", "power_w"), ("DCGM_FI_DEV_GPU_TEMP", "temp_c"),
                          ("DCGM_FI_DEV_GPU_UTIL", "util_pct"), ("DCGM_FI_DEV_MEM_COPY_UTIL", "mem_copy_util_pct")]:
        want = page_values(metric)
        assert want, metric
        assert {g: s.fields[field] for g, s in by_gpu.items() if field in s.fields} == want, field
    assert all(s.measurement == "gpu" and s.time_ns == 123 for s in samples)
    g0 = by_gpu["0"].tags
    line0 = PAGE.read_text().splitlines()[0]
    assert g0["uuid"] == re.search(r'UUID="([^"]+)"', line0).group(1)
    assert g0["model"] == "NVIDIA H100 80GB HBM3" and g0["host"] == "gpu-node-1"
    assert g0["pod"] == "vllm-agg-0-vllmdecodeworker-s65j5" and g0["namespace"] == "dynamo-workload"
    assert g0["site"] == "tetouan" and g0["device"] == "h1-r01-k01-n1"
    assert "pod" not in by_gpu["1"].tags and "pod_uid" not in g0  # empty labels are not tags


LABELS = 'gpu="{g}",UUID="GPU-{g}",modelName="NVIDIA H200",hostname="n7",hpc_job="4242"'
SYNTH = "\n".join([
    "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).",
    "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
    'DCGM_FI_DEV_POWER_USAGE{%s} 300.5' % LABELS.format(g=0),
    'DCGM_FI_DEV_POWER_USAGE_INSTANT{%s} 412.25' % LABELS.format(g=0),
    'DCGM_FI_DEV_POWER_USAGE{%s} 250' % LABELS.format(g=1),
    'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{%s} 7200000000' % LABELS.format(g=0),
    'DCGM_FI_DEV_FB_USED{%s} 1024' % LABELS.format(g=0),
    'DCGM_FI_DEV_FB_FREE{%s} 80000' % LABELS.format(g=0),
    'DCGM_FI_DEV_SM_CLOCK{%s} 1980' % LABELS.format(g=0),
    'DCGM_FI_DEV_MEM_CLOCK{%s} 2619' % LABELS.format(g=0),
    'DCGM_FI_DEV_MEMORY_TEMP{%s} 140737488355328' % LABELS.format(g=0),   # FP64 blank
    'DCGM_FI_DEV_GPU_TEMP{%s} 2147483632' % LABELS.format(g=0),            # INT32 blank
    'DCGM_FI_DEV_GPU_TEMP{%s} 41' % LABELS.format(g=1),
    'DCGM_FI_DEV_GPU_UTIL{%s} NaN' % LABELS.format(g=0),
    'DCGM_FI_DEV_XID_ERRORS{%s} 9223372036854775792' % LABELS.format(g=1),  # INT64 blank
    'DCGM_FI_DEV_XID_ERRORS{%s} 79' % LABELS.format(g=0),
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{%s} 4' % LABELS.format(g=0),
    'DCGM_FI_DEV_POWER_VIOLATION{%s} 1500' % LABELS.format(g=0),
    'DCGM_FI_DEV_THERMAL_VIOLATION{%s} 20' % LABELS.format(g=0),
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{%s} 2' % LABELS.format(g=0),
    'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{%s} 1' % LABELS.format(g=0),
    'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L0{%s} 3' % LABELS.format(g=0),
    'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L1{%s} 4' % LABELS.format(g=0),
    'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_L0{%s} 5' % LABELS.format(g=0),
    'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL{%s} 11' % LABELS.format(g=0),
    'DCGM_FI_DEV_PCIE_REPLAY_COUNTER{%s} 6' % LABELS.format(g=0),
    'DCGM_FI_DEV_SOMETHING_NEW{%s} 1' % LABELS.format(g=0),
    'dcgm_exporter_build_info{version="4.0"} 1',
    'dcgm_gpu_temp{gpu="2",UUID="GPU-2"} 55',
]) + "\n"


def test_synthetic_page_units_preferences_sentinels_and_sums():
    by_gpu = {s.tags["gpu"]: s for s in samples_from_page(parse(SYNTH), {}, 1)}
    assert sorted(by_gpu) == ["0", "1", "2"]
    f0 = by_gpu["0"].fields
    assert f0 == {
        "power_w": 412.25,                      # INSTANT wins over the 1 s average
        "energy_kwh": pytest.approx(2.0),       # 7.2e9 mJ = 2 kWh
        "fb_used_bytes": 1024 * 1048576, "fb_free_bytes": 80000 * 1048576,
        "sm_clock_mhz": 1980.0, "mem_clock_mhz": 2619.0,
        "xid_last": 79, "clock_event_reasons": 4,
        "violation_power_us": 1500, "violation_thermal_us": 20,
        "ecc_dbe_volatile": 2, "remapped_rows_uncorrectable": 1,
        "nvlink_crc_flit_errors": 7,            # per-link lines summed
        "nvlink_replay_errors": 11,             # the total wins over the per-link sum
        "pcie_replay": 6,
    }
    assert isinstance(f0["xid_last"], int) and isinstance(f0["fb_used_bytes"], int)
    assert by_gpu["1"].fields == {"power_w": 250.0, "temp_c": 41.0}   # INT64-blank XID dropped
    assert by_gpu["0"].tags == {"gpu": "0", "uuid": "GPU-0", "model": "NVIDIA H200", "host": "n7", "job": "4242"}
    assert by_gpu["2"].fields == {"temp_c": 55.0}  # dcgm-exporter 1.x name


def _target(port: int, path: str = "/metrics", timeout: float = 2.0) -> Target:
    return Target(device_id="n1", protocol="dcgm", host="127.0.0.1", port=port, timeout_s=timeout,
                  tags=dict(BASE), options={"path": path})


def _poll_many(targets: list[Target]) -> list:
    return poll_each(DcgmCollector(max_body=1 << 20), targets, 30)


@pytest.mark.parametrize("mode", ["length", "chunked", "close", "gzip"])
def test_collector_scrapes_each_framing(page_server, mode):
    page_server.routes["/metrics"] = (mode, PAGE.read_bytes())
    [samples] = _poll_many([_target(page_server.port)])
    assert not isinstance(samples, PollError), samples
    want = samples_from_page(parse(PAGE.read_bytes()), BASE, 0)
    assert [(s.tags, s.fields) for s in samples] == [(s.tags, s.fields) for s in want]


def test_keep_alive_reuses_one_connection(page_server):
    page_server.routes["/metrics"] = ("length", PAGE.read_bytes())
    results = _poll_many([_target(page_server.port)] * 5)
    assert all(isinstance(r, list) and len(r) == 8 for r in results)
    assert page_server.requests == 5 and page_server.connections == 1


def test_errors_are_classified(page_server):
    body = PAGE.read_bytes()
    page_server.routes.update({"/trunc": ("truncated", body), "/garbage": ("length", b"DCGM_FI_DEV_GPU_TEMP{gpu=\"0\" 3\n"),
                               "/500": (500, b"oops"), "/401": (401, b""), "/slow": ("slow", body),
                               "/big": ("length", body * 2000), "/empty": ("length", b"# nothing\n")})
    page_server.delay = 1.0
    dead = free_port()
    results = _poll_many([_target(page_server.port, "/trunc"), _target(page_server.port, "/garbage"),
                          _target(page_server.port, "/500"), _target(page_server.port, "/401"),
                          _target(page_server.port, "/slow", timeout=0.3), _target(page_server.port, "/big"),
                          _target(page_server.port, "/empty"), _target(dead)])
    kinds = [r.kind if isinstance(r, PollError) else r for r in results]
    assert kinds == ["protocol", "protocol", "device", "auth", "timeout", "protocol", "decode", "unreachable"]
    assert "line 1" in results[1].message and "truncated" in results[0].message
    assert "exceeds" in results[5].message
    # after all that, the same collector still scrapes fine
    page_server.routes["/metrics"] = ("length", body)
    assert len(_poll_many([_target(page_server.port)])[0]) == 8


def _first_poll(target: Target) -> list:
    """The samples (and the ``poll`` sample) of one real scheduler poll of ``target``."""
    import asyncio

    from collectors.scheduler import Job, Scheduler

    got: list = []

    async def run():
        sched = Scheduler([Job(target, DcgmCollector(max_body=8 << 20))], got.append, spread=False)
        sched.start()
        for _ in range(600):
            if got:
                break
            await asyncio.sleep(0.05)
        await sched.stop()

    asyncio.run(run())
    assert got, "no poll within 30 s"
    return got[0]


def test_a_page_cannot_add_gpus_the_node_does_not_have(page_server):
    """100,000 distinct gpu series under the size cap, inventory says 8: 8 GPU samples, the rest counted."""
    page = b"".join(b'DCGM_FI_DEV_GPU_TEMP{gpu="%d"} 40\n' % i for i in range(100_000))
    assert len(page) < 8 << 20
    page_server.routes["/metrics"] = ("length", page)
    t = _target(page_server.port, timeout=10)
    t.options["gpus"] = 8
    t.interval_s = 30
    samples = _first_poll(t)
    gpu = [s for s in samples if s.measurement == "gpu"]
    [poll] = [s for s in samples if s.measurement == "poll"]
    assert sorted(int(s.tags["gpu"]) for s in gpu) == list(range(8))
    assert poll.fields["excess"] == 100_000 - 8 and poll.fields["ok"] is False
    assert poll.fields["error_kind"] == "device" and "99992 GPU series beyond the node's 8 ignored" in poll.fields["error"]


def test_negative_gpu_power_is_dropped_and_named(page_server):
    page = b"".join(b'DCGM_FI_DEV_POWER_USAGE{gpu="%d"} %d\nDCGM_FI_DEV_GPU_TEMP{gpu="%d"} 40\n'
                    % (i, -5 if i == 4 else 300, i) for i in range(8))
    page_server.routes["/metrics"] = ("length", page)
    t = _target(page_server.port)
    t.options["gpus"] = 8
    samples = _first_poll(t)
    by_gpu = {s.tags["gpu"]: s.fields for s in samples if s.measurement == "gpu"}
    [poll] = [s for s in samples if s.measurement == "poll"]
    assert "power_w" not in by_gpu["4"] and by_gpu["4"]["temp_c"] == 40.0 and by_gpu["3"]["power_w"] == 300.0
    assert poll.fields["implausible"] == 1 and "gpu[gpu=4" in poll.fields["error"] and "power_w=-5.0" in poll.fields["error"]
