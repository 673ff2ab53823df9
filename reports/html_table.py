"""HTML pieces every report page shares: escaping and the plain table whose numeric columns align right.

Kept apart from ``render_html`` (which pulls in matplotlib for the PUE report's charts) so the attribution and
capacity pages can use them cheaply.
"""
from __future__ import annotations

import html

__all__ = ["esc", "html_table"]


def esc(x: object) -> str:
    """``x`` as text safe inside HTML elements and attribute values."""
    return html.escape(str(x))


def html_table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """A ``<table>`` with a header row; cells from column ``numeric_from`` on get ``class="n"`` (right-aligned)."""
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td class=\"n\">{esc(c)}</td>" if i >= numeric_from else f"<td>{esc(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>")
    return "".join(out) + "</table>"
