"""DCGM exporter pages -> ``gpu`` samples, one per GPU per scrape.

``samples_from_page`` is pure (parsed metrics in, Samples out) so it is tested
on the real 8xH100 page and shared with the NVML collector's field names.
``DcgmCollector`` does the HTTP GET of ``http://host:port/metrics``.

Why a fixed table rather than mapping every metric: dashboards and alert rules
key on unit-suffixed field names (docs/conventions.md), and DCGM's names carry
units only in their help text (MiB, mJ, us).  Unknown metrics are ignored, so a
newer exporter adding counters never breaks a poll.

DCGM reports "no value" as blank sentinels rather than omitting the line:
INT32 0x7ffffff0.., INT64 0x7ffffffffffffff0.. and FP64 2**47 (140737488355328.0)
plus 0..15 for NOT_FOUND / NOT_SUPPORTED / NOT_PERMISSIONED.  Those, and NaN,
are dropped so they never reach a graph as a 2-billion-degree GPU.
"""
from __future__ import annotations

import math
from typing import Iterable

from collectors.base import Collector, PollError, Target
from collectors.gpu.httpget import HttpGetter
from collectors.gpu.promtext import PromSample
from contract.sample import Sample, now_ns
from contract.protocols import served_by

__all__ = ["samples_from_page", "missing_gpus", "DcgmCollector", "is_blank", "FIELDS", "MIB"]

MIB = 1024 * 1024
_INT32_BLANK = 0x7FFFFFF0
_INT64_BLANK = float(0x7FFFFFFFFFFFFFF0)  # == 2**63 as a double
_FP64_BLANK = 140737488355328.0  # 2**47


def is_blank(value: float) -> bool:
    """True for NaN and the DCGM blank / not-found / not-supported sentinels."""
    return (value != value
            or _INT32_BLANK <= value <= _INT32_BLANK + 15
            or _FP64_BLANK <= value <= _FP64_BLANK + 15
            or value >= _INT64_BLANK)


