"""The body map: a hand-drawn front view of a woman, each organ shaded by how often the disease reaches it.

Pure SVG (no matplotlib), sized by its ``viewBox``. The input is :func:`metastasis.analysis.organ_involvement`
(``reached_share`` shades, ``found_share`` is printed beside it). Left and right are the patient's: the
primary tumour is drawn in her left breast, its axillary (regional) nodes beside it.
"""

from __future__ import annotations

import pandas as pd

from metastasis.report.render import esc, pct

_LOW, _HIGH = (255, 245, 240), (165, 15, 21)  # shading from almost white to deep red
_SKIN, _OUTLINE = "#f3ede6", "#b8ab9c"
_CX = 280.0  # the body's midline

# The silhouette: drawn twice (outline, then fill) so the pieces merge into one shape.
_SILHOUETTE = [
    f'<ellipse cx="{_CX}" cy="62" rx="33" ry="40"/>',
    f'<rect x="{_CX - 13}" y="92" width="26" height="30" rx="6"/>',
    (f'<path d="M{_CX - 50},124 Q{_CX},110 {_CX + 50},124 Q{_CX + 62},128 {_CX + 60},150 '
     f'Q{_CX + 54},206 {_CX + 42},246 Q{_CX + 58},292 {_CX + 56},334 L{_CX - 56},334 '
     f'Q{_CX - 58},292 {_CX - 42},246 Q{_CX - 54},206 {_CX - 60},150 Q{_CX - 62},128 {_CX - 50},124 Z"/>'),
    f'<rect x="-13" y="0" width="26" height="214" rx="13" transform="translate({_CX - 56},130) rotate(11)"/>',
    f'<rect x="-13" y="0" width="26" height="214" rx="13" transform="translate({_CX + 56},130) rotate(-11)"/>',
    f'<rect x="{_CX - 52}" y="318" width="46" height="262" rx="22"/>',
    f'<rect x="{_CX + 6}" y="318" width="46" height="262" rx="22"/>',
]

# Organs: the shapes of each (drawn in the organ's shade) and where its label's leader line starts.
_BONE = [
    f'<rect x="{_CX - 4}" y="112" width="8" height="200" rx="4"/>',  # spine
    f'<ellipse cx="{_CX - 21}" cy="306" rx="19" ry="10" transform="rotate(-25 {_CX - 21} 306)"/>',  # pelvis
    f'<ellipse cx="{_CX + 21}" cy="306" rx="19" ry="10" transform="rotate(25 {_CX + 21} 306)"/>',
    f'<circle cx="{_CX - 29}" cy="334" r="6"/><circle cx="{_CX + 29}" cy="334" r="6"/>',  # hips
    f'<rect x="{_CX - 34}" y="338" width="9" height="150" rx="4.5"/>',  # femurs
    f'<rect x="{_CX + 25}" y="338" width="9" height="150" rx="4.5"/>',
    f'<rect x="-4.5" y="0" width="9" height="110" rx="4.5" transform="translate({_CX - 56},136) rotate(11)"/>',
    f'<rect x="-4.5" y="0" width="9" height="110" rx="4.5" transform="translate({_CX + 56},136) rotate(-11)"/>',
    f'<rect x="{_CX - 46}" y="120" width="92" height="7" rx="3.5"/>',  # clavicles
]
_ORGANS: dict[str, tuple[list[str], tuple[float, float], str]] = {
    "brain": ([f'<ellipse cx="{_CX}" cy="52" rx="24" ry="21"/>'], (_CX + 20, 46), "right"),
    "distant_nodes": ([f'<circle cx="{x}" cy="{y}" r="4.5"/>' for x, y in
                       ((_CX - 24, 116), (_CX + 24, 116), (_CX - 8, 152), (_CX + 8, 156), (_CX, 262), (_CX + 9, 272))],
                      (_CX - 24, 116), "left"),
    "lung": ([f'<path d="M{_CX - 10},142 Q{_CX - 44},140 {_CX - 44},200 Q{_CX - 30},214 {_CX - 10},206 Z"/>',
              f'<path d="M{_CX + 10},142 Q{_CX + 42},140 {_CX + 42},198 Q{_CX + 30},212 {_CX + 10},204 Z"/>'],
             (_CX - 34, 170), "left"),
    "bone": (_BONE, (_CX + 30, 420), "right"),
    "liver": ([f'<path d="M{_CX - 44},214 Q{_CX},204 {_CX + 26},214 Q{_CX + 8},240 {_CX - 24},246 '
               f'Q{_CX - 44},240 {_CX - 44},214 Z"/>'], (_CX - 36, 228), "left"),
    "other": ([f'<ellipse cx="{_CX + 6}" cy="282" rx="26" ry="14"/>'], (_CX + 22, 284), "right"),
    "breast": ([f'<path d="M{_CX - 46},176 Q{_CX - 27},216 {_CX - 6},180 Z"/>',
                f'<path d="M{_CX + 6},180 Q{_CX + 27},216 {_CX + 46},176 Z"/>'], (_CX + 34, 194), "right"),
    "regional_nodes": ([f'<circle cx="{x}" cy="{y}" r="4"/>' for x, y in
                        ((_CX + 47, 150), (_CX + 52, 160), (_CX + 45, 166))], (_CX + 52, 160), "right"),
}
_NAMES = {"breast": "breast (local recurrence)", "brain": "brain", "distant_nodes": "distant lymph nodes",
          "lung": "lungs", "bone": "bone", "liver": "liver", "other": "other organs",
          "regional_nodes": "armpit (regional) nodes"}


