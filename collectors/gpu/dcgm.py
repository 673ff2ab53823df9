"""DCGM exporter pages -> ``gpu`` samples, one per GPU per scrape.

``samples_from_page`` is pure (parsed metrics in, Samples out) so it is tested
on the real 8xH100 page and shared with the NVML collector's field names.
``PageDecoder`` is the hot path that gives the same samples from page bytes
without the general parse (see its section below); ``DcgmCollector`` does the
HTTP GET of ``http://host:port/metrics`` and decodes through it.

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
from operator import getitem, itemgetter
from typing import Iterable

from collectors.base import Collector, PollError, Target
from collectors.gpu.httpget import HttpGetter
from collectors.gpu.promtext import _NAME_RE, PromSample, _comment, _labels, parse
from contract.sample import Sample, now_ns
from contract.protocols import served_by

__all__ = ["samples_from_page", "missing_gpus", "PageDecoder", "DcgmCollector", "is_blank", "FIELDS", "MIB"]

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


# --------------------------------------------------------------------------- the fast path
#
# DCGM page bytes -> ``gpu`` samples in one regex pass, with each node's label sets parsed once.
#
# Why: at 43,000 GPU nodes the page decode is the collector's hot loop, and a
# node's page has the same shape every scrape — the same label set per GPU,
# repeated on every metric line, the same HELP/TYPE comments — only the values
# move.  :class:`PageDecoder` keeps, per node, what that shape costs to read:
#
# - each distinct label text, already validated and turned into the GPU key and
#   the sample tags (inventory tags + page tags + ``gpu``);
# - the comment lines already validated;
# - metric names known to be ignored.
#
# so a scrape costs one ``re.findall`` over the page plus a dict look-up and a
# ``float()`` per line.  It is an accelerator, never a second reading: anything
# the fast path does not handle exactly (escapes, timestamps, blank lines,
# leading or trailing blanks, label-less lines, NVLink per-link sums, instant
# power, a line it cannot account for) sends the whole page to the general
# path, ``samples_from_page(parse(body))``, which also produces every error
# message.  Tests assert both give identical samples (and identical lines) on
# the real capture, the twin's page, the full counter page and generated ones.

_MAX_LABEL_TEXTS = 4096
_MAX_COMMENTS = 8192   # distinct HELP/TYPE lines kept by one decoder (dcgm-exporter serves ~200)
_MAX_CORES = 1024      # distinct page shapes kept by one decoder (one per GPU model/count/exporter version)


class _Node:
    """What one node's pages cost to read, kept between scrapes."""

    __slots__ = ("base", "labels", "template", "metrics", "shape")

    def __init__(self, base: dict[str, str]) -> None:
        self.base = dict(base)
        #: label text -> (gpu key, tags) or None when the line has no ``gpu`` label
        self.labels: dict[str, tuple[tuple[str, str], dict[str, str]] | None] = {}
        #: the last page's shape, line by line: (text before the value, its length, what the value is for)
        self.template: list[tuple[str, int, object]] | None = None
        self.metrics = 0
        #: the template compiled for whole-page checks in C (:class:`_Shape`), built on its first use;
        #: once built, the template is dropped (the shape is what the node keeps between scrapes)
        self.shape: _Shape | None | bool = None


class _Admission:
    """The series cap of samples_from_page, applied where it creates a GPU's sample: a page cannot
    add GPUs the node does not have (0..N-1 with the inventory's count, else the first MAX_GPUS),
    nor more than MAX_MIG instances each; refused series go to ``excess``."""

    __slots__ = ("allowed", "gpu_ids", "mig", "excess")

    def __init__(self, gpus_expected: int | None) -> None:
        self.allowed = _allowed(gpus_expected)
        self.gpu_ids: set[str] = set()
        self.mig: dict[str, int] = {}
        self.excess: set = set()

    def admit(self, key: tuple[str, str]) -> bool:
        gpu, instance = key
        allowed = self.allowed
        if (allowed is not None and gpu not in allowed) or (allowed is None and gpu not in self.gpu_ids
                                                              and len(self.gpu_ids) >= MAX_GPUS) \
                or (instance and self.mig.get(gpu, 0) >= MAX_MIG):
            self.excess.add(key)
            return False
        self.gpu_ids.add(gpu)
        if instance:
            self.mig[gpu] = self.mig.get(gpu, 0) + 1
        return True


_ALLOWED: dict[int, frozenset[str]] = {}


def _allowed(gpus_expected: int | None) -> frozenset[str] | None:
    if not gpus_expected or gpus_expected <= 0:
        return None
    found = _ALLOWED.get(gpus_expected)
    if found is None:
        found = frozenset(str(i) for i in range(gpus_expected))
        if len(_ALLOWED) < 256:
            _ALLOWED[gpus_expected] = found
    return found