# metric -> (field, factor, integer?).  Factor converts DCGM's unit to the field's.
_F = tuple[str, float, bool]
FIELDS: dict[str, _F] = {
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0, False),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_kwh", 1 / 3.6e9, False),  # mJ -> kWh
    "DCGM_FI_DEV_GPU_TEMP": ("temp_c", 1.0, False),
    "DCGM_FI_DEV_MEMORY_TEMP": ("memory_temp_c", 1.0, False),
    "DCGM_FI_DEV_GPU_UTIL": ("util_pct", 1.0, False),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("mem_copy_util_pct", 1.0, False),
    "DCGM_FI_DEV_ENC_UTIL": ("enc_util_pct", 1.0, False),
    "DCGM_FI_DEV_DEC_UTIL": ("dec_util_pct", 1.0, False),
    "DCGM_FI_DEV_FB_USED": ("fb_used_bytes", MIB, True),
    "DCGM_FI_DEV_FB_FREE": ("fb_free_bytes", MIB, True),
    "DCGM_FI_DEV_FB_RESERVED": ("fb_reserved_bytes", MIB, True),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock_mhz", 1.0, False),
    "DCGM_FI_DEV_MEM_CLOCK": ("mem_clock_mhz", 1.0, False),
    "DCGM_FI_DEV_XID_ERRORS": ("xid_last", 1.0, True),
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": ("clock_event_reasons", 1.0, True),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": ("clock_event_reasons", 1.0, True),
    "DCGM_FI_DEV_POWER_VIOLATION": ("violation_power_us", 1.0, True),
    "DCGM_FI_DEV_THERMAL_VIOLATION": ("violation_thermal_us", 1.0, True),
    "DCGM_FI_DEV_SYNC_BOOST_VIOLATION": ("violation_sync_boost_us", 1.0, True),
    "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION": ("violation_board_limit_us", 1.0, True),
    "DCGM_FI_DEV_LOW_UTIL_VIOLATION": ("violation_low_util_us", 1.0, True),
    "DCGM_FI_DEV_RELIABILITY_VIOLATION": ("violation_reliability_us", 1.0, True),
    "DCGM_FI_DEV_TOTAL_APP_CLOCKS_VIOLATION": ("violation_app_clocks_us", 1.0, True),
    "DCGM_FI_DEV_TOTAL_BASE_CLOCKS_VIOLATION": ("violation_base_clocks_us", 1.0, True),
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": ("ecc_sbe_volatile", 1.0, True),
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": ("ecc_dbe_volatile", 1.0, True),
    "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": ("ecc_sbe_aggregate", 1.0, True),
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": ("ecc_dbe_aggregate", 1.0, True),
    "DCGM_FI_DEV_RETIRED_SBE": ("retired_pages_sbe", 1.0, True),
    "DCGM_FI_DEV_RETIRED_DBE": ("retired_pages_dbe", 1.0, True),
    "DCGM_FI_DEV_RETIRED_PENDING": ("retired_pages_pending", 1.0, True),
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": ("remapped_rows_uncorrectable", 1.0, True),
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": ("remapped_rows_correctable", 1.0, True),
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": ("row_remap_failure", 1.0, True),
    "DCGM_FI_DEV_ROW_REMAP_PENDING": ("row_remap_pending", 1.0, True),
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": ("pcie_replay", 1.0, True),
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": ("nvlink_bandwidth_total", 1.0, True),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("power_limit_w", 1.0, False),
    "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": ("power_limit_enforced_w", 1.0, False),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gr_engine_active_ratio", 1.0, False),
    "DCGM_FI_PROF_SM_ACTIVE": ("sm_active_ratio", 1.0, False),
    "DCGM_FI_PROF_SM_OCCUPANCY": ("sm_occupancy_ratio", 1.0, False),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("tensor_active_ratio", 1.0, False),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("dram_active_ratio", 1.0, False),
    "DCGM_FI_PROF_PCIE_TX_BYTES": ("pcie_tx_bytes_per_s", 1.0, False),
    "DCGM_FI_PROF_PCIE_RX_BYTES": ("pcie_rx_bytes_per_s", 1.0, False),
}
# dcgm-exporter 1.x names (its "compatibility" counters file)
for _old, _new in {
    "dcgm_sm_clock": "DCGM_FI_DEV_SM_CLOCK", "dcgm_memory_clock": "DCGM_FI_DEV_MEM_CLOCK",
    "dcgm_memory_temp": "DCGM_FI_DEV_MEMORY_TEMP", "dcgm_gpu_temp": "DCGM_FI_DEV_GPU_TEMP",
    "dcgm_power_usage": "DCGM_FI_DEV_POWER_USAGE", "dcgm_total_energy_consumption": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "dcgm_pcie_replay_counter": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "dcgm_gpu_utilization": "DCGM_FI_DEV_GPU_UTIL",
    "dcgm_mem_copy_utilization": "DCGM_FI_DEV_MEM_COPY_UTIL", "dcgm_enc_utilization": "DCGM_FI_DEV_ENC_UTIL",
    "dcgm_dec_utilization": "DCGM_FI_DEV_DEC_UTIL", "dcgm_xid_errors": "DCGM_FI_DEV_XID_ERRORS",
    "dcgm_fb_free": "DCGM_FI_DEV_FB_FREE", "dcgm_fb_used": "DCGM_FI_DEV_FB_USED",
    "dcgm_nvlink_bandwidth_total": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "dcgm_fi_prof_gr_engine_active": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "dcgm_fi_prof_pipe_tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "dcgm_fi_prof_dram_active": "DCGM_FI_PROF_DRAM_ACTIVE",
    "dcgm_fi_prof_pcie_tx_bytes": "DCGM_FI_PROF_PCIE_TX_BYTES", "dcgm_fi_prof_pcie_rx_bytes": "DCGM_FI_PROF_PCIE_RX_BYTES",
}.items():
    FIELDS[_old] = FIELDS[_new]

