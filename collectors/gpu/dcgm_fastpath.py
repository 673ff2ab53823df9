"""DCGM page bytes -> ``gpu`` samples in one regex pass, with each node's label sets parsed once.

Why: at 43,000 GPU nodes the page decode is the collector's hot loop, and a
node's page has the same shape every scrape — the same label set per GPU,
repeated on every metric line, the same HELP/TYPE comments — only the values
move.  :class:`PageDecoder` keeps, per node, what that shape costs to read:

- each distinct label text, already validated and turned into the GPU key and
  the sample tags (inventory tags + page tags + ``gpu``);
- the comment lines already validated;
- metric names known to be ignored.

so a scrape costs one ``re.findall`` over the page plus a dict look-up and a
``float()`` per line.  It is an accelerator, never a second reading: anything
the fast path does not handle exactly (escapes, timestamps, blank lines,
leading or trailing blanks, label-less lines, NVLink per-link sums, instant
power, a line it cannot account for) sends the whole page to the general
path, ``samples_from_page(parse(body))``, which also produces every error
message.  Tests assert both give identical samples (and identical lines) on
the real capture, the twin's page, the full counter page and generated ones.
"""
from __future__ import annotations

from collectors.gpu.dcgm import (_POWER_INSTANT, _TAGS, FIELDS, MAX_GPUS, MAX_MIG, _nvlink_field, is_blank,
                                 samples_from_page)
from collectors.gpu.promtext import _NAME_RE, _comment, _labels, parse
from contract.sample import Sample

__all__ = ["PageDecoder"]

_MAX_LABEL_TEXTS = 4096


class _Node:
    """What one node's pages cost to read, kept between scrapes."""

    __slots__ = ("base", "labels", "comments", "template", "metrics")

    def __init__(self, base: dict[str, str]) -> None:
        self.base = dict(base)
        #: label text -> (gpu key, tags) or None when the line has no ``gpu`` label
        self.labels: dict[str, tuple[tuple[str, str], dict[str, str]] | None] = {}
        self.comments: set[str] = set()
        #: the last page's shape, line by line: (text before the value, its length, what the value is for)
        self.template: list[tuple[str, int, object]] | None = None
        self.metrics = 0


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
            if node.template is not None:
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
        comments = node.comments
        ignored = self._ignored
        names = self._names
        fields_get = FIELDS.get
        metrics = 0
        template: list | None = []
        node.template = None
        for line in text.split("\n"):
            if not line:
                if template is not None:
                    template.append((line, 0, _EXACT))
                continue
            if line[0] in _BLANKS or line[-1] in _TRAILING:
                return None
            if line[0] == "#":
                if line not in comments:
                    try:
                        _comment(line, 0)
                    except ValueError:
                        return None
                    if len(comments) < 1024:
                        comments.add(line)
                if template is not None:
                    template.append((line, 0, _EXACT))
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
        node.template, node.metrics = template, metrics
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