class PageDecoder:
    """``decode(node_id, body, base_tags, time_ns, n, excess)`` ==
    ``samples_from_page(parse(body), base_tags, time_ns, n, excess)``, with its metric count."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._ignored: set[str] = set()  # metric names neither mapped nor NVLink nor instant power
        self._names: set[str] = set()  # metric names already validated
        #: comment/blank lines already validated, each kept once for every node (their template refers to it)
        self._comments: dict[str, str] = {}
        #: what makes a page's shape (:class:`_Core`), one object per shape shared by the nodes that serve it
        self._cores: dict[tuple, _Core] = {}
        self.fast = 0
        self.general = 0

    def decode(self, node_id: str, body: bytes, base_tags: dict[str, str], time_ns: int,
               gpus_expected: int | None = None, excess: set | None = None) -> tuple[list[Sample], int]:
        """(samples, number of metric lines); raises ValueError('line N: ...') on a bad page."""
        node = self._nodes.get(node_id)
        if node is None or node.base != base_tags:
            node = self._nodes[node_id] = _Node(base_tags)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            got = None
            shape = node.shape
            if shape is None and node.template is not None:
                shape = node.shape = _Shape.compile(node.template, self._cores) or False
                if shape:
                    node.template = None  # the shape holds what is needed; an odd page is re-read by _fast
            if shape:
                got = shape.read(text, time_ns, _Admission(gpus_expected), node.metrics)
            elif node.template is not None:
                got = self._same_shape(node, text, time_ns, _Admission(gpus_expected))
            if got is None:
                got = self._fast(node, text, time_ns, _Admission(gpus_expected))
            if got is not None:
                self.fast += 1
                samples, metrics, refused = got
                if excess is not None:
                    excess |= refused
                return samples, metrics
        self.general += 1
        metrics = parse(body)
        return samples_from_page(metrics, base_tags, time_ns, gpus_expected, excess), len(metrics)

    def _fast(self, node: _Node, text: str, time_ns: int, admission: _Admission) -> tuple[list[Sample], int, set] | None:
        """The page read line by line as promtext.parse reads it; None sends it to the general path."""
        fields_of: dict[tuple[str, str], dict] = {}
        tags_of: dict[tuple[str, str], dict[str, str]] = {}
        label_cache = node.labels
        comments = self._comments
        ignored = self._ignored
        names = self._names
        fields_get = FIELDS.get
        metrics = 0
        template: list | None = []
        node.template = None
        for line in text.split("\n"):
            if not line:
                if template is not None:
                    template.append(("", 0, _EXACT))
                continue
            if line[0] in _BLANKS or line[-1] in _TRAILING:
                return None
            if line[0] == "#":
                known = comments.get(line)
                if known is None:
                    try:
                        _comment(line, 0)
                    except ValueError:
                        return None
                    known = line
                    if len(comments) < _MAX_COMMENTS:
                        comments[line] = line
                if template is not None:
                    template.append((known, 0, _EXACT))
                continue
            brace = line.find("{")
            close = line.rfind("}")
            if brace <= 0 or close < brace:
                return None  # label-less or broken line
            name = line[:brace]
            if name not in names:
                if not _NAME_RE.match(name):
                    return None
                if len(names) < 8192:
                    names.add(name)
            rest = line[close + 1:].split()
            if len(rest) != 1 or "_" in rest[0]:
                return None  # timestamp, no value, trailing text, ``1_0``
            try:
                value = float(rest[0])
            except ValueError:
                return None
            metrics += 1
            ltext = line[brace + 1:close]
            entry = label_cache.get(ltext, False)
            if entry is False:
                try:
                    labels = _labels(ltext, 0)
                except ValueError:
                    return None
                entry = _entry(labels, node.base)
                if len(label_cache) >= _MAX_LABEL_TEXTS:
                    label_cache.clear()
                label_cache[ltext] = entry
            spec = fields_get(name)
            if template is not None:
                # a template line only for the plain form ``NAME{LABELS} VALUE``
                if line[close + 1:close + 2] == " " and line[close + 2:] == rest[0]:
                    action = _VALUE_ONLY if spec is None or entry is None else (*entry, *spec)
                    template.append((line[:close + 2], close + 2, action))
                else:
                    template = None
            if spec is None:
                if name in ignored:
                    continue
                if name == _POWER_INSTANT or _nvlink_field(name) is not None:
                    return None  # instant-power preference and NVLink sums: general path
                if len(ignored) < 4096:
                    ignored.add(name)
                continue
            if entry is None or is_blank(value) or value == _INF or value == _NINF:
                continue
            key, tags = entry
            fields = fields_of.get(key)
            if fields is None:
                if not admission.admit(key):
                    continue
                fields = fields_of[key] = {}
                tags_of[key] = tags
            field, factor, integer = spec
            fields[field] = int(value * factor) if integer else value * factor
        node.template, node.metrics, node.shape = template, metrics, None
        return ([Sample("gpu", tags_of[key].copy(), fields, time_ns) for key, fields in fields_of.items() if fields],
                metrics, admission.excess)

    @staticmethod
    def _same_shape(node: _Node, text: str, time_ns: int, admission: _Admission) -> tuple[list[Sample], int, set] | None:
        """The page read against the node's last shape: only the values are new; None if the shape moved."""
        lines = text.split("\n")
        template = node.template
        if len(lines) != len(template):
            return None
        fields_of: dict[tuple[str, str], dict] = {}
        tags_of: dict[tuple[str, str], dict[str, str]] = {}
        for line, (prefix, plen, action) in zip(lines, template):
            if action is _EXACT:
                if line != prefix:
                    return None
                continue
            if not line.startswith(prefix):
                return None
            token = line[plen:]
            if "_" in token:
                return None
            try:
                value = float(token)  # float() takes surrounding blanks exactly as parse's split() drops them
            except ValueError:
                return None
            if action is _VALUE_ONLY:
                continue
            if not _NINF < value < _BLANK_FLOOR and (value != value or value == _NINF or value == _INF or is_blank(value)):
                continue
            key, tags, field, factor, integer = action
            fields = fields_of.get(key)
            if fields is None:
                if not admission.admit(key):
                    continue
                fields = fields_of[key] = {}
                tags_of[key] = tags
            fields[field] = int(value * factor) if integer else value * factor
        return ([Sample("gpu", tags_of[key].copy(), fields, time_ns) for key, fields in fields_of.items() if fields],
                node.metrics, admission.excess)


