"""NVML: a pure mapping test that runs everywhere, and live tests that need an NVIDIA GPU + driver."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from collectors.base import Target
from collectors.gpu.dcgm import samples_from_page
from collectors.gpu.nvml import NvmlCollector, NvmlReading, samples_from_readings
from collectors.gpu.promtext import parse

MIB = 1 << 20


def test_nvml_and_dcgm_mappings_agree_on_the_same_numbers():
    reading = NvmlReading(
        index=3, uuid="GPU-abc", name="NVIDIA H100 80GB HBM3",
        power_mw=412_250, energy_mj=7_200_000_123, temp_c=41, memory_temp_c=47.0,
        util_gpu_pct=93, util_memory_pct=38, memory_used_bytes=70_000 * MIB + 12345, memory_free_bytes=11_000 * MIB,
        sm_clock_mhz=1980, mem_clock_mhz=2619, clock_event_reasons=4,
        violation_ns={0: 1_500_000, 1: 20_999}, ecc={"ecc_sbe_volatile": 5, "ecc_dbe_aggregate": 1},
        remapped_rows=(2, 1, 0, 0), pcie_replay=6, nvlink_errors={2: 7, 0: 11})
    labels = 'gpu="3",UUID="GPU-abc",modelName="NVIDIA H100 80GB HBM3",Hostname="node-9"'
    page = "\n".join(f"{name}{{{labels}}} {value}" for name, value in [
        ("DCGM_FI_DEV_POWER_USAGE", 412.25), ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 7_200_000_123),
        ("DCGM_FI_DEV_GPU_TEMP", 41), ("DCGM_FI_DEV_MEMORY_TEMP", 47), ("DCGM_FI_DEV_GPU_UTIL", 93),
        ("DCGM_FI_DEV_MEM_COPY_UTIL", 38), ("DCGM_FI_DEV_FB_USED", 70_000), ("DCGM_FI_DEV_FB_FREE", 11_000),
        ("DCGM_FI_DEV_SM_CLOCK", 1980), ("DCGM_FI_DEV_MEM_CLOCK", 2619), ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", 4),
        ("DCGM_FI_DEV_POWER_VIOLATION", 1500), ("DCGM_FI_DEV_THERMAL_VIOLATION", 20),
        ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 5), ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", 1),
        ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 2), ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 1),
        ("DCGM_FI_DEV_ROW_REMAP_PENDING", 0), ("DCGM_FI_DEV_ROW_REMAP_FAILURE", 0),
        ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 6), ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 7),
        ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", 11),
    ]) + "\n"
    base = {"site": "tetouan", "device": "n9"}
    [from_nvml] = samples_from_readings([reading], base, "node-9", 5)
    [from_dcgm] = samples_from_page(parse(page), base, 5)
    assert from_nvml.tags == from_dcgm.tags
    assert set(from_nvml.fields) == set(from_dcgm.fields)
    for name, value in from_dcgm.fields.items():
        assert from_nvml.fields[name] == pytest.approx(value, rel=1e-12), name
        assert type(from_nvml.fields[name]) is type(value), name   # same Influx field types either way
    assert len(from_nvml.fields) == 22


def test_unsupported_readings_are_absent_not_zero():
    [s] = samples_from_readings([NvmlReading(index=0, uuid="GPU-x", temp_c=30)], {}, "h", 1)
    assert s.fields == {"temp_c": 30.0}
    assert samples_from_readings([NvmlReading(index=1)], {}, "h", 1) == []


@pytest.fixture(scope="module")
def nvml():
    import pynvml
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA GPU/driver here: {exc}")
    yield pynvml
    pynvml.nvmlShutdown()


def test_live_gpus_through_the_collector(nvml):
    count = nvml.nvmlDeviceGetCount()
    uuids = {str(i): nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)}
    totals = {str(i): nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(i)).total for i in range(count)}

    async def run():
        collector = NvmlCollector()
        try:
            return await collector.poll(Target(device_id="local", protocol="nvml", host="local", tags={"site": "t"}))
        finally:
            await collector.close()
    samples = asyncio.run(asyncio.wait_for(run(), 60))
    assert count >= 1 and len(samples) == count
    for s in samples:
        g = s.tags["gpu"]
        assert s.measurement == "gpu" and s.tags["uuid"] == (uuids[g].decode() if isinstance(uuids[g], bytes) else uuids[g])
        assert 0 < s.fields["temp_c"] < 120
        assert 0 < s.fields["power_w"] < 2000
        assert s.fields["fb_used_bytes"] + s.fields["fb_free_bytes"] <= totals[g]
        assert 0 <= s.fields["util_pct"] <= 100


def test_live_probe_nvml_local(nvml):
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", "nvml://local"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(samples) == nvml.nvmlDeviceGetCount()
    assert all(s["measurement"] == "gpu" and s["fields"]["power_w"] > 0 for s in samples)


def test_probe_nvml_local_answers_either_way():
    """Runs everywhere: samples where NVML works, else exit 1 with a one-line reason (no traceback)."""
    import pynvml
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        count = None
    proc = subprocess.run([sys.executable, "-m", "dcim.cli", "probe", "nvml://local"], capture_output=True, text=True,
                          timeout=120)
    if count is None:
        assert proc.returncode == 1 and proc.stdout == ""
        assert "unreachable" in proc.stderr and "no NVIDIA GPU/driver here" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    elif count == 0:
        assert proc.returncode == 1 and "no GPUs" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == count