def _shade(share: float, top: float) -> str:
    f = 0.0 if top <= 0 or share != share else min(max(share / top, 0.0), 1.0) ** 0.7
    r, g, b = (round(lo + f * (hi - lo)) for lo, hi in zip(_LOW, _HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _place(labels: list[tuple[str, float]], top: float = 30.0, gap: float = 40.0) -> dict[str, float]:
    """Label heights near their anchors, at least ``gap`` apart."""
    out: dict[str, float] = {}
    y_prev = top - gap
    for organ, y in sorted(labels, key=lambda t: t[1]):
        y_prev = max(y, y_prev + gap)
        out[organ] = y_prev
    return out


def body_map_svg(involvement: pd.DataFrame, title: str = "How often the disease reaches each organ") -> str:
    """The body map as an inline ``<svg>`` (no external reference; ids prefixed ``bm-``)."""
    shares = {o: float(involvement.at[o, "reached_share"]) for o in _ORGANS if o in involvement.index}
    found = {o: float(involvement.at[o, "found_share"]) for o in _ORGANS if o in involvement.index}
    top = max(shares.values(), default=0.0)
    parts = [f'<svg role="img" class="fig bodymap" width="560" height="600" viewBox="0 0 560 600" '
             f'aria-label="{esc(title)}">',
             f"<title>{esc(title)}</title>",
             '<defs><linearGradient id="bm-scale" x1="0" x2="1" y1="0" y2="0">'
             f'<stop offset="0" stop-color="{_shade(0, 1)}"/><stop offset="1" stop-color="{_shade(1, 1)}"/>'
             "</linearGradient></defs>",
             f'<g fill="none" stroke="{_OUTLINE}" stroke-width="5">{"".join(_SILHOUETTE)}</g>',
             f'<g fill="{_SKIN}" stroke="none">{"".join(_SILHOUETTE)}</g>',
             ]
    left: list[tuple[str, float]] = []
    right: list[tuple[str, float]] = []
    for organ, (shapes, (_, ay), side) in _ORGANS.items():
        if organ not in shares:
            continue
        share = shares[organ]
        colour = _shade(share, top)
        tip = f"{_NAMES[organ]}: reached in {pct(share)} of women, found in {pct(found[organ])}"
        opacity = ' fill-opacity="0.9"' if organ != "bone" else ""
        parts.append(f'<g class="organ" data-organ="{organ}" fill="{colour}" stroke="#7a6a5a" stroke-width="0.8"'
                     f"{opacity}><title>{esc(tip)}</title>{''.join(shapes)}</g>")
        (left if side == "left" else right).append((organ, ay))
    parts.append(f'<circle cx="{_CX + 24}" cy="186" r="5" fill="#6a51a3" stroke="#fff" stroke-width="1.2">'
                 "<title>the primary tumour</title></circle>")
    for column, x_text, anchor in ((left, 12.0, "start"), (right, 548.0, "end")):
        for organ, y in _place(column).items():
            ax, ay = _ORGANS[organ][1]
            x_end = 150.0 if anchor == "start" else 410.0
            parts.append(f'<path d="M{ax},{ay} L{x_end},{y}" stroke="#8a8a8a" stroke-width="0.8" fill="none"/>'
                         f'<circle cx="{ax}" cy="{ay}" r="2" fill="#555"/>')
            parts.append(f'<text x="{x_text}" y="{y - 4}" text-anchor="{anchor}" font-size="15" font-weight="600" '
                         f'fill="#1f2933">{esc(_NAMES[organ])}</text>'
                         f'<text x="{x_text}" y="{y + 13}" text-anchor="{anchor}" font-size="13" fill="#5f6b7a">'
                         f"reached {pct(shares[organ])} · found {pct(found[organ])}</text>")
    parts.append('<circle cx="440" cy="589" r="5" fill="#6a51a3"/>'
                 '<text x="450" y="593" font-size="11" fill="#5f6b7a">the primary tumour</text>')
    parts.append('<rect x="150" y="585" width="180" height="9" fill="url(#bm-scale)" stroke="#bbb" stroke-width="0.5"/>'
                 f'<text x="144" y="593" text-anchor="end" font-size="11" fill="#5f6b7a">0%</text>'
                 f'<text x="336" y="593" font-size="11" fill="#5f6b7a">{pct(top)} of women</text>')
    parts.append("</svg>")
    return "".join(parts)
