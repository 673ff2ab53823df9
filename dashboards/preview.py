"""``dcim dashboards preview``: run every panel query against InfluxDB and draw it.

Why: Grafana cannot run everywhere (CI, an auditor's laptop, this repository's
tests), but the question "does every panel show data for this site?" must be
answerable anywhere.  The preview runs the exact InfluxQL of each panel with
Grafana's macros substituted (:mod:`dashboards.queries`) and renders one PNG
per panel with matplotlib's Agg backend, plus an ``index.html``.
"""
from __future__ import annotations

import datetime as dt
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sinks.influx_query import InfluxQuery, Series  # noqa: E402

from dashboards.queries import auto_interval, resolve_variables, substitute  # noqa: E402

__all__ = ["PanelResult", "run_dashboard", "render_panel", "write_preview"]


@dataclass
class PanelResult:
    dashboard_uid: str
    panel_id: int
    title: str
    type: str
    queries: list[str]
    series: list[tuple[str | None, Series]] = field(default_factory=list)  # (alias, series)
    error: str | None = None

    @property
    def rows(self) -> int:
        return sum(len(s.values) for _, s in self.series)


def run_dashboard(dash: dict[str, Any], client: InfluxQuery, from_ms: int, to_ms: int,
                  interval: str | None = None) -> tuple[dict[str, list[str]], list[PanelResult]]:
    """Variables and per-panel results of one dashboard JSON (an error is kept per panel, not raised)."""
    interval = interval or auto_interval(from_ms, to_ms)

    def run(q: str) -> list[list]:
        return [row for s in client.query(q, epoch="ms") for row in s.values]

    variables = resolve_variables(dash.get("templating", {}).get("list", []), run, from_ms, to_ms, interval)
    results: list[PanelResult] = []
    for panel in dash.get("panels", []):
        if panel.get("type") == "row":
            continue
        res = PanelResult(dash["uid"], panel["id"], panel["title"], panel["type"], [])
        try:
            for target in panel.get("targets", []):
                q = substitute(target["query"], from_ms, to_ms, interval, variables)
                res.queries.append(q)
                res.series.extend((target.get("alias"), s) for s in client.query(q, epoch="ms"))
        except Exception as exc:  # shown on the panel's image and in the index
            res.error = str(exc)
        results.append(res)
    return variables, results


