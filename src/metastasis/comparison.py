"""Two runs side by side: two strategies (follow-up schedules, staging work-ups) for the same cohort.

When both runs use the same seed and eligibility, patient *i* is the same woman in both (common random
numbers), so the differences are the strategy's alone and the paired comparisons below apply: the stage
migration table pairs each woman's clinical stage under A and B, and the Cox confidence intervals are
clustered on the patient. Shares are 0..1, times in the unit their name says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metastasis import analysis, survival
from metastasis.results import Run
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR, STAGES

ENDPOINTS: dict[str, str] = {
    "distant_relapse_free_survival": "distant relapse-free survival (stage I-III; relapse found or death)",
    "overall_survival": "overall survival (all patients; death of any cause)",
    "breast_cancer_survival": "breast cancer-specific survival (all patients)",
}


@dataclass(frozen=True)
class Comparison:
    """Everything ``metastasis compare`` shows.

    Attributes
    ----------
    labels: the names of run A and run B.
    headline: index ``metric``; columns ``unit``, A, B, ``difference`` (B - A).
    stages: clinical stage shares (index ``stage``; columns A, B).
    migration: shared patients by clinical stage under A (rows) and B (columns).
    lead_time: index A, B; the ``all`` row of ``analysis.lead_time_summary`` of each.
    hazard_ratios: index ``endpoint`` (:data:`ENDPOINTS`); ``hazard_ratio``, ``ci_lower``, ``ci_upper``,
        ``p_value``, subjects and events of each run, ``paired``.
    durations: endpoint -> the builder frames of both runs stacked, with a column ``run``.
    leads: run label -> ``analysis.lead_times`` of that run.
    shared_patients: patients present in both runs.
    """

    labels: tuple[str, str]
    headline: pd.DataFrame
    stages: pd.DataFrame
    migration: pd.DataFrame
    lead_time: pd.DataFrame
    hazard_ratios: pd.DataFrame
    durations: dict[str, pd.DataFrame]
    leads: dict[str, pd.DataFrame]
    shared_patients: int


def run_labels(a: Run, b: Run) -> tuple[str, str]:
    """Distinct labels: the scenario names, else the directory names, else with A / B appended."""
    if a.name != b.name:
        return a.name, b.name
    if a.directory.name != b.directory.name:
        return a.directory.name, b.directory.name
    return f"{a.name} (A)", f"{b.name} (B)"


def stage_migration(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Patients present in both ``patients`` tables by clinical stage under A (rows) and B (columns)."""
    both = a[["patient_id", "clinical_stage"]].merge(b[["patient_id", "clinical_stage"]], on="patient_id",
                                                     suffixes=("_a", "_b"))
    table = pd.crosstab(both["clinical_stage_a"], both["clinical_stage_b"])
    table = table.reindex(index=list(STAGES), columns=list(STAGES), fill_value=0).astype("int64")
    table.index.name, table.columns.name = "A", "B"
    return table


def _median_km(frame: pd.DataFrame) -> float:
    return analysis.kaplan_meier_median(frame["duration_days"].to_numpy(float), frame["event"].to_numpy(bool))


def _survival_at(frame: pd.DataFrame, days: float) -> float:
    km = survival.kaplan_meier(frame, timeline=[days])
    return float(km["survival"].iloc[0]) if len(km) and frame["duration_days"].max() >= days else float("nan")


def _metrics(run: Run, durations: dict[str, pd.DataFrame], leads: pd.DataFrame) -> dict[str, tuple[str, float]]:
    p, les = run.patients, run.lesions
    window = run.staging_window_days
    occult = analysis.occult_by_organ(p, les)
    rec = analysis.distant_recurrences(p, les, window)
    n_early = max(len(rec), 1)
    after = survival.survival_after_distant(p, les, window)
    after_rec = after[after["setting"] == "recurrence"]
    lt = leads["lead_time_days"].dropna()
    return {
        "patients": ("count", float(len(p))),
        "clinical_stage_iv": ("share", float((p["clinical_stage"] == "IV").mean())),
        "occult_metastasis_stage_i_iii": ("share", float(occult.at["any", "occult_share"])),
        "distant_relapse_5y": ("share", float((rec["first_distant_days"] <= 5 * DAYS_PER_YEAR).sum()) / n_early),
        "distant_relapse_10y": ("share", float((rec["first_distant_days"] <= 10 * DAYS_PER_YEAR).sum()) / n_early),
        "recurrences_found_before_symptoms": ("share", float((lt > 0).mean()) if len(lt) else float("nan")),
        "mean_lead_time": ("months", float(lt.mean()) / DAYS_PER_MONTH if len(lt) else float("nan")),
        "median_survival_after_distant_recurrence": ("months", _median_km(after_rec) / DAYS_PER_MONTH),
        "overall_survival_10y": ("share", _survival_at(durations["overall_survival"], 10 * DAYS_PER_YEAR)),
        "breast_cancer_deaths": ("share", float((p["death_cause"] == "breast_cancer").mean())),
    }


