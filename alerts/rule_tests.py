"""``dcim alerts test FILE``: unit tests for rule files, in the spirit of ``promtool test rules``.

A test file says which rules (and optionally which site) to load, gives input
series with times, and states which alerts must be firing at given times::

    rules: ../rules/site.yaml          # relative to this file
    site: ../../inventory/examples/tetouan.yaml   # optional (selectors, suppression)
    interval_s: 10                     # spacing of `values` (default 10)
    samples:
      - measurement: pdu
        tags: {device: h1-r01-k01-pdu-a, phase: '1'}
        field: current_a
        values: "20 26x3 21 _ 20"      # 26x3 = 26 three times; _ = no sample
      - measurement: ups
        tags: {device: ups-1a}
        field: on_battery
        points: [[0, false], [35, true]]   # explicit [seconds, value]
    expect:
      - at: 40
        firing:
          - {rule: pdu-phase-current-high, device: h1-r01-k01-pdu-a, phase: '1'}
      - at: 90
        firing: []

At each ``at`` the set of firing alerts must equal the expected set; an
expectation matches an alert when every key it gives (rule, device, severity,
any series tag, ``suppressed: true|false``, ``value``) matches.  The engine is
the real one, driven with a tick every ``tick_s`` (default 1 s) of simulated time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.evaluate import Alert, Engine
from alerts.rules import RuleError, load_rules
from alerts.suppression import Suppressor
from contract.sample import Sample
from inventory.errors import InventoryIssue, where
from inventory.loader import line_for, load_model, read_text, format_path

__all__ = ["run_test_file", "TestResult", "expand_values", "MAX_VALUES", "MAX_TICKS", "project_root"]

_NS = 1_000_000_000
T0 = 1_767_225_600 * _NS  # 2026-01-01T00:00:00Z: a fixed origin so outputs are reproducible
#: bounds that keep a test file's cost small whatever it says: values per
#: series after expansion, and engine ticks per file (a week at 1 s is 604,800)
MAX_VALUES = 100_000
MAX_TICKS = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesSpec(_Strict):
    measurement: str
    tags: dict[str, str] = Field(default_factory=dict)
    field: str
    values: str | None = None
    points: list[tuple[float, float | bool | str]] | None = None

    @field_validator("values")
    @classmethod
    def _values(cls, v: str | None) -> str | None:
        if v is not None:
            expand_values(v)
        return v

    @model_validator(mode="after")
    def _one(self) -> "SeriesSpec":
        if (self.values is None) == (self.points is None):
            raise ValueError("give exactly one of values: or points:")
        return self


class Expect(_Strict):
    at: float
    firing: list[dict[str, Any]]


class TestFile(_Strict):
    rules: str
    site: str | None = None
    interval_s: float = Field(default=10.0, gt=0, le=86400)
    tick_s: float = Field(default=1.0, gt=0, le=86400)
    samples: list[SeriesSpec]
    expect: list[Expect]

    @model_validator(mode="after")
    def _bounded(self) -> "TestFile":
        span = max([e.at for e in self.expect] + [0.0])
        for s in self.samples:
            if s.values is not None:
                span = max(span, len(expand_values(s.values)) * self.interval_s)
            for t, _ in s.points or []:
                span = max(span, t)
        if span / self.tick_s > MAX_TICKS:
            raise ValueError(f"the test spans {span:g} s at tick_s {self.tick_s:g}: more than {MAX_TICKS} ticks; "
                             "shorten it or raise tick_s")
        return self


def expand_values(text: str) -> list[float | bool | None]:
    """``"1 2 3x2 _ true"`` -> [1, 2, 3, 3, None, True]; ``aXn`` repeats, ``a+bxn`` counts up n steps."""
    out: list[float | bool | None] = []
    for tok in text.split():
        if len(out) > MAX_VALUES:
            break
        if tok == "_":
            out.append(None)
        elif tok in ("true", "false"):
            out.append(tok == "true")
        elif "x" in tok:
            head, _, n = tok.partition("x")
            if not n.isdigit():
                raise ValueError(f"bad repeat {tok[:40]!r}: write 26x3 or 10+2x5")
            if len(n) > 6 or len(out) + int(n) > MAX_VALUES:
                raise ValueError(f"more than {MAX_VALUES} values in one series (repeat {tok[:40]!r})")
            if "+" in head[1:] or "-" in head[1:]:
                sign_at = max(head.rfind("+"), head.rfind("-"))
                a, b = float(head[:sign_at]), float(head[sign_at:])
                out.extend(a + b * i for i in range(int(n) + 1))
            else:
                out.extend([float(head)] * int(n))
        else:
            try:
                out.append(float(tok))
            except ValueError:
                raise ValueError(f"bad value {tok[:40]!r}: a number, true, false, _ or a repeat like 26x3") from None
    if len(out) > MAX_VALUES:
        raise ValueError(f"more than {MAX_VALUES} values in one series")
    return out


class TestResult:
    def __init__(self, path: str) -> None:
        self.path = path
        self.failures: list[str] = []
        self.checked = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def _matches(exp: dict[str, Any], a: Alert) -> bool:
    for k, v in exp.items():
        if k == "suppressed":
            if bool(a.suppressed_by) != bool(v):
                return False
            continue
        actual = {"rule": a.rule, "device": a.device, "severity": a.severity, "value": a.value,
                  **a.location, **a.series, **a.labels}.get(k)
        if isinstance(v, (int, float)) and isinstance(actual, (int, float)) and not isinstance(v, bool):
            if abs(float(v) - float(actual)) > 1e-9:
                return False
        elif str(actual) != str(v) if not isinstance(v, bool) else actual != v:
            return False
    return True


def _show(a: Alert) -> str:
    extra = "".join(f" {k}={v}" for k, v in a.series.items() if k != "device")
    sup = f" suppressed_by={a.suppressed_by}" if a.suppressed_by else ""
    return f"{{rule: {a.rule}, device: {a.device}{extra}, value: {a.value}{sup}}}"


def project_root(path: Path) -> Path:
    """The tree a test file may reach into: its project (nearest ancestor holding
    ``.git`` or ``pyproject.toml``), else its own directory."""
    here = path.resolve().parent
    for d in (here, *here.parents):
        if (d / ".git").exists() or (d / "pyproject.toml").is_file():
            return d
    return here


def _referenced(p: Path, tf_lines, key: str, value: str, allow: tuple[Path, ...]) -> Path:
    """A path named in a test file, refused when it leaves the file's project tree.

    A test file is data someone may hand you; it must not make ``dcim alerts
    test`` read (and report on) ``/etc/shadow``.  A path given on the command
    line (``--allow``) is the operator's own choice and is let through.
    """
    target = (p.parent / value).resolve()
    root = project_root(p)
    if target.is_relative_to(root) or any(target == a or target.is_relative_to(a) for a in allow):
        return target
    raise RuleError([InventoryIssue(str(p), line_for(tf_lines, (key,)), key,
                                    f"{target} is outside this file's project tree ({root}); "
                                    f"name it on the command line with --allow {target} if you mean it")])


def run_test_file(path: str | Path, allow: tuple[Path, ...] = ()) -> TestResult:
    """Run one test file; raise :class:`RuleError` (file:line) for a malformed file or rules.

    ``allow``: files or directories outside the test file's project that its
    ``rules:``/``site:`` may name (given explicitly by the operator).
    """
    p = Path(path)
    allow = tuple(Path(a).resolve() for a in allow)
    tf, lines = load_model(read_text(p), str(p), TestFile)
    rules_path = _referenced(p, lines, "rules", tf.rules, allow)
    site_path = _referenced(p, lines, "site", tf.site, allow) if tf.site else None
    rules = load_rules(rules_path)
    site = None
    if site_path is not None:
        from inventory.loader import load_site

        site = load_site(site_path)
    suppressor = None
    if site is not None:
        from inventory.topology import PowerGraph

        suppressor = Suppressor(PowerGraph(site), rules.by_name.get)
    engine = Engine(rules, site, suppressor=suppressor)

    points: list[tuple[int, Sample]] = []
    for i, s in enumerate(tf.samples):
        if s.values is not None:
            try:
                vals = expand_values(s.values)
            except ValueError as exc:  # pragma: no cover - validated above
                raise RuleError([InventoryIssue(str(p), line_for(lines, ("samples", i, "values")),
                                                format_path(("samples", i, "values")), str(exc))]) from None
            timed = [(k * tf.interval_s, v) for k, v in enumerate(vals) if v is not None]
        else:
            timed = list(s.points or [])
        for t, v in timed:
            ns = T0 + int(t * _NS)
            points.append((ns, Sample(s.measurement, dict(s.tags), {s.field: v}, ns)))
    points.sort(key=lambda x: x[0])

    result = TestResult(str(p))
    end = max([e.at for e in tf.expect] + [(x[0] - T0) / _NS for x in points] + [0.0])
    expects = sorted(enumerate(tf.expect), key=lambda x: x[1].at)
    step = int(tf.tick_s * _NS)
    now = T0
    pi = 0
    ei = 0
    engine.tick(T0)
    while now <= T0 + int(end * _NS):
        batch = []
        while pi < len(points) and points[pi][0] <= now:
            batch.append(points[pi][1])
            pi += 1
        if batch:
            engine.observe(batch)
        engine.tick(now)
        while ei < len(expects) and T0 + int(expects[ei][1].at * _NS) <= now:
            idx, exp = expects[ei]
            _check(result, idx, exp, engine.active(), lines)
            ei += 1
        now += step
    return result


def _check(result: TestResult, idx: int, exp: Expect, firing: list[Alert], lines) -> None:
    result.checked += 1
    unmatched = list(firing)
    missing = []
    for e in exp.firing:
        hit = next((a for a in unmatched if _matches(e, a)), None)
        if hit is None:
            missing.append(e)
        else:
            unmatched.remove(hit)
    if missing or unmatched:
        line = line_for(lines, ("expect", idx, "at"))
        out = [f"{where(result.path, line)}: at {exp.at:g}s: firing alerts differ"]
        out += [f"  - expected, not firing: {m}" for m in missing]
        out += [f"  + firing, not expected: {_show(a)}" for a in unmatched]
        result.failures.append("\n".join(out))
