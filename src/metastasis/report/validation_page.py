"""The validation page: every target row, published against simulated, and the GBSG2 curves.

Written by ``metastasis validate --html FILE`` from the judged table (:mod:`metastasis.calibration.validate`)
and the GBSG2 curves (:func:`metastasis.calibration.gbsg2.curves`); one self-contained HTML file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from metastasis import __version__
from metastasis.calibration.validate import format_number, tolerance_position
from metastasis.report.figures import fit_figure, gbsg2_figure
from metastasis.report.render import DISCLAIMER, esc, figure_block, kpis, page, section, table_html


def _target_tables(table: pd.DataFrame) -> str:
    parts = []
    for target, rows in table.groupby("target", sort=False):
        shown = pd.DataFrame({
            "published": [format_number(p, u) for p, u in zip(rows["published"], rows["unit"], strict=True)],
            "simulated": [format_number(s, u) for s, u in zip(rows["simulated"], rows["unit"], strict=True)],
            "unit": rows["unit"].to_numpy(),
            "tolerance": rows["tolerance"].to_numpy(),
            "n": [f"{int(n):,}" for n in rows["n"]],
            "": ["pass" if p else "FAIL" for p in rows["pass"]],
        }, index=pd.Index(rows["row"].to_numpy(), name="row"))
        passed = int(rows["pass"].sum())
        parts.append(table_html(shown, caption=f"{target} ({passed} of {len(rows)} pass)"))
    return "".join(parts)


def build_validation_page(table: pd.DataFrame, curves: pd.DataFrame, patients: int, seed: int | None,
                          overrides: tuple[str, ...] = ()) -> str:
    """The page as one HTML string; ``overrides``: the ``--set`` items every setting had (none: the defaults)."""
    passed = int(table["pass"].sum())
    by_target = table.groupby("target", sort=False)["pass"].agg(["sum", "size"])
    head = kpis([(f"{passed} of {len(table)}", "published figures reproduced within tolerance"),
                 (f"{int((by_target['sum'] == by_target['size']).sum())} of {len(by_target)}",
                  "target tables with every row passing"),
                 (f"{patients:,}", "patients of the largest simulated settings")])
    intro = (f'<p class="disclaimer">{DISCLAIMER}</p>{head}<p>Each row is a figure of a published study, '
             "computed from tables simulated in the setting it comes from (the package's "
             "<code>data/targets/README.md</code> says how each is emulated and the tolerance rule). A row "
             "passes when the simulated value lies inside the published 95 % interval or band, otherwise "
             "within the tolerance shown. The README's validation section explains every row that fails.</p>")
    gbsg = figure_block(
        gbsg2_figure(curves),
        "Recurrence-free survival of the 686 women of the GBSG2 trial (lifelines.datasets.load_gbsg2) by "
        "tamoxifen arm, tumour size and positive nodes: the trial's Kaplan-Meier estimate with its 95 % band "
        "against the simulated women of the same setting, each group weighted to the trial group's grade mix. "
        "The table's GBSG2 rows are these curves at 3 and 5 years (dotted lines).", "fig-gbsg2")
    glance = figure_block(
        fit_figure(table, tolerance_position(table)),
        "Each row's simulated value within its tolerance, each side scaled to its own bound: a dot in the "
        "green band passes. Rows beyond four times their tolerance are drawn at the edge.", "fig-fit")
    body = (intro + section("At a glance", glance, "glance")
            + section("Published against simulated", _target_tables(table), "rows")
            + section("Real patients: the GBSG2 trial", gbsg, "gbsg2"))
    subtitle = (f"metastasis {esc(__version__)} · <code>metastasis validate --patients {patients}"
                + (f" --seed {seed}" if seed is not None else "") + "</code> · "
                + (f"overrides: <code>{esc(' '.join(overrides))}</code>" if overrides else "default parameters"))
    return page("Validation against published figures", subtitle, body,
                nav=[("glance", "at a glance"), ("rows", "published against simulated"), ("gbsg2", "GBSG2 curves")])


def write_validation_page(table: pd.DataFrame, curves: pd.DataFrame, out: str | Path, patients: int,
                          seed: int | None, overrides: tuple[str, ...] = ()) -> Path:
    """Write the page to ``out`` atomically (a temporary file, then a rename)."""
    path = Path(out)
    text = build_validation_page(table, curves, patients, seed, overrides)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
