"""promtext.parse agrees with prometheus_client's parser, and rejects garbage with the line number."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client.parser import text_string_to_metric_families

from collectors.gpu.promtext import parse
from testkit.testdata import shared_testdata

PAGE = shared_testdata() / "gpu" / "nvidia-aicr_h100x8_dcgm-exporter_sample.prom"


def _reference(text: str) -> list[tuple[str, dict, float]]:
    """prometheus_client's reading, flattened (pages here have no counters, which it renames)."""
    return [(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for (n1, l1, v1), (n2, l2, v2) in zip(a, b):
        if n1 != n2 or l1 != l2:
            return False
        if not (v1 == v2 or (math.isnan(v1) and math.isnan(v2))):
            return False
    return True


def test_real_dcgm_page_agrees_with_prometheus_client():
    body = PAGE.read_bytes()
    mine = parse(body)
    ref = _reference(body.decode())
    assert len(mine) == body.decode().strip().count("\n") + 1  # one sample per non-blank line on this page
    assert _same(mine, ref), (mine[:3], ref[:3])
    assert {n for n, _, _ in mine} == {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL",
                                       "DCGM_FI_DEV_MEM_COPY_UTIL"}


def test_help_type_timestamps_specials_and_blank_lines():
    text = ('# HELP up The scrape\\n "worked".\n# TYPE up gauge\n\nup 1\n'
            '# a free comment\n'
            'temp{sensor="a b",x="{}=,"} NaN 1700000000000\n'
            'temp{sensor="c"} +Inf\n'
            'temp{ sensor = "d" , } -Inf\n'
            '  spaced{a="1"}   2.5e3  \r\n')
    mine = parse(text.encode())
    assert _same(mine, _reference(text))
    assert mine[0] == ("up", {}, 1.0)
    assert mine[1][1] == {"sensor": "a b", "x": "{}=,"} and math.isnan(mine[1][2])
    assert mine[2][2] == math.inf and mine[3][2] == -math.inf and mine[3][1] == {"sensor": "d"}
    assert mine[4] == ("spaced", {"a": "1"}, 2500.0)


def test_escapes_match_prometheus_client():
    text = 'm{a="back\\\\slash",b="q\\"uote",c="new\\nline",d="keep\\tbackslash",e="\\\\n"} 3\n'
    mine = parse(text)
    assert _same(mine, _reference(text))
    assert mine[0][1] == {"a": "back\\slash", "b": 'q"uote', "c": "new\nline", "d": "keep\\tbackslash", "e": "\\n"}


def test_labels_are_independent_dicts():
    rows = parse(b'a{x="1"} 1\nb{x="1"} 2\n')
    rows[0][1]["x"] = "changed"
    assert rows[1][1] == {"x": "1"}


@pytest.mark.parametrize("body, line, words", [
    (b'ok 1\nDCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-c4', 2, "not closed"),
    (b'ok 1\nok 2\nm{gpu="0",uuid="abc} 1\n', 3, "unterminated"),
    (b'm{gpu="0"}\n', 1, "no value"),
    (b'm{gpu="0"} 12abc\n', 1, "invalid value"),
    (b'm 1 2 3\n', 1, "unexpected text"),
    (b'm 1 notatime\n', 1, "timestamp"),
    (b'9bad 1\n', 1, "invalid metric name"),
    (b'm{gpu=0} 1\n', 1, "labels"),
    (b'm{gpu="0" uuid="1"} 1\n', 1, "','"),
    (b'm{gpu="0",gpu="1"} 1\n', 1, "duplicate"),
    (b'm{g-pu="0"} 1\n', 1, "invalid label name"),
    (b'm{__x="0"} 1\n', 1, "reserved"),
    (b'# TYPE m\n', 1, "without a type"),
    (b'm 1_000\n', 1, "invalid value"),
    (b'ok 1\n\xff\xfe 1\n', 2, "UTF-8"),
    (b'm{a="x\\"} 1\n', 1, "unterminated"),
])
def test_garbage_names_the_line(body, line, words):
    with pytest.raises(ValueError, match=rf"^line {line}: .*{words}"):
        parse(body)


_label_value = st.text(alphabet=st.sampled_from(list('ab \\"\n{}=,#\t\u00e9\u4e2d')) | st.characters(
    blacklist_categories=("Cs",)), max_size=12)
_label_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(lambda s: not s.startswith("__"))
_metric_name = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
_value = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**63, 2**63)


def _render(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_metric_name, st.dictionaries(_label_name, _label_value, max_size=5), _value,
                          st.none() | st.integers(0, 2**41), st.booleans()), min_size=1, max_size=12))
def test_generated_pages_agree_with_prometheus_client(rows):
    lines = []
    for name, labels, value, ts, typed in rows:
        if typed:
            lines.append(f"# TYPE {name} gauge")
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_render(value)}" + (f" {ts}" if ts is not None else ""))
    text = "\n".join(lines) + "\n"
    mine = parse(text.encode())
    assert _same(mine, _reference(text)), text
    assert [labels for _, labels, _ in mine] == [labels for _, labels, _, _, _ in rows]