def _label(alias: str | None, s: Series, column: str) -> str:
    if alias:
        text = re.sub(r"\$tag_(\w+)", lambda m: s.tags.get(m.group(1), ""), alias)
        return text.replace("$col", column)
    tags = " ".join(v for v in s.tags.values() if v)
    return f"{tags} {column}".strip() if len(s.columns) > 2 or not tags else tags


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def render_panel(res: PanelResult, path: Path) -> Path:
    """One PNG for one panel; a panel without data or with an error says so on the image."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=80)
    ax.set_title(res.title, fontsize=10, loc="left")
    try:
        if res.error or res.rows == 0:
            ax.axis("off")
            ax.text(0.5, 0.5, f"error: {res.error[:120]}" if res.error else "No data", ha="center", va="center",
                    color="red" if res.error else "grey", wrap=True)
        elif res.type in ("timeseries", "state-timeline"):
            _plot_lines(ax, res)
        elif res.type in ("stat", "gauge"):
            _plot_stat(ax, res)
        elif res.type == "bargauge":
            _plot_bars(ax, res)
        else:
            _plot_table(ax, res)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def _plot_lines(ax, res: PanelResult) -> None:
    for alias, s in res.series:
        times = [dt.datetime.fromtimestamp(v[0] / 1000, dt.timezone.utc) for v in s.values]
        for ci, col in enumerate(s.columns[1:], start=1):
            raw = [v[ci] for v in s.values]
            if all(isinstance(x, str) for x in raw if x is not None):  # states: one level per distinct value
                levels = sorted({x for x in raw if x is not None})
                ys = [levels.index(x) if x is not None else None for x in raw]
            else:
                ys = [_number(x) for x in raw]
            ax.step(times, ys, where="post", label=_label(alias, s, col))
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    if sum(len(s.columns) - 1 for _, s in res.series) <= 12:
        ax.legend(fontsize=6, loc="best")


def _last_values(res: PanelResult) -> list[tuple[str, Any]]:
    out = []
    for alias, s in res.series:
        for ci, col in enumerate(s.columns[1:], start=1):
            vals = [v[ci] for v in s.values if v[ci] is not None]
            if vals:
                out.append((_label(alias, s, col), vals[-1]))
    return out


def _fmt(v: Any) -> str:
    n = _number(v)
    if n is None:
        return str(v)
    return f"{n:,.2f}" if abs(n) < 100 else f"{n:,.0f}"


def _plot_stat(ax, res: PanelResult) -> None:
    ax.axis("off")
    values = _last_values(res)[:6]
    for i, (label, v) in enumerate(values):
        x = (i + 0.5) / len(values)
        ax.text(x, 0.55, _fmt(v), ha="center", va="center", fontsize=20, weight="bold")
        ax.text(x, 0.2, label, ha="center", va="center", fontsize=8)


def _plot_bars(ax, res: PanelResult) -> None:
    values = [(label, _number(v) or 0.0) for label, v in _last_values(res)][:30]
    ax.barh([lbl for lbl, _ in values], [v for _, v in values], color="tab:green")
    ax.tick_params(labelsize=7)


def _plot_table(ax, res: PanelResult) -> None:
    ax.axis("off")
    header: list[str] = []
    rows: list[list[str]] = []
    for _, s in res.series:
        tag_keys = sorted(s.tags)
        cols = tag_keys + [c for c in s.columns if c != "time"]
        header = header or cols
        for v in s.values:
            rec = dict(zip(s.columns, v))
            rows.append([s.tags[k] for k in tag_keys] + [_fmt(rec[c]) for c in s.columns if c != "time"])
    rows = [r[:len(header)] + [""] * (len(header) - len(r)) for r in rows[:15]]
    table = ax.table(cellText=rows, colLabels=header, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)


def write_preview(dashboards: list[dict[str, Any]], client: InfluxQuery, out: Path, from_ms: int, to_ms: int,
                  interval: str | None = None) -> list[PanelResult]:
    """PNG per panel under ``out/<dashboard uid>/`` and an ``out/index.html`` listing them with their queries."""
    out.mkdir(parents=True, exist_ok=True)
    all_results: list[PanelResult] = []
    parts = ["<!doctype html><meta charset='utf-8'><title>Iozera dashboards preview</title>",
             "<style>body{font-family:sans-serif}figure{display:inline-block;margin:8px;vertical-align:top}"
             "pre{max-width:640px;white-space:pre-wrap;font-size:10px}</style>"]
    span = (f"{dt.datetime.fromtimestamp(from_ms / 1000, dt.timezone.utc):%Y-%m-%d %H:%M:%S} — "
            f"{dt.datetime.fromtimestamp(to_ms / 1000, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    for dash in dashboards:
        variables, results = run_dashboard(dash, client, from_ms, to_ms, interval)
        d = out / dash["uid"]
        d.mkdir(parents=True, exist_ok=True)
        parts.append(f"<h2>{html.escape(dash['title'])}</h2><p>{span}; variables: "
                     f"{html.escape(str(variables))}</p>")
        for res in results:
            png = render_panel(res, d / f"panel-{res.panel_id:02d}.png")
            status = f"error: {res.error}" if res.error else f"{res.rows} rows"
            parts.append(f"<figure><img src='{html.escape(dash['uid'])}/{png.name}'><figcaption>"
                         f"{html.escape(res.title)} — {html.escape(status)}<pre>"
                         f"{html.escape(chr(10).join(res.queries))}</pre></figcaption></figure>")
        all_results.extend(results)
    (out / "index.html").write_text("\n".join(parts), encoding="utf-8")
    return all_results
