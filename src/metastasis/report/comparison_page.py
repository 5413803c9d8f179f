"""The comparison page: two strategies side by side, as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metastasis import survival
from metastasis.comparison import ENDPOINTS, Comparison, compare_runs
from metastasis.report import figures
from metastasis.report.render import (
    DISCLAIMER,
    RUN_COLOURS,
    esc,
    figure_block,
    number,
    page,
    pct,
    per_hundred,
    section,
    table_html,
)
from metastasis.results import Run, load
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR

SECTIONS: tuple[tuple[str, str], ...] = (
    ("headline", "At a glance"),
    ("stage", "Stage shift"),
    ("lead-time", "Lead time"),
    ("survival", "Relapse-free and overall survival"),
)
_GRID_DAYS = 30.4375
_METRIC_NAMES = {
    "patients": "patients",
    "clinical_stage_iv": "clinical stage IV at diagnosis",
    "occult_metastasis_stage_i_iii": "stage I-III with a metastasis >= 2 mm missed",
    "distant_relapse_5y": "stage I-III: distant recurrence found within 5 years",
    "distant_relapse_10y": "stage I-III: distant recurrence found within 10 years",
    "recurrences_found_before_symptoms": "recurrences found before symptoms",
    "mean_lead_time": "mean lead time (months)",
    "median_survival_after_distant_recurrence": "median survival after recurrence found (months)",
    "overall_survival_10y": "alive at 10 years",
    "breast_cancer_deaths": "died of breast cancer",
}


def _hr_text(row: pd.Series) -> str:
    return f"{row['hazard_ratio']:.3f} (95% CI {row['ci_lower']:.3f} to {row['ci_upper']:.3f})"


def comparison_paragraph(c: Comparison) -> str:
    """Plain-language summary of B against A."""
    a, b = c.labels
    h = c.headline
    mig = c.migration
    upstaged = int(mig.loc[["I", "II", "III"], "IV"].sum())
    down = int(mig.loc["IV", ["I", "II", "III"]].sum())
    early = max(int(mig.loc[["I", "II", "III"]].to_numpy().sum()), 1)
    os_row = c.hazard_ratios.loc["overall_survival"]
    bits = [f'<p class="lead">The same {c.shared_patients:,} virtual women under two strategies: '
            f"<b>{esc(a)}</b> (A) and <b>{esc(b)}</b> (B)." if c.shared_patients else
            f'<p class="lead">Two cohorts: <b>{esc(a)}</b> (A) and <b>{esc(b)}</b> (B), with no patient in common '
            "(different seeds or eligibility), so differences include chance."]
    if c.shared_patients and upstaged + down == 0:
        bits.append(" No woman's clinical stage at diagnosis differs between the two.")
    elif c.shared_patients:
        moved = f" (and {down} moved the other way)." if down else "."
        bits.append(f" Under B, <b>{per_hundred(upstaged / early)}</b> of every 100 women staged I-III under A "
                    f"were found to be stage IV at diagnosis{moved}")
    lead_a, lead_b = h.at["mean_lead_time", a], h.at["mean_lead_time", b]
    if np.isfinite(lead_a) and np.isfinite(lead_b):
        bits.append(f" Distant recurrences were found before symptoms would have shown them in "
                    f"<b>{pct(h.at['recurrences_found_before_symptoms', b], 0)}</b> of cases under B against "
                    f"<b>{pct(h.at['recurrences_found_before_symptoms', a], 0)}</b> under A (mean lead time "
                    f"{lead_b:.1f} against {lead_a:.1f} months).")
    med_a = h.at["median_survival_after_distant_recurrence", a]
    med_b = h.at["median_survival_after_distant_recurrence", b]
    bits.append(f" Median survival counted from the recurrence's discovery: {number(med_b)} months under B, "
                f"{number(med_a)} under A; overall survival hazard ratio B vs A: <b>{_hr_text(os_row)}</b>.")
    if os_row["ci_lower"] <= 1.0 <= os_row["ci_upper"] and np.isfinite(med_a) and np.isfinite(med_b) and med_b > med_a:
        bits.append(" Finding disease earlier lengthens the time lived <i>after finding it</i> even when no death is "
                    "put off: that is lead-time bias, and why overall survival is the fair yardstick.")
    return "".join(bits) + "</p>"


def build_comparison(a: Run, b: Run, comparison: Comparison | None = None) -> str:
    """The HTML of the comparison of run B with run A (``comparison``: ``compare_runs(a, b)`` if already made)."""
    c = comparison if comparison is not None else compare_runs(a, b)
    la, lb = c.labels
    colours = {la: RUN_COLOURS[0], lb: RUN_COLOURS[1]}
    horizon = max(float(r.scenario.get("horizon_years", 20.0)) for r in (a, b)) * DAYS_PER_YEAR
    grid = np.arange(0.0, horizon + _GRID_DAYS, _GRID_DAYS)

    def fmt_metric(row: pd.Series, col: str) -> str:
        v = float(row[col])
        unit = str(row["unit"])
        if unit == "share":
            return pct(v, 2) if col == "difference" else pct(v, 1)
        return number(v, 0 if unit == "count" else 1)

    head = pd.DataFrame({col: [fmt_metric(r, col) for _, r in c.headline.iterrows()] for col in (la, lb, "difference")},
                        index=pd.Index([_METRIC_NAMES.get(str(m), str(m)) for m in c.headline.index], name="metric"))
    hr = c.hazard_ratios.copy()
    hr.index = pd.Index([ENDPOINTS[e] for e in hr.index], name="endpoint (B vs A)")
    hr_table = table_html(hr[["hazard_ratio", "ci_lower", "ci_upper", "p_value", "events_a", "events_b"]],
                          {"hazard_ratio": lambda v: f"{v:.3f}", "ci_lower": lambda v: f"{v:.3f}",
                           "ci_upper": lambda v: f"{v:.3f}", "p_value": lambda v: f"{v:.3g}",
                           "events_a": lambda v: f"{v:,.0f}", "events_b": lambda v: f"{v:,.0f}"},
                          headers={"events_a": f"events {la}", "events_b": f"events {lb}",
                                   "ci_lower": "95% CI lower", "ci_upper": "95% CI upper"},
                          caption="Cox proportional hazards, B against A" + (
                              " (robust variance clustered on the patient: the same women in both runs)"
                              if c.shared_patients else ""))
    lead = c.lead_time.copy()
    body = [f'<p class="disclaimer">{DISCLAIMER}</p>', comparison_paragraph(c)]
    body.append(section(SECTIONS[0][1], table_html(head), SECTIONS[0][0]))
    body.append(section(SECTIONS[1][1], figure_block(
        figures.paired_bars_figure(c.stages, c.labels, "% of patients"),
        "Clinical stage at diagnosis under each strategy. A more thorough staging work-up finds more metastases, "
        "moving women from stage I-III to stage IV (stage migration).", "fig-stage",
        table_html(c.migration, caption=f"Women in both runs by clinical stage under {la} (rows) and {lb} (columns)")
        if c.shared_patients else ""), SECTIONS[1][0]))
    body.append(section(SECTIONS[2][1], figure_block(
        figures.lead_time_compare_figure(c.leads),
        "How long before symptoms alone would have revealed it each distant recurrence was found (0: found by "
        "symptoms).", "fig-lead-time",
        table_html(lead, {"recurrences": lambda v: f"{v:,.0f}", "with_counterfactual": lambda v: f"{v:,.0f}",
                          "mean_days": lambda v: number(v / DAYS_PER_MONTH), "median_days":
                          lambda v: number(v / DAYS_PER_MONTH), "share_before_symptoms": pct},
                   headers={"mean_days": "mean (months)", "median_days": "median (months)"})), SECTIONS[2][0]))
    panels = {
        "distant relapse-free survival (I-III)": survival.kaplan_meier(
            c.durations["distant_relapse_free_survival"], "run", grid),
        "overall survival": survival.kaplan_meier(c.durations["overall_survival"], "run", grid),
    }
    body.append(section(SECTIONS[3][1], figure_block(
        figures.km_figure(panels, "probability (shaded: 95% confidence band)", colours=colours),
        "Kaplan-Meier curves of each strategy. Relapse-free survival ends at a distant recurrence found or death; "
        "finding recurrences earlier shortens it without changing when anyone dies.", "fig-km", hr_table),
        SECTIONS[3][0]))
    body.append(f"<footer>{DISCLAIMER}<br>Made by <code>metastasis compare {esc(a.directory)} "
                f"{esc(b.directory)}</code>; the numbers come from <code>metastasis.comparison.compare_runs</code>."
                "</footer>")
    subtitle = (f"A: <code>{esc(la)}</code> ({len(a.patients):,} patients, seed {esc(a.info.get('seed'))}) — "
                f"B: <code>{esc(lb)}</code> ({len(b.patients):,} patients, seed {esc(b.info.get('seed'))})")
    return page(f"metastasis: {la} vs {lb}", subtitle, "".join(body), nav=SECTIONS)


def write_comparison(a: Run | str | Path, b: Run | str | Path, out: str | Path,
                     comparison: Comparison | None = None) -> Path:
    """Write the comparison page of runs ``a`` and ``b`` (runs or their directories) to ``out``."""
    ra = a if isinstance(a, Run) else load(a, "DIR_A")
    rb = b if isinstance(b, Run) else load(b, "DIR_B")
    path = Path(out)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(build_comparison(ra, rb, comparison), encoding="utf-8")
    tmp.replace(path)
    return path