#: Instant power beats the 1 s average when an exporter sends both.
_POWER_INSTANT = "DCGM_FI_DEV_POWER_USAGE_INSTANT"

#: NVLink error counters: the exporter sends either a per-GPU total or one line
#: per link (``..._L0`` .. ``..._L17``); per-link lines are summed per GPU, a
#: total (when present) wins over the sum.
_NVLINK = {
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT": "nvlink_crc_flit_errors",
    "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT": "nvlink_crc_data_errors",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT": "nvlink_replay_errors",
    "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT": "nvlink_recovery_errors",
}

#: page label -> sample tag (first one present wins for ``host``)
_TAGS = (("UUID", "uuid"), ("modelName", "model"), ("Hostname", "host"), ("hostname", "host"),
         ("pod", "pod"), ("namespace", "namespace"), ("container", "container"),
         ("hpc_job", "job"), ("job", "job"), ("GPU_I_ID", "gpu_instance"))


def _nvlink_field(name: str) -> tuple[str, bool] | None:
    """``(field, is_total)`` for an NVLink error metric, else None."""
    base, _, suffix = name.rpartition("_")
    if suffix == "TOTAL" and base in _NVLINK:
        return _NVLINK[base], True
    if suffix[:1] == "L" and suffix[1:].isdigit() and base in _NVLINK:
        return _NVLINK[base], False
    return None


#: GPUs a node may have when the inventory does not say (the model's ``gpus`` maximum), and
#: MIG instances per GPU (an H100/H200 has at most 7)
MAX_GPUS = 64
MAX_MIG = 7


def samples_from_page(metrics: Iterable[PromSample], base_tags: dict[str, str], time_ns: int,
                      gpus_expected: int | None = None, excess: set | None = None) -> list[Sample]:
    """Group a parsed exporter page by GPU and map known counters to ``gpu`` samples.

    Lines without a ``gpu`` label (the exporter's own metrics) are skipped.
    Tags come from the first line seen for each GPU; ``base_tags`` (inventory
    location) are kept, but the page's ``model`` (GPU model) wins over the node's.

    A page cannot add GPUs the node does not have: with ``gpus_expected`` (the
    inventory's count) only ``gpu`` labels 0..N-1 are kept, else the first
    :data:`MAX_GPUS`, and at most :data:`MAX_MIG` instances each; the series
    refused are added to ``excess`` (as ``(gpu, instance)``) for the poll sample.
    """
    limit = gpus_expected if gpus_expected and gpus_expected > 0 else None
    allowed = {str(i) for i in range(limit)} if limit else None
    gpu_ids: set[str] = set()
    mig: dict[str, int] = {}
    gpus: dict[tuple[str, str], dict] = {}
    tags_of: dict[tuple[str, str], dict[str, str]] = {}
    instant: dict[tuple[str, str], float] = {}
    link_sums: dict[tuple[str, str], dict[str, int]] = {}
    totals: dict[tuple[str, str], set[str]] = {}
    for name, labels, value in metrics:
        spec = FIELDS.get(name)
        nvlink = None
        if spec is None and name != _POWER_INSTANT:
            nvlink = _nvlink_field(name)
            if nvlink is None:
                continue
        gpu = labels.get("gpu")
        if gpu is None or is_blank(value) or math.isinf(value):
            continue
        key = (gpu, labels.get("GPU_I_ID", ""))
        fields = gpus.get(key)
        if fields is None:
            if (allowed is not None and gpu not in allowed) or (allowed is None and gpu not in gpu_ids
                                                                  and len(gpu_ids) >= MAX_GPUS) \
                    or (key[1] and mig.get(gpu, 0) >= MAX_MIG):
                if excess is not None:
                    excess.add(key)
                continue
            gpu_ids.add(gpu)
            if key[1]:
                mig[gpu] = mig.get(gpu, 0) + 1
            fields = gpus[key] = {}
            page_tags: dict[str, str] = {}
            for label, tag in _TAGS:
                v = labels.get(label)
                if v and tag not in page_tags:
                    page_tags[tag] = v
            tags_of[key] = {**base_tags, **page_tags, "gpu": gpu}
        if spec is not None:
            field, factor, integer = spec
            fields[field] = int(value * factor) if integer else value * factor
        elif nvlink is None:
            instant[key] = value
        else:
            field, is_total = nvlink
            if is_total:
                totals.setdefault(key, set()).add(field)
                fields[field] = int(value)
            else:
                sums = link_sums.setdefault(key, {})
                sums[field] = sums.get(field, 0) + int(value)
    out = []
    for key, fields in gpus.items():
        if key in instant:
            fields["power_w"] = instant[key]
        for field, total in link_sums.get(key, {}).items():
            if field not in totals.get(key, ()):
                fields[field] = total
        if fields:
            out.append(Sample("gpu", tags_of[key], fields, time_ns))
    return out


