"""PDF report via fpdf2: results, charts, meters, bridging, methodology, audit trail.

Uses DejaVu fonts when the system has them (any character in site and meter
names prints); otherwise the PDF core fonts with text folded to Latin-1.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from reports.charts import all_charts
from reports.methodology import methodology
from reports.pue import PueReport
from reports.render_data import fmt
from reports.render_html import BRIDGE_HEAD, KPI_HEAD, METER_HEAD, bridge_rows, kpi_rows, meter_rows

__all__ = ["to_pdf", "new_doc"]

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


class _Doc(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        self.unicode = False
        for d in _FONT_DIRS:
            if (d / "DejaVuSans.ttf").is_file() and (d / "DejaVuSans-Bold.ttf").is_file():
                self.add_font("body", "", str(d / "DejaVuSans.ttf"))
                self.add_font("body", "B", str(d / "DejaVuSans-Bold.ttf"))
                mono = d / "DejaVuSansMono.ttf"
                self.add_font("mono", "", str(mono if mono.is_file() else d / "DejaVuSans.ttf"))
                self.unicode = True
                break
        self.body, self.mono = ("body", "mono") if self.unicode else ("helvetica", "courier")
        self.set_auto_page_break(True, margin=15)
        self.set_margins(15, 15, 15)

    def t(self, s: str) -> str:
        if self.unicode:
            return s
        return (s.replace("—", "-").replace("–", "-").replace("…", "...").replace("₂", "2")
                .encode("latin-1", "replace").decode("latin-1"))

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.body, "", 7)
        self.cell(0, 5, self.t(f"{self.title_text} — page {self.page_no()}/{{nb}}"), align="C")

    def h1(self, s: str) -> None:
        self.set_font(self.body, "B", 15)
        self.multi_cell(0, 8, self.t(s), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def h2(self, s: str) -> None:
        if self.get_y() > 250:
            self.add_page()
        self.ln(2)
        self.set_font(self.body, "B", 11.5)
        self.cell(0, 7, self.t(s), new_x="LMARGIN", new_y="NEXT")

    def para(self, s: str, size: float = 9.0, style: str = "") -> None:
        self.set_font(self.body, style, size)
        self.multi_cell(0, size * 0.48, self.t(s), new_x="LMARGIN", new_y="NEXT", align="L")
        self.ln(0.8)

    def grid(self, head: list[str], rows: list[list[str]], widths: list[float], size: float = 7.0,
             numeric_from: int = 1, numeric_to: int | None = None) -> None:
        self.set_font(self.body, "", size)
        hi = len(head) if numeric_to is None else numeric_to
        aligns = tuple("RIGHT" if numeric_from <= i < hi else "LEFT" for i in range(len(head)))
        with self.table(col_widths=tuple(widths), text_align=aligns, line_height=size * 0.55,
                        first_row_as_headings=True,
                        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 236, 244))) as table:
            for r in [head, *rows]:
                row = table.row()
                for c in r:
                    row.cell(self.t(c))
        self.ln(1)

    def methodology_and_audit(self, items: list[tuple[str, str]], hashes: list[str], queries: list[str]) -> None:
        """The closing sections every report PDF shares: methodology, then the audit trail (input hashes and the
        InfluxQL statements in the order run), so an auditor finds them laid out the same in each report."""
        self.h2("Methodology")
        for title, text in items:
            self.para(title, size=9, style="B")
            self.para(text, size=8.5)
        self.h2("Audit trail")
        for h in hashes:
            self.para(h, size=8.5)
        self.para(f"{len(queries)} InfluxQL statement(s), in the order run:", size=8.5)
        self.set_font(self.mono, "", 6.5)
        for i, q in enumerate(queries, 1):
            self.multi_cell(0, 3.2, self.t(f"{i}. {q}"), new_x="LMARGIN", new_y="NEXT")
            self.ln(0.5)


def new_doc(title: str, generated_at: str | None) -> _Doc:
    """A report PDF on its first page, dated ``generated_at`` (ISO 8601) when given so the bytes are reproducible;
    an unparseable date leaves fpdf's own."""
    pdf = _Doc(title)
    if generated_at:
        try:
            pdf.set_creation_date(dt.datetime.fromisoformat(generated_at.replace("Z", "+00:00")))
        except ValueError:
            pass
    pdf.alias_nb_pages()
    pdf.add_page()
    return pdf



def to_pdf(r: PueReport, generated_at: str | None = None) -> bytes:
    pdf = new_doc(f"PUE report {r.site_id} {r.period_start[:10]}..{r.period_end[:10]}", generated_at)
    pdf.h1(f"Energy-based PUE report — {r.site_name}")
    pdf.para(f"Site {r.site_id}. Period {r.period_start} to {r.period_end} (end exclusive, UTC). "
             f"IT energy measurement category {r.category}." + (f" Generated {generated_at}." if generated_at else ""))
    tot = r.total
    pdf.para(f"Period PUE {fmt(tot.pue, 3) or 'n/a'}   REF {fmt(tot.ref, 3) or 'n/a'}   "
             f"CUE {fmt(tot.cue, 3) or 'n/a'} kgCO2e/kWh" + (f"   WUE {fmt(tot.wue, 3)} L/kWh" if r.has_water else ""),
             size=12, style="B")
    pdf.para(f"E_DC {fmt(tot.e_dc_kwh, 1)} kWh, E_IT {fmt(tot.e_it_kwh, 1)} kWh, renewable {fmt(tot.renewable_kwh, 1)} "
             f"kWh (on-site {fmt(tot.renewable_onsite_kwh, 1)}, PPA {fmt(tot.renewable_ppa_kwh, 1)}, certificates "
             f"{fmt(tot.certificates_kwh, 1)}), hourly matched {fmt(tot.hourly_match_pct, 1) or 'n/a'} %, "
             f"estimated share {fmt(100 * tot.estimated_share, 2)} %.")
    pdf.h2("Results per month")
    pdf.grid(KPI_HEAD, kpi_rows(r), [16, 22, 22, 13, 13, 16, 16, 18, 16, 16])
    if r.warnings:
        pdf.h2("Warnings")
        for w in r.warnings:
            pdf.para("- " + w, size=8)
    pdf.add_page()
    pdf.h2("Charts")
    for title, png in all_charts(r):
        if pdf.get_y() > 200:
            pdf.add_page()
        pdf.image(io.BytesIO(png), w=175)
        pdf.ln(2)
    pdf.add_page()
    pdf.h2("Meters")
    pdf.grid(METER_HEAD, meter_rows(r), [28, 17, 12, 14, 38, 26, 15, 15, 11], size=6.5, numeric_from=5)
    pdf.h2("Counter bridging")
    if r.bridges:
        pdf.grid(BRIDGE_HEAD, bridge_rows(r), [25, 27, 12, 22, 20, 20, 54], numeric_from=3, numeric_to=6)
    else:
        pdf.para("No counter resets or wraps in the period.")
    if r.certificates:
        pdf.h2("Certificates")
        pdf.grid(["Id", "Month", "kWh", "Source"], [[c.id, c.month, fmt(c.kwh, 1), c.source] for c in r.certificates],
                 [60, 30, 40, 50], numeric_from=2, numeric_to=3)
    pdf.methodology_and_audit(methodology(r), [f"Input SHA-256: {r.input_sha256}"], r.queries)
    return bytes(pdf.output())
