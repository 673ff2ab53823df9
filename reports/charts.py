"""Report charts as PNG bytes (matplotlib Agg, no pyplot global state, no metadata).

Shared by the HTML and PDF renderers so both show the same pictures.
"""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.pue import PueReport

__all__ = ["all_charts", "coverage_chart", "energy_chart", "pue_chart", "renewable_chart"]

_BLUE, _ORANGE, _GREEN, _GREY, _RED = "#1f5a99", "#e08a1e", "#3a9b46", "#8c8c8c", "#b83232"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _fig() -> tuple[Figure, object]:
    fig = Figure(figsize=(7.0, 2.9), layout="constrained")
    return fig, fig.add_subplot()


def pue_chart(r: PueReport) -> bytes:
    fig, ax = _fig()
    labels = [m.label for m in r.months]
    vals = [m.pue if m.pue is not None else 0.0 for m in r.months]
    bars = ax.bar(labels, vals, color=_BLUE)
    for b, m in zip(bars, r.months):
        ax.annotate("n/a" if m.pue is None else f"{m.pue:.3f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    if r.total.pue is not None:
        ax.axhline(r.total.pue, color=_RED, linestyle="--", linewidth=1, label=f"period {r.total.pue:.3f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(1.0 if all(v >= 1 for v in vals) and vals else 0, max(vals + [1.0]) * 1.08)
    ax.set_ylabel("PUE")
    ax.set_title(f"Monthly PUE (category {r.category})", fontsize=10)
    return _png(fig)


def energy_chart(r: PueReport) -> bytes:
    fig, ax = _fig()
    labels = [m.label for m in r.months]
    it = [m.e_it_kwh / 1000 for m in r.months]
    other = [(m.e_dc_kwh - m.e_it_kwh) / 1000 for m in r.months]
    ax.bar(labels, it, color=_BLUE, label="IT energy")
    ax.bar(labels, other, bottom=it, color=_ORANGE, label="cooling, losses, other (E_DC - E_IT)")
    ax.set_ylabel("MWh")
    ax.set_title("Energy per month", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def renewable_chart(r: PueReport) -> bytes:
    fig, ax = _fig()
    labels = [m.label for m in r.months]
    ref = [100 * (m.ref or 0.0) for m in r.months]
    match = [m.hourly_match_pct or 0.0 for m in r.months]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], ref, width=0.4, color=_GREEN, label="REF (incl. certificates)")
    ax.bar([i + 0.2 for i in x], match, width=0.4, color=_GREY, label="hourly matched (metered)")
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of E_DC")
    ax.set_title("Renewable share", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def coverage_chart(r: PueReport) -> bytes:
    meters = [m for m in r.meters if m.role in ("boundary", "it", "fuel", "renewable", "water")]
    fig = Figure(figsize=(7.0, max(2.0, 0.28 * len(meters) + 0.9)), layout="constrained")
    ax = fig.add_subplot()
    names = [m.id for m in meters]
    vals = [m.coverage_pct for m in meters]
    ax.barh(names, vals, color=[_GREEN if v >= 99 else _ORANGE if v >= 90 else _RED for v in vals])
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("% of hours with at least one reading")
    ax.set_title("Data coverage per meter", fontsize=10)
    return _png(fig)


def all_charts(r: PueReport) -> list[tuple[str, bytes]]:
    return [("Monthly PUE", pue_chart(r)), ("Energy", energy_chart(r)),
            ("Renewable share", renewable_chart(r)), ("Coverage", coverage_chart(r))]
