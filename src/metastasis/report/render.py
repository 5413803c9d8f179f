"""From figures and tables to self-contained HTML fragments.

Every figure is a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, no global state) written as
inline SVG; the SVG is made safe to place many times in one page: no XML prologue, no namespace URLs,
and every ``id`` prefixed so that two figures never share one. Nothing here reaches outside the file.
"""

from __future__ import annotations

import html
import io
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

#: One colour per stage, per organ and for "run A" / "run B", used by every figure of the reports.
STAGE_COLOURS = {"I": "#9ecae1", "II": "#4292c6", "III": "#08519c", "IV": "#cb181d"}
ORGAN_COLOURS = {
    "breast": "#f4a6c0", "regional_nodes": "#9e9ac8", "bone": "#8c6d31", "lung": "#3182bd", "liver": "#e6550d",
    "brain": "#756bb1", "distant_nodes": "#31a354", "other": "#636363",
}
RUN_COLOURS = ("#2c7fb8", "#d95f0e")
RESULT_STYLE = {  # exam result -> (marker, colour, size, label)
    "tp": ("o", "#1a9850", 26, "exam saw it (true positive)"),
    "fn": ("X", "#d73027", 42, "exam missed it (false negative)"),
    "fp": ("^", "#fdae61", 26, "false alarm (false positive)"),
    "tn": ("|", "#9e9e9e", 30, "exam, nothing there (true negative)"),
}

_RC: Any = {
    "font.size": 9.0, "axes.titlesize": 10.0, "axes.labelsize": 9.0, "legend.fontsize": 8.0,
    "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "path", "svg.hashsalt": "metastasis",
    "axes.grid": True, "grid.color": "#e6e6e6", "grid.linewidth": 0.6, "axes.axisbelow": True,
}
_counter = itertools.count()


def new_figure(width_in: float = 7.6, height_in: float = 3.6, **subplots: Any) -> tuple[Figure, Any]:
    """A figure with the report style and its axes (``subplots`` as for ``Figure.subplots``)."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(**subplots)
    return fig, axes


def svg_of(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element with unique ids and no external reference."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return clean_svg(buf.getvalue(), f"f{next(_counter)}-")


def clean_svg(text: str, prefix: str) -> str:
    """Strip the XML prologue and namespace URLs of an SVG document; prefix its ids with ``prefix``."""
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    ids = set(re.findall(r'\bid="([^"]+)"', text))

    def fix(m: re.Match[str]) -> str:
        return f"{m.group(1)}{prefix}{m.group(2)}{m.group(3)}" if m.group(2) in ids else m.group(0)

    text = re.sub(r'(\bid=")([^"]+)(")', fix, text)
    text = re.sub(r'(\bhref="#)([^"]+)(")', fix, text)
    text = re.sub(r"(url\(#)([^)]+)(\))", fix, text)
    return text.replace("<svg ", '<svg role="img" class="fig" ', 1).strip()


def esc(value: object) -> str:
    """HTML-escaped text of a value."""
    return html.escape(str(value), quote=True)


def pct(share: float, digits: int = 1) -> str:
    """A share (0..1) as a percentage, ``n/a`` when undefined."""
    return "n/a" if share is None or not math.isfinite(share) else f"{100.0 * share:.{digits}f}%"


def per_hundred(share: float) -> str:
    """A share written as "N of every 100" reads: whole numbers from 10 up, one decimal below."""
    if share is None or not math.isfinite(share):
        return "n/a"
    v = 100.0 * share
    return f"{v:.0f}" if v >= 9.95 else f"{v:.1f}"


def number(value: float, digits: int = 1) -> str:
    """A number with thousands separators, ``n/a`` for NaN, ``not reached`` for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "not reached"
    if float(value).is_integer() and digits >= 0 and abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(float(value)) < 0.5 * 10.0**-digits:
        value = 0.0  # no "-0.0"
    return f"{value:,.{digits}f}"


