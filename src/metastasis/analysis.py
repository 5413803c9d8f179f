"""Questions answered from the output tables (never from the engine): stage shift, occult metastasis,
relapse, first site, survival after distant disease, and the headline summary of a run.

Functions take DataFrames as ``pandas.read_parquet(DIR / name)`` returns them and return numbers or
DataFrames. Times in days unless a name says otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis.errors import InputError
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR, DISTANT_ORGANS, STAGES

TABLE_NAMES = ("patients", "lesions", "exams", "events")


def read_run(directory: Path, tables: tuple[str, ...] = TABLE_NAMES) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """``run.json`` and the requested tables of a finished run."""
    run_json = directory / "run.json"
    if not run_json.exists():
        raise InputError("DIR", f"{directory} holds no run (no run.json)")
    info = json.loads(run_json.read_text())
    if info.get("status") != "complete":
        raise InputError("DIR", f"{directory} holds an unfinished run (finish it with simulate --resume)")
    frames = {name: pd.read_parquet(directory / name) for name in tables}
    for frame in frames.values():
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
    return info, frames


def kaplan_meier_median(duration: np.ndarray, event: np.ndarray) -> float:
    """Median of the Kaplan-Meier estimate (NaN when the curve never reaches one half)."""
    if len(duration) == 0:
        return float("nan")
    order = np.argsort(duration, kind="stable")
    d, e = np.asarray(duration, float)[order], np.asarray(event, bool)[order]
    times, first = np.unique(d, return_index=True)
    deaths = np.add.reduceat(e.astype(float), first)
    at_risk = len(d) - first
    survival = np.cumprod(1.0 - deaths / at_risk)
    below = np.nonzero(survival <= 0.5)[0]
    return float(times[below[0]]) if below.size else float("nan")


def first_distant_detection(lesions: pd.DataFrame) -> pd.DataFrame:
    """Per patient with distant disease found: day of the first distant finding and its organ.

    Ties on the day go to the organ of the larger lesion at detection.
    """
    found = lesions[lesions["organ"].isin(DISTANT_ORGANS) & lesions["detected_days"].notna()]
    found = found.sort_values(["patient_id", "detected_days", "diameter_at_detection_mm"],
                              ascending=[True, True, False])
    first = found.drop_duplicates("patient_id")
    return first.set_index("patient_id")[["detected_days", "organ"]].rename(
        columns={"detected_days": "first_distant_days", "organ": "first_distant_site"})


def summary(directory: Path) -> dict[str, Any]:
    """The headline figures of a finished run (SPEC ``summary --json`` keys)."""
    info, t = read_run(directory, ("patients", "lesions"))
    patients, lesions = t["patients"], t["lesions"]
    n = len(patients)
    window = float(info["scenario"]["staging"]["window_days"])

    def shares(col: str) -> dict[str, float]:
        counts = patients[col].value_counts()
        return {s: float(counts.get(s, 0)) / n for s in STAGES}

    early = patients[patients["clinical_stage"] != "IV"]
    present = lesions[lesions["organ"].isin(DISTANT_ORGANS) & (lesions["detectable_days"] <= 0.0)
                      & (lesions["seeded_days"] <= 0.0) & lesions["patient_id"].isin(early["patient_id"])]
    occult_by_organ = {o: float(present.loc[present["organ"] == o, "patient_id"].nunique()) / n for o in DISTANT_ORGANS}

    first = first_distant_detection(lesions)
    relapse = first[first.index.isin(early["patient_id"]) & (first["first_distant_days"] > window)]
    n_early = max(len(early), 1)
    site_counts = relapse["first_distant_site"].value_counts()
    n_relapse = max(len(relapse), 1)

    after = patients.set_index("patient_id").loc[first.index]
    end = after["death_days"].fillna(after["followup_end_days"])
    duration = (end - first["first_distant_days"]).to_numpy()
    died = after["death_days"].notna().to_numpy()
    median_after = kaplan_meier_median(duration, died) / DAYS_PER_MONTH

    bc = patients[patients["death_cause"] == "breast_cancer"]
    return {
        "patients": n,
        "share_clinical_stage": shares("clinical_stage"),
        "share_true_stage": shares("true_stage"),
        "share_occult_distant": float(patients["occult_distant"].mean()),
        "share_occult_distant_by_organ": occult_by_organ,
        "share_micrometastatic_distant": float(patients["micrometastatic_distant"].mean()),
        "share_distant_relapse_5y": float((relapse["first_distant_days"] <= 5 * DAYS_PER_YEAR).sum()) / n_early,
        "share_distant_relapse_10y": float((relapse["first_distant_days"] <= 10 * DAYS_PER_YEAR).sum()) / n_early,
        "first_distant_site": {o: float(site_counts.get(o, 0)) / n_relapse for o in DISTANT_ORGANS},
        "median_survival_after_distant_months": None if np.isnan(median_after) else round(median_after, 2),
        "share_deaths_lethal_present_at_diagnosis": (
            float((bc["lethal_origin"] == "present_at_diagnosis").mean()) if len(bc) else None),
        "share_death_by_cause": {c: float((patients["death_cause"] == c).mean())
                                 for c in ("breast_cancer", "treatment", "other")},
    }


def format_summary(s: dict[str, Any]) -> str:
    """The summary as an aligned plain-text table."""
    lines = []
    for key, value in s.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                lines.append(f"  {k:<40} {_fmt(v)}")
        else:
            lines.append(f"{key:<42} {_fmt(value)}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return "n/a" if v is None else str(v)