class _Core:
    """What makes a page's shape, shared by every node that serves it: line count, which lines are
    comments (and their text), where each value starts, which values map to which GPU and field.

    Why: nodes of one model serve pages that differ only in label values (Hostname, UUID, pod);
    at 43,000 nodes a copy of this per node was most of a shard's memory.
    """

    __slots__ = ("lines", "exact_get", "exact", "value_get", "slices", "mapped_get", "groups")


class _Shape:
    """A node's page template compiled so that a page of that shape is checked and read by C loops.

    Why: ``_same_shape`` walks the page's ~100 lines in Python (a ``startswith``, a slice, a
    ``float()`` and a few tests per line); at 43,000 nodes that loop was a third of a page's
    service-path CPU.  Here the checks run over the whole page at once (tuple equality of the
    comment lines, ``map(str.startswith)`` over the metric lines, ``map(float)`` over their
    values), and the samples are built from the values in page order.

    Per node it keeps only what is the node's own: the text before each value (it holds the
    node's label values) and the sample tags of each GPU; the rest is a :class:`_Core` shared
    by the nodes whose pages have that shape.

    It gives exactly what ``_same_shape`` gives or None (then ``_fast`` reads the page):
    stricter only in sending more pages back, never in reading one differently.  A page whose
    mapped values include a blank sentinel, NaN or an infinity goes back, since those are
    dropped value by value there.
    """

    __slots__ = ("core", "prefixes", "tags")

    @classmethod
    def compile(cls, template: list[tuple[str, int, object]], cores: dict[tuple, _Core]) -> "_Shape | None":
        exact_idx = [i for i, (_, _, action) in enumerate(template) if action is _EXACT]
        value_idx = [i for i, (_, _, action) in enumerate(template) if action is not _EXACT]
        mapped = [v for v, i in enumerate(value_idx) if template[i][2] is not _VALUE_ONLY]
        if len(exact_idx) < 2 or len(mapped) < 2:
            return None  # itemgetter of one index is not a tuple; such pages are not worth compiling
        groups: dict[tuple[str, str], tuple[dict[str, str], list]] = {}
        for v in mapped:
            key, tags, field, factor, integer = template[value_idx[v]][2]
            groups.setdefault(key, (tags, []))[1].append((v, field, factor, integer))
        # everything but the prefixes' text and the tags: two templates with this key compile to
        # the same core (the tags come in the groups' order, which the key fixes)
        shape_key = (len(template), tuple(exact_idx), tuple(template[i][0] for i in exact_idx),
                     tuple(value_idx), tuple(template[i][1] for i in value_idx),
                     tuple((key, tuple(entries)) for key, (_, entries) in groups.items()))
        core = cores.get(shape_key)
        if core is None:
            core = cls._core(template, exact_idx, value_idx, mapped, groups)
            if len(cores) < _MAX_CORES:
                cores[shape_key] = core
        self = cls()
        self.core = core
        self.prefixes = tuple(template[i][0] for i in value_idx)
        self.tags = tuple(tags for tags, _ in groups.values())
        return self

    @staticmethod
    def _core(template: list, exact_idx: list[int], value_idx: list[int], mapped: list[int],
              groups: dict[tuple[str, str], tuple[dict[str, str], list]]) -> _Core:
        core = _Core()
        core.lines = len(template)
        core.exact_get = itemgetter(*exact_idx)
        core.exact = tuple(template[i][0] for i in exact_idx)
        core.value_get = itemgetter(*value_idx)
        core.slices = tuple(_slice_from(template[i][1]) for i in value_idx)
        core.mapped_get = itemgetter(*mapped)
        core.groups = []
        for key, (_, entries) in groups.items():
            # values go in as read, in page order (a field named twice keeps its first place and
            # its last value, as assignment line by line does); then the few that need a factor
            # or an integer are converted in place, by the spec of their last line
            convert = {field: (factor, integer) for _, field, factor, integer in entries}
            convert = tuple((f, fa, it) for f, (fa, it) in convert.items() if fa != 1.0 or it)
            get = itemgetter(*(v for v, *_ in entries))
            if len(entries) == 1:
                get = (lambda g: lambda vals: (g(vals),))(get)
            core.groups.append((key, tuple(f for _, f, _, _ in entries), get, convert))
        return core

    def read(self, text: str, time_ns: int, admission: _Admission, metrics: int) -> tuple[list[Sample], int, set] | None:
        core = self.core
        lines = text.split("\n")
        if len(lines) != core.lines or core.exact_get(lines) != core.exact:
            return None
        values = core.value_get(lines)
        if not all(map(str.startswith, values, self.prefixes)):
            return None
        tokens = list(map(getitem, values, core.slices))
        if "_" in "".join(tokens):
            return None
        try:
            vals = list(map(float, tokens))  # the unmapped lines' values are checked too, as parse checks them
        except ValueError:
            return None
        kept = core.mapped_get(vals)
        total = sum(kept)
        if total - total != 0.0:
            return None  # NaN or an infinity among them: dropped one by one in _same_shape
        if max(kept) >= _BLANK_FLOOR and any(is_blank(v) for v in kept if v >= _BLANK_FLOOR):
            return None  # a blank sentinel (energy in mJ is the usual big value, and not one)
        out = []
        for (key, names, get, convert), tags in zip(core.groups, self.tags):
            if admission.admit(key):
                fields = dict(zip(names, get(vals)))
                for field, factor, integer in convert:
                    fields[field] = int(fields[field] * factor) if integer else fields[field] * factor
                out.append(Sample("gpu", tags.copy(), fields, time_ns))
        return out, metrics, admission.excess


