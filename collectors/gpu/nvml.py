"""Local GPUs through NVML (``pynvml`` from nvidia-ml-py) -> the same ``gpu`` samples as DCGM.

For nodes without dcgm-exporter (or to cross-check it): ``dcim probe nvml://local``.
The split mirrors dcgm.py: :func:`read_gpus` does the NVML calls (blocking,
run in one dedicated thread because NVML state is process-wide), and
:func:`samples_from_readings` is a pure mapping from NVML's native units
(mW, mJ, bytes, ns) to the field names and units the DCGM mapping produces,
so dashboards do not care which path a node's numbers came by.  A test feeds
both mappings the same numbers and expects the same fields.

Each NVML query is allowed to fail on its own (``NOT_SUPPORTED`` on consumer
boards, ``NO_PERMISSION`` in containers): that field is simply absent.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from dataclasses import dataclass, field
from typing import Any, Callable

from collectors.base import Collector, PollError, Target
from collectors.gpu.dcgm import MIB, missing_gpus
from contract.sample import Sample, now_ns
from contract.protocols import served_by

__all__ = ["NvmlReading", "samples_from_readings", "read_gpus", "NvmlCollector"]

#: NVML perf-policy index -> field suffix, as DCGM names its *_VIOLATION counters
VIOLATIONS = {0: "power", 1: "thermal", 2: "sync_boost", 3: "board_limit", 4: "low_util", 5: "reliability",
              10: "app_clocks", 11: "base_clocks"}
#: NVML NvLink error counter -> field (as in dcgm.py)
NVLINK_COUNTERS = {0: "nvlink_replay_errors", 1: "nvlink_recovery_errors", 2: "nvlink_crc_flit_errors",
                   3: "nvlink_crc_data_errors"}


@dataclass
class NvmlReading:
    """One GPU's raw NVML readings, in NVML's units; None = not supported / not permitted."""

    index: int
    uuid: str = ""
    name: str = ""
    power_mw: int | None = None              # nvmlDeviceGetPowerUsage
    energy_mj: int | None = None             # nvmlDeviceGetTotalEnergyConsumption
    temp_c: int | None = None
    memory_temp_c: float | None = None       # field value NVML_FI_DEV_MEMORY_TEMP
    util_gpu_pct: int | None = None          # nvmlDeviceGetUtilizationRates().gpu
    util_memory_pct: int | None = None       # .memory (copy-engine busy, DCGM's MEM_COPY_UTIL)
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    clock_event_reasons: int | None = None
    violation_ns: dict[int, int] = field(default_factory=dict)   # perf policy -> violationTime (ns)
    ecc: dict[str, int] = field(default_factory=dict)             # field name -> count
    remapped_rows: tuple[int, int, int, int] | None = None       # corr, unc, pending, failure
    pcie_replay: int | None = None
    nvlink_errors: dict[int, int] = field(default_factory=dict)   # counter -> sum over links


def samples_from_readings(readings: list[NvmlReading], base_tags: dict[str, str], host: str,
                          time_ns: int) -> list[Sample]:
    """NVML readings -> ``gpu`` samples with the DCGM mapping's field names and units."""
    out = []
    for r in readings:
        f: dict[str, Any] = {}
        if r.power_mw is not None:
            f["power_w"] = r.power_mw / 1000.0
        if r.energy_mj is not None:
            f["energy_kwh"] = r.energy_mj / 3.6e9
        if r.temp_c is not None:
            f["temp_c"] = float(r.temp_c)
        if r.memory_temp_c is not None:
            f["memory_temp_c"] = float(r.memory_temp_c)
        if r.util_gpu_pct is not None:
            f["util_pct"] = float(r.util_gpu_pct)
        if r.util_memory_pct is not None:
            f["mem_copy_util_pct"] = float(r.util_memory_pct)
        # DCGM reports framebuffer in whole MiB; round the same way so both paths agree
        if r.memory_used_bytes is not None:
            f["fb_used_bytes"] = (r.memory_used_bytes // MIB) * MIB
        if r.memory_free_bytes is not None:
            f["fb_free_bytes"] = (r.memory_free_bytes // MIB) * MIB
        if r.sm_clock_mhz is not None:
            f["sm_clock_mhz"] = float(r.sm_clock_mhz)
        if r.mem_clock_mhz is not None:
            f["mem_clock_mhz"] = float(r.mem_clock_mhz)
        if r.clock_event_reasons is not None:
            f["clock_event_reasons"] = int(r.clock_event_reasons)
        for policy, ns in r.violation_ns.items():
            if policy in VIOLATIONS:
                f[f"violation_{VIOLATIONS[policy]}_us"] = int(ns // 1000)
        f.update({k: int(v) for k, v in r.ecc.items()})
        if r.remapped_rows is not None:
            corr, unc, pending, failure = r.remapped_rows
            f.update(remapped_rows_correctable=int(corr), remapped_rows_uncorrectable=int(unc),
                     row_remap_pending=int(pending), row_remap_failure=int(failure))
        if r.pcie_replay is not None:
            f["pcie_replay"] = int(r.pcie_replay)
        for counter, total in r.nvlink_errors.items():
            if counter in NVLINK_COUNTERS:
                f[NVLINK_COUNTERS[counter]] = int(total)
        tags = {**base_tags, "gpu": str(r.index)}
        if r.uuid:
            tags["uuid"] = r.uuid
        if r.name:
            tags["model"] = r.name
        if host:
            tags["host"] = host
        if f:
            out.append(Sample("gpu", tags, f, time_ns))
    return out


def read_gpus(nvml: Any) -> list[NvmlReading]:
    """Query every GPU through the ``pynvml`` module ``nvml`` (already initialised).  Blocking."""

    def q(fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except nvml.NVMLError:
            return None

    readings = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        r = NvmlReading(index=i, uuid=_text(q(nvml.nvmlDeviceGetUUID, h)), name=_text(q(nvml.nvmlDeviceGetName, h)))
        r.power_mw = q(nvml.nvmlDeviceGetPowerUsage, h)
        r.energy_mj = q(nvml.nvmlDeviceGetTotalEnergyConsumption, h)
        r.temp_c = q(nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU)
        util = q(nvml.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            r.util_gpu_pct, r.util_memory_pct = util.gpu, util.memory
        mem = q(nvml.nvmlDeviceGetMemoryInfo, h)
        if mem is not None:
            r.memory_used_bytes, r.memory_free_bytes = mem.used, mem.free
        r.sm_clock_mhz = q(nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_SM)
        r.mem_clock_mhz = q(nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_MEM)
        getter = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        r.clock_event_reasons = q(getter, h)
        for policy in VIOLATIONS:
            v = q(nvml.nvmlDeviceGetViolationStatus, h, policy)
            if v is not None:
                r.violation_ns[policy] = v.violationTime
        for etype, ename in ((0, "sbe"), (1, "dbe")):
            for ctype, cname in ((0, "volatile"), (1, "aggregate")):
                n = q(nvml.nvmlDeviceGetTotalEccErrors, h, etype, ctype)
                if n is not None:
                    r.ecc[f"ecc_{ename}_{cname}"] = n
        r.remapped_rows = q(nvml.nvmlDeviceGetRemappedRows, h)
        r.pcie_replay = q(nvml.nvmlDeviceGetPcieReplayCounter, h)
        fv = q(nvml.nvmlDeviceGetFieldValues, h, [nvml.NVML_FI_DEV_MEMORY_TEMP])
        if fv is not None and fv[0].nvmlReturn == 0:
            r.memory_temp_c = _field_value(nvml, fv[0])
        for link in range(nvml.NVML_NVLINK_MAX_LINKS):
            if q(nvml.nvmlDeviceGetNvLinkState, h, link) != 1:  # NVML_FEATURE_ENABLED
                continue
            for counter in NVLINK_COUNTERS:
                n = q(nvml.nvmlDeviceGetNvLinkErrorCounter, h, link, counter)
                if n is not None:
                    r.nvlink_errors[counter] = r.nvlink_errors.get(counter, 0) + n
        readings.append(r)
    return readings


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _field_value(nvml: Any, fv: Any) -> float | None:
    kind = fv.valueType
    v = fv.value
    return {nvml.NVML_VALUE_TYPE_DOUBLE: lambda: v.dVal, nvml.NVML_VALUE_TYPE_UNSIGNED_INT: lambda: v.uiVal,
            nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: lambda: v.ulVal, nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: lambda: v.ullVal,
            nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: lambda: v.sllVal, nvml.NVML_VALUE_TYPE_SIGNED_INT: lambda: v.siVal,
            }.get(kind, lambda: None)()


class NvmlCollector(Collector):
    """Reads this machine's GPUs.  NVML is initialised on first poll and shut down on close."""

    protocols = served_by(f"{__name__}:NvmlCollector")  # its rows in contract/protocols.py

    def __init__(self) -> None:
        # NVML calls are serialised on one thread: its handles are process-wide state
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvml")
        self._nvml: Any = None
        self._host = socket.gethostname()

    def _init(self) -> Any:
        if self._nvml is None:
            import pynvml
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                raise PollError("unreachable", f"no NVIDIA GPU/driver here ({exc})") from None
            self._nvml = pynvml
        return self._nvml

    def _poll_blocking(self, target: Target) -> list[Sample]:
        nvml = self._init()
        try:
            readings = read_gpus(nvml)
        except nvml.NVMLError as exc:
            raise PollError("device", f"NVML: {exc}") from None
        samples = samples_from_readings(readings, target.tags, self._host, now_ns())
        if not samples:
            raise PollError("decode", "NVML lists no GPUs with readable counters")
        missing = missing_gpus(samples, target.options.get("gpus"))
        if missing:
            raise PollError("device", f"GPU(s) {', '.join(missing)} not visible to NVML "
                                      f"(inventory says {target.options['gpus']})", partial=samples)
        return samples

    async def poll(self, target: Target) -> list[Sample]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._poll_blocking, target)

    async def close(self) -> None:
        def shutdown() -> None:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except self._nvml.NVMLError:
                    pass
                self._nvml = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, shutdown)
        self._pool.shutdown(wait=False)
