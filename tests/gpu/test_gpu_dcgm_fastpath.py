"""The DCGM fast path reads every page exactly as the general path (parse + samples_from_page) does.

Same page -> same samples (tags, fields, field types and order) and the same line protocol;
same bad page -> the same error.  Each page is decoded twice, so both the first reading
(which learns the node's label sets and page shape) and the shape-matching one are checked.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from collectors.gpu.dcgm import FIELDS, samples_from_page
from collectors.gpu.dcgm import PageDecoder
from collectors.gpu.promtext import parse
from simulator.http_endpoints import dcgm_page
from simulator.model import DeviceState, GpuState
from sinks.lineprotocol import sample_line
from testkit.testdata import shared_testdata
from tests.gpu.test_gpu_dcgm import SYNTH

REAL = (shared_testdata() / "gpu" / "nvidia-aicr_h100x8_dcgm-exporter_sample.prom").read_bytes()
BASE = {"site": "tetouan", "hall": "h1", "rack": "h1-r01-k01", "device": "n1", "model": "SYS-821GE-TNHR"}


def _twin(step: int = 0, gpus: int = 8) -> bytes:
    state = DeviceState(power_w=5000.0, gpus=[GpuState(util=0.1 * g, power_w=300.0 + g + step * 0.375, temp_c=40.0 + g,
                                                       memory_temp_c=45.0, energy_mj=3.6e9 + step * 1e6, xid=int(g == 3))
                                              for g in range(gpus)])
    return dcgm_page("n1", state)


def _full() -> bytes:
    """Every counter of dcgm-exporter's default-counters.csv for the real page's 8 label sets."""
    labels = {}
    for line in REAL.decode().splitlines():
        if line.startswith("DCGM_FI_DEV_GPU_TEMP{"):
            labels[line[line.index("{") + 1:line.rindex("}")]] = None
    out = []
    for row in (shared_testdata() / "gpu" / "default-counters.csv").read_text().splitlines():
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        name, kind, help_text = (p.strip() for p in row.split(",", 2))
        if kind == "label":
            continue
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}")
        out += [f"{name}{{{lab}}} {i * 7 + len(name)}.{len(lab) % 1000}" for i, lab in enumerate(labels)]
    return ("\n".join(out) + "\n").encode()


def _view(samples) -> list:
    cache: dict = {}
    return [(s.measurement, s.tags, [(k, type(v), v) for k, v in s.fields.items()], s.time_ns, sample_line(s, cache))
            for s in samples]


def _agree(decoder: PageDecoder, body: bytes, node: str = "n1", base: dict = BASE, gpus: int | None = None) -> list:
    want_excess: set = set()
    want = samples_from_page(parse(body), base, 7, gpus, want_excess)
    for _ in range(2):
        excess: set = set()
        got, metrics = decoder.decode(node, body, base, 7, gpus, excess)
        assert _view(got) == _view(want)
        assert excess == want_excess
        assert metrics == len(parse(body))
    return want


@pytest.mark.parametrize("page", ["real", "twin", "full", "synthetic"])
def test_same_page_same_samples_and_lines(page):
    body = {"real": REAL, "twin": _twin(), "full": _full(), "synthetic": SYNTH.encode()}[page]
    decoder = PageDecoder()
    samples = _agree(decoder, body)
    assert len(samples) >= 3
    if page in ("real", "twin", "full"):
        assert decoder.fast == 2 and decoder.general == 0  # the pages the fleet serves take the fast path
    else:
        assert decoder.general == 2  # NVLink sums and instant power: the general path's business


def test_values_moving_and_shape_changing_between_scrapes():
    decoder = PageDecoder()
    for step in range(4):
        _agree(decoder, _twin(step))
    _agree(decoder, _twin(9, gpus=7))          # a GPU fell off the bus: a new shape
    _agree(decoder, _twin(10, gpus=8))
    _agree(decoder, REAL)                      # another exporter behind the same node id
    other = {**BASE, "rack": "h1-r02-k01"}     # the inventory moved the node: new tags
    _agree(decoder, REAL, base=other)
    assert decoder.fast >= 14


@pytest.mark.parametrize("gpus, extra", [(8, 0), (6, 0), (None, 70), (8, 12)])
def test_the_series_cap_is_the_general_paths(gpus, extra):
    """GPUs beyond the inventory's count (or MAX_GPUS), and MIG instances beyond MAX_MIG, are refused alike."""
    lines = [REAL.decode()]
    for g in range(8, 8 + extra):
        lines.append(f'DCGM_FI_DEV_GPU_TEMP{{gpu="{g}",UUID="GPU-x{g}",Hostname="n1"}} 40\n')
    if gpus == 8 and extra:
        lines += [f'DCGM_FI_DEV_GPU_TEMP{{gpu="1",UUID="GPU-1",GPU_I_ID="{i}"}} 41\n' for i in range(extra)]
    decoder = PageDecoder()
    samples = _agree(decoder, "".join(lines).encode(), gpus=gpus)
    assert decoder.fast == 2 and samples


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("\n", "\n\n", 3),                                   # blank lines
    lambda t: t.replace("\n", "\r\n"),                                      # CRLF
    lambda t: t.replace('} 30', '} 30 1700000000000', 1),                  # a timestamp
    lambda t: t.replace('modelName="', 'modelName="a\\"b ', 1),              # an escape
    lambda t: t.replace('} 30', '}   30  ', 1),                            # extra blanks
    lambda t: t.replace('} 30', '} 2147483632', 2),                         # INT32 blank
    lambda t: t.replace('} 30', '} NaN', 1).replace('} 31', '} +Inf', 1),  # NaN, Inf
    lambda t: "up 1\n" + t,                                                 # a line without labels
    lambda t: t.replace('gpu="0",', '', 1),                                 # a line without a gpu label
    lambda t: t + 'DCGM_FI_DEV_POWER_USAGE_INSTANT{gpu="0"} 99.5\n',       # instant power
    lambda t: t + "# a free comment\nunknown_metric{gpu=\"1\"} 4\n",
    lambda t: t.rstrip("\n"),                                               # no final newline
])
def test_unusual_but_valid_pages_agree(edit):
    body = edit(REAL.decode()).encode()
    decoder = PageDecoder()
    _agree(decoder, REAL)        # learn the usual shape first
    _agree(decoder, body)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("} 30", "} 3_0", 1),
    lambda t: t.replace("} 30", "} 30abc", 1),
    lambda t: t.replace("} 30", "}", 1),
    lambda t: t.replace('gpu="0"', 'gpu=0', 1),
    lambda t: t.replace('gpu="0"', 'gpu="0",gpu="1"', 1),
    lambda t: t.replace("DCGM_FI_DEV_GPU_TEMP{", "9bad{", 1),
    lambda t: t + "# TYPE m\n",
    lambda t: t[: len(t) // 2],
])
def test_bad_pages_raise_the_general_error(edit):
    body = edit(REAL.decode()).encode()
    with pytest.raises(ValueError) as want:
        parse(body)
    decoder = PageDecoder()
    decoder.decode("n1", REAL, BASE, 1)
    with pytest.raises(ValueError) as got:
        decoder.decode("n1", body, BASE, 1)
    assert str(got.value) == str(want.value)