_SLICES: dict[int, slice] = {}


def _slice_from(start: int) -> slice:
    """``slice(start, None)``, one object per start shared by every node (43,000 nodes x 88 lines)."""
    found = _SLICES.get(start)
    if found is None:
        found = slice(start, None)
        if len(_SLICES) < 65536:
            _SLICES[start] = found
    return found


_EXACT = "exact"            # template line that must come back byte for byte (comment, blank)
_VALUE_ONLY = "value only"  # a metric line whose value is checked but not mapped
_BLANK_FLOOR = float(0x7FFFFFF0)  # every DCGM blank sentinel is at or above this
_BLANKS = " \t"
_TRAILING = " \t\r"
_INF, _NINF = float("inf"), float("-inf")


def _entry(labels: dict[str, str], base: dict[str, str]) -> tuple[tuple[str, str], dict[str, str]] | None:
    """The GPU key and sample tags of one label set, as samples_from_page builds them."""
    gpu = labels.get("gpu")
    if gpu is None:
        return None
    page_tags: dict[str, str] = {}
    for label, tag in _TAGS:
        v = labels.get(label)
        if v and tag not in page_tags:
            page_tags[tag] = v
    return (gpu, labels.get("GPU_I_ID", "")), {**base, **page_tags, "gpu": gpu}


class DcgmCollector(Collector):
    """Scrapes ``http://host:port/metrics`` (dcgm-exporter, default port 9400)."""

    protocols = served_by(f"{__name__}:DcgmCollector")  # its rows in contract/protocols.py

    def __init__(self, max_body: int | None = None) -> None:
        self._http = HttpGetter(max_body) if max_body else HttpGetter()
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