def table_html(frame: pd.DataFrame, formats: dict[str, Any] | None = None, index: bool = True,
               caption: str | None = None, headers: dict[str, str] | None = None) -> str:
    """A small DataFrame as an HTML table; ``formats`` maps a column to a function value -> text."""
    formats = formats or {}
    headers = headers or {}
    cols = list(frame.columns)
    index_name = str(frame.index.name or "")
    head = (["<th>" + esc(headers.get(index_name, index_name.replace("_", " "))) + "</th>"] if index else [])
    head += ["<th>" + esc(headers.get(str(c), str(c).replace("_", " "))) + "</th>" for c in cols]
    rows = []
    for idx, row in frame.iterrows():
        cells = ["<th>" + esc(str(idx).replace("_", " ")) + "</th>"] if index else []
        for c in cols:
            v = row[c]
            f = formats.get(str(c))
            text = f(v) if f else (number(v, 0 if float(v).is_integer() else 3) if isinstance(v, float | int)
                                   and not isinstance(v, bool) else str(v))
            cells.append(f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<table>{cap}<thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def figure_block(svg: str, caption: str, fig_id: str, extra: str = "", side: bool = False) -> str:
    """A figure element: the SVG, its caption, then optional extra HTML (a table; beside the SVG if ``side``)."""
    if side:
        return (f'<figure id="{esc(fig_id)}" class="report-figure"><div class="two"><div>{svg}</div>'
                f"<div><figcaption>{caption}</figcaption>{extra}</div></div></figure>")
    return (f'<figure id="{esc(fig_id)}" class="report-figure">{svg}'
            f"<figcaption>{caption}</figcaption>{extra}</figure>")


def section(title: str, body: str, section_id: str) -> str:
    """A titled section of the page."""
    return f'<section id="{esc(section_id)}"><h2>{esc(title)}</h2>{body}</section>'


_CSS = """
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#e3e7ec;--accent:#b2182b;--bg:#fbfaf8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.55 -apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:28px 28px 60px;background:#fff;box-shadow:0 0 24px rgba(0,0,0,.05)}
h1{font-size:28px;margin:0 0 4px}h2{font-size:20px;margin:40px 0 8px;padding-top:12px;
border-top:1px solid var(--line)}
.sub{color:var(--muted);margin:0 0 16px}
.disclaimer{background:#fff4e5;border-left:4px solid #f0a030;padding:8px 12px;font-size:13.5px;margin:12px 0}
.lead{font-size:16.5px;background:#f4f8fb;border-radius:8px;padding:14px 18px}
.lead b{color:var(--accent)}
nav{font-size:13px;color:var(--muted);margin:10px 0}nav a{color:var(--muted);margin-right:12px}
figure{margin:14px 0}svg.fig{width:100%;max-width:880px;height:auto;display:block}
svg.bodymap{max-width:560px}
figcaption{font-size:13.5px;color:var(--muted);margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:10px 0}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:right}
th:first-child{text-align:left}thead th{border-bottom:2px solid #c9d1d9}
caption{text-align:left;font-weight:600;padding-bottom:4px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
@media (max-width:800px){.two{grid-template-columns:1fr}}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.kpi{flex:1 1 160px;border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.kpi .v{font-size:22px;font-weight:650;color:var(--accent)}.kpi .k{font-size:12.5px;color:var(--muted)}
footer{margin-top:40px;font-size:12.5px;color:var(--muted);border-top:1px solid var(--line);padding-top:10px}
code{background:#f2f4f6;padding:1px 4px;border-radius:3px}
details{margin:10px 0}summary{cursor:pointer;color:var(--muted);font-size:13.5px}
"""


def page(title: str, subtitle: str, body: str, nav: Sequence[tuple[str, str]] = ()) -> str:
    """The whole HTML document: inline CSS, no script, no external resource."""
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{subtitle}</p>"
            + (f"<nav>{links}</nav>" if links else "") + body + "</main></body></html>\n")


def kpis(items: Iterable[tuple[str, str]]) -> str:
    """A row of headline numbers: (value, what it is)."""
    cells = "".join(f'<div class="kpi"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
                    for v, k in items)
    return f'<div class="kpis">{cells}</div>'


DISCLAIMER = ("<b>Research and teaching software, not a medical device.</b> These numbers describe virtual "
              "patients of a model with stated assumptions; they do not diagnose, predict or advise on any "
              "real person's care.")