def _gpu_count(value: object) -> int | None:
    """The inventory's ``gpus`` (an int, or text from ``dcim probe --option gpus=8``), or None."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def missing_gpus(samples: list[Sample], expected: object) -> list[str]:
    """GPU indices 0..expected-1 with no sample (MIG instances count for their GPU)."""
    if isinstance(expected, str) and expected.isdigit():  # from ``dcim probe --option gpus=8``
        expected = int(expected)
    if not isinstance(expected, int) or isinstance(expected, bool) or expected <= 0:
        return []
    seen = {s.tags.get("gpu") for s in samples}
    return [str(i) for i in range(expected) if str(i) not in seen]


class DcgmCollector(Collector):
    """Scrapes ``http://host:port/metrics`` (dcgm-exporter, default port 9400)."""

    protocols = served_by(f"{__name__}:DcgmCollector")  # its rows in contract/protocols.py

    def __init__(self, max_body: int | None = None) -> None:
        self._http = HttpGetter(max_body) if max_body else HttpGetter()
        from collectors.gpu.dcgm_fastpath import PageDecoder  # it imports this module's tables
        self._decoder = PageDecoder()

    async def poll(self, target: Target) -> list[Sample]:
        path = str(target.options.get("path", "/metrics"))
        body = await self._http.get(target.host, target.port or 9400, path, target.timeout_s)
        time_ns = now_ns()
        expected = _gpu_count(target.options.get("gpus"))
        excess: set = set()
        try:
            samples, metrics = self._decoder.decode(target.device_id, body, target.tags, time_ns, expected, excess)
        except ValueError as exc:
            raise PollError("protocol", f"{target.address()}{path}: {exc}") from None
        if not samples:
            raise PollError("decode", f"{target.address()}{path}: page has {metrics} metrics but no DCGM GPU counters",
                            excess=len(excess))
        missing = missing_gpus(samples, expected)
        problems = []
        if missing:
            # A GPU that fell off the bus (XID 79) vanishes from the exporter's page rather than
            # reporting an error; the inventory's GPU count is how we notice.  The rest is good data.
            problems.append(f"GPU(s) {', '.join(missing)} missing from the page or all blank (inventory says {expected})")
        if excess:
            shown = ", ".join(sorted({g for g, _ in excess}, key=lambda g: (len(g), g))[:5])
            problems.append(f"{len(excess)} GPU series beyond the node's "
                            f"{expected if expected else f'{MAX_GPUS} (or {MAX_MIG} MIG instances)'} ignored (gpu {shown}"
                            f"{', ...' if len(excess) > 5 else ''})")
        if problems:
            raise PollError("device", f"{target.address()}{path}: " + "; ".join(problems), partial=samples,
                            excess=len(excess))
        return samples

    async def close(self) -> None:
        await self._http.close()