_METRICS = sorted(FIELDS)[:12] + ["DCGM_FI_DEV_POWER_USAGE_INSTANT", "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L0",
                                  "exporter_build_info"]
_VALUES = st.sampled_from(["0", "30", "-1.5", "1e3", "NaN", "+Inf", "-Inf", "2147483632", "140737488355328",
                           "9223372036854775792", "4.25"]) | st.floats(-1e6, 1e12).map(repr)
_LABEL_VALUE = st.text(alphabet=list('ab0 ,=}{"\\'), max_size=6).map(
    lambda s: s.replace("\\", "\\\\").replace('"', '\\"'))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_METRICS), st.sampled_from(["0", "1", "2", None]), _LABEL_VALUE,
                          _VALUES, _VALUES), min_size=1, max_size=20))
def test_generated_pages_agree(rows):
    first, second = [], []
    for name, gpu, host, v1, v2 in rows:
        labels = (f'gpu="{gpu}",' if gpu is not None else "") + f'UUID="GPU-{gpu}",Hostname="{host}"'
        first.append(f"{name}{{{labels}}} {v1}")
        second.append(f"{name}{{{labels}}} {v2}")
    decoder = PageDecoder()
    for page in (first, second):
        body = ("# HELP x y\n" + "\n".join(page) + "\n").encode()
        want = samples_from_page(parse(body), BASE, 7)
        got, _ = decoder.decode("n1", body, BASE, 7)
        assert _view(got) == _view(want)
    assert not any(isinstance(v, float) and math.isnan(v) for s in got for v in s.fields.values())


def _node_page(host: str, gpus: int = 8, step: int = 0) -> bytes:
    state = DeviceState(power_w=5000.0, gpus=[GpuState(util=0.1 * g, power_w=300.0 + g + step, temp_c=40.0 + g,
                                                       memory_temp_c=45.0, energy_mj=3.6e9, xid=0)
                                              for g in range(gpus)])
    return dcgm_page(host, state)


def test_nodes_with_one_shape_share_it_and_keep_their_own_tags():
    decoder = PageDecoder()
    bases = {n: {**BASE, "device": n, "rack": f"h1-r01-{n}"} for n in ("n1", "n2", "n3")}
    for step in range(2):
        for n in ("n1", "n2"):
            _agree(decoder, _node_page(n, step=step), node=n, base=bases[n])
    a, b = decoder._nodes["n1"].shape, decoder._nodes["n2"].shape
    assert a and b and a is not b
    assert a.core is b.core                   # one shape object for both nodes
    assert a.prefixes != b.prefixes           # each keeps its own label values (Hostname)
    got_a, _ = decoder.decode("n1", _node_page("n1", step=5), bases["n1"], 9, 8)
    got_b, _ = decoder.decode("n2", _node_page("n2", step=5), bases["n2"], 9, 8)
    assert {s.tags["device"] for s in got_a} == {"n1"} and {s.tags["device"] for s in got_b} == {"n2"}
    assert [s.fields for s in got_a] == [s.fields for s in got_b]
    # a node whose page changes shape (a GPU fell off the bus) gets its own, not the other node's
    for _ in range(2):
        _agree(decoder, _node_page("n3", gpus=7), node="n3", base=bases["n3"], gpus=8)
    c = decoder._nodes["n3"].shape
    assert c and c.core is not a.core
    _agree(decoder, _node_page("n2", gpus=7, step=3), node="n2", base=bases["n2"], gpus=8)
    _agree(decoder, _node_page("n2", gpus=7, step=4), node="n2", base=bases["n2"], gpus=8)
    assert decoder._nodes["n2"].shape.core is c.core and decoder._nodes["n1"].shape.core is a.core
    assert len(decoder._cores) == 2