def _durations(run: Run) -> dict[str, pd.DataFrame]:
    p, les, window = run.patients, run.lesions, run.staging_window_days
    return {"distant_relapse_free_survival": survival.distant_relapse_free_survival(p, les, window),
            "overall_survival": survival.overall_survival(p),
            "breast_cancer_survival": survival.overall_survival(p, cause="breast_cancer")}


def compare_runs(a: Run, b: Run) -> Comparison:
    """Compare run B with run A (differences and hazard ratios are B against A)."""
    labels = run_labels(a, b)
    dur = {labels[0]: _durations(a), labels[1]: _durations(b)}
    leads = {lab: analysis.lead_times(analysis.distant_recurrences(r.patients, r.lesions, r.staging_window_days))
             for lab, r in zip(labels, (a, b), strict=True)}
    ma, mb = (_metrics(r, dur[lab], leads[lab]) for lab, r in zip(labels, (a, b), strict=True))
    headline = pd.DataFrame({"unit": [u for u, _ in ma.values()], labels[0]: [v for _, v in ma.values()],
                             labels[1]: [v for _, v in mb.values()]}, index=pd.Index(list(ma), name="metric"))
    headline["difference"] = headline[labels[1]] - headline[labels[0]]

    stages = pd.DataFrame({lab: r.patients["clinical_stage"].value_counts(normalize=True)
                          .reindex(list(STAGES), fill_value=0.0) for lab, r in zip(labels, (a, b), strict=True)})
    stages.index.name = "stage"
    lead_time = pd.DataFrame({lab: analysis.lead_time_summary(leads[lab]).loc["all"] for lab in labels}).T
    lead_time.index.name = "run"
    hrs = {}
    for endpoint in ENDPOINTS:
        hrs[endpoint] = survival.hazard_ratio(dur[labels[0]][endpoint], dur[labels[1]][endpoint])
    hazard_ratios = pd.DataFrame.from_dict(hrs, orient="index")
    hazard_ratios.index.name = "endpoint"
    stacked = {e: pd.concat([dur[lab][e].assign(run=lab) for lab in labels], ignore_index=True) for e in ENDPOINTS}
    shared = int(np.intersect1d(a.patients["patient_id"], b.patients["patient_id"]).size)
    return Comparison(labels, headline, stages, stage_migration(a.patients, b.patients), lead_time,
                      hazard_ratios, stacked, leads, shared)


def format_comparison(c: Comparison) -> str:
    """The comparison as plain text: headline metrics, then hazard ratios."""
    a, b = c.labels
    width = max(len(a), len(b), 12)
    lines = [f"{'metric':<44} {'unit':<7} {a:>{width}} {b:>{width}} {'B - A':>10}"]
    for metric, row in c.headline.iterrows():
        def fmt(v: float, unit: str = str(row["unit"])) -> str:
            if not np.isfinite(v):
                return "n/a"
            return f"{v:,.0f}" if unit == "count" else (f"{v:.4f}" if unit == "share" else f"{v:.2f}")
        lines.append(f"{metric!s:<44} {row['unit']!s:<7} {fmt(row[a]):>{width}} {fmt(row[b]):>{width}} "
                     f"{fmt(row['difference']):>10}")
    lines.append("")
    lines.append(f"hazard ratio, {b} vs {a} (95% CI{', clustered on patient' if c.shared_patients else ''}):")
    for endpoint, row in c.hazard_ratios.iterrows():
        lines.append(f"  {endpoint!s:<32} {row['hazard_ratio']:.3f} ({row['ci_lower']:.3f}-{row['ci_upper']:.3f})"
                     f"  p={row['p_value']:.3g}  events {row['events_a']:,.0f} / {row['events_b']:,.0f}")
    lines.append(f"shared patients: {c.shared_patients:,}")
    return "\n".join(lines)
