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
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR, DISTANT_ORGANS, ORGANS, STAGES

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
    info, t = read_run(directory, ("patients", "lesions", "events"))
    patients, lesions, events = t["patients"], t["lesions"], t["events"]
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
        "treatments": treatment_shares(events, n),
        "skeletal_events": skeletal_event_summary(events, n),
    }


def treatment_shares(events: pd.DataFrame, n_patients: int) -> dict[str, float]:
    """Share of patients who started each treatment (``treatment_start`` details), who were not treated
    for each reason, and who received palliative care."""
    out: dict[str, float] = {}
    for kind, prefix in (("treatment_start", ""), ("not_treated", "not_treated:"), ("palliative_care", "palliative:")):
        rows = events[events["kind"] == kind]
        counts = rows.drop_duplicates(["patient_id", "detail"])["detail"].value_counts()
        for detail, count in sorted(counts.items()):
            out[f"{prefix}{detail}"] = float(count) / max(n_patients, 1)
    return out


def skeletal_event_summary(events: pd.DataFrame, n_patients: int) -> dict[str, float]:
    """Share of patients with at least one skeletal-related event, and events per patient by kind."""
    rows = events[events["kind"] == "skeletal_event"]
    out = {"share_with_skeletal_event": float(rows["patient_id"].nunique()) / max(n_patients, 1)}
    for detail, count in sorted(rows["detail"].value_counts().items()):
        out[f"per_patient:{detail}"] = float(count) / max(n_patients, 1)
    return out


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


# --- descriptive questions of the field (DataFrames in, DataFrames out) ---------------------------------


def _distant(lesions: pd.DataFrame) -> pd.DataFrame:
    return lesions[lesions["organ"].isin(DISTANT_ORGANS)]


def stage_shift(patients: pd.DataFrame) -> pd.DataFrame:
    """Patients by clinical stage (rows, what staging found) and true stage (columns, what was there).

    Every stage appears in both index and columns, with zero counts where none. The off-diagonal cells
    are the stage shift: clinical stage I-III with true stage IV are the occult metastases at diagnosis.
    """
    table = pd.crosstab(patients["clinical_stage"], patients["true_stage"])
    table = table.reindex(index=list(STAGES), columns=list(STAGES), fill_value=0).astype("int64")
    table.index.name, table.columns.name = "clinical_stage", "true_stage"
    return table


def stage_distribution(patients: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares (of all patients) of each stage, clinical beside true; index ``stage``."""
    n = max(len(patients), 1)
    out = pd.DataFrame(index=pd.Index(list(STAGES), name="stage"))
    for kind in ("clinical", "true"):
        counts = patients[f"{kind}_stage"].value_counts().reindex(list(STAGES), fill_value=0)
        out[f"{kind}_patients"] = counts.astype("int64")
        out[f"{kind}_share"] = counts / n
    return out


def occult_by_organ(patients: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """Distant disease present but not found at diagnosis, by organ, among clinical stage I-III.

    ``occult_patients``: patients of clinical stage I-III with a lesion of the organ already >= 2 mm
    at day 0 (``detectable_days <= 0`` and not ended before day 0) — big enough to be seen, yet staged
    I-III. ``seeded_patients``: patients with a colony of the organ seeded by day 0 that later reached
    1 mm (the lesions table holds no colony that never did). Shares are of the clinical stage I-III
    patients (column ``denominator``). The last row, ``any``, counts each patient once.
    """
    early_ids = patients.loc[patients["clinical_stage"] != "IV", "patient_id"]
    distant = _distant(lesions)
    distant = distant[distant["patient_id"].isin(early_ids)]
    alive_at_0 = distant["ended_days"].isna() | (distant["ended_days"] > 0.0)
    visible = distant[(distant["detectable_days"] <= 0.0) & alive_at_0]
    seeded = distant[(distant["seeded_days"] <= 0.0) & alive_at_0]
    n = len(early_ids)
    rows = []
    for organ in (*DISTANT_ORGANS, "any"):
        vis = visible if organ == "any" else visible[visible["organ"] == organ]
        sd = seeded if organ == "any" else seeded[seeded["organ"] == organ]
        rows.append({"organ": organ, "occult_patients": vis["patient_id"].nunique(),
                     "seeded_patients": sd["patient_id"].nunique()})
    out = pd.DataFrame(rows).set_index("organ")
    out["denominator"] = n
    out["occult_share"] = out["occult_patients"] / max(n, 1)
    out["seeded_share"] = out["seeded_patients"] / max(n, 1)
    return out[["occult_patients", "occult_share", "seeded_patients", "seeded_share", "denominator"]]


def distant_recurrences(patients: pd.DataFrame, lesions: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """One row per clinical stage I-III patient: was a distant recurrence found, when, where, how.

    The first distant recurrence is the first distant organ detected after the staging window
    (``window_days``, from ``run.json`` ``scenario.staging.window_days``). Columns: ``patient_id``,
    ``clinical_stage``, ``subtype``, ``relapse`` (bool), ``first_distant_days`` (NaN if none),
    ``first_distant_site`` and ``found_by`` (the ``detected_by`` of the first distant lesion; empty if
    none), ``distant_symptom_days``, ``death_days``, ``death_cause``, ``followup_end_days``.
    """
    early = patients[patients["clinical_stage"] != "IV"]
    found = _distant(lesions)
    found = found[found["detected_days"].notna() & found["patient_id"].isin(early["patient_id"])]
    found = found[found["detected_days"] > window_days]
    found = found.sort_values(["patient_id", "detected_days", "diameter_at_detection_mm"],
                              ascending=[True, True, False], kind="stable").drop_duplicates("patient_id")
    first = found.set_index("patient_id")[["detected_days", "organ", "detected_by"]].rename(columns={
        "detected_days": "first_distant_days", "organ": "first_distant_site", "detected_by": "found_by"})
    cols = ["patient_id", "clinical_stage", "subtype", "distant_symptom_days", "death_days", "death_cause",
            "followup_end_days"]
    out = early[cols].join(first, on="patient_id")
    out["relapse"] = out["first_distant_days"].notna()
    out[["first_distant_site", "found_by"]] = out[["first_distant_site", "found_by"]].fillna("")
    return out.reset_index(drop=True)[["patient_id", "clinical_stage", "subtype", "relapse", "first_distant_days",
                                       "first_distant_site", "found_by", *cols[3:]]]


def lead_times(recurrences: pd.DataFrame) -> pd.DataFrame:
    """Lead time of every detected distant recurrence against the symptom-only counterfactual.

    ``recurrences`` is :func:`distant_recurrences`. ``lead_time_days`` = ``distant_symptom_days`` -
    ``first_distant_days``: positive when the recurrence was found before symptoms alone would have
    revealed it, about zero when symptoms revealed it. NaN when symptoms would never have revealed it
    (death or the horizon came first); ``symptoms_expected`` says which.
    """
    out = recurrences[recurrences["relapse"]].copy()
    out["symptoms_expected"] = out["distant_symptom_days"].notna()
    out["lead_time_days"] = out["distant_symptom_days"] - out["first_distant_days"]
    return out[["patient_id", "clinical_stage", "first_distant_site", "found_by", "first_distant_days",
                "distant_symptom_days", "symptoms_expected", "lead_time_days"]].reset_index(drop=True)


def lead_time_summary(leads: pd.DataFrame, by: str = "found_by") -> pd.DataFrame:
    """Lead time by group (default: how the recurrence was found) and over all (row ``all``).

    Columns: ``recurrences``; ``with_counterfactual`` (symptoms would have revealed it); ``mean_days``,
    ``median_days`` of the lead time among those; ``share_before_symptoms`` (lead time > 0 among them).
    """
    def one(frame: pd.DataFrame) -> dict[str, float]:
        lt = frame["lead_time_days"].dropna()
        return {"recurrences": float(len(frame)), "with_counterfactual": float(len(lt)),
                "mean_days": float(lt.mean()) if len(lt) else float("nan"),
                "median_days": float(lt.median()) if len(lt) else float("nan"),
                "share_before_symptoms": float((lt > 0).mean()) if len(lt) else float("nan")}

    rows = {str(key): one(group) for key, group in leads.groupby(by, sort=True)}
    rows["all"] = one(leads)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out.astype({"recurrences": "int64", "with_counterfactual": "int64"})


def organ_involvement(patients: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """How often each organ is reached, by organ (the primary tumour itself is not counted).

    ``reached``: patients with a lesion of the organ that grew to 1 mm (any time up to death or the
    horizon); ``visible``: one that grew to 2 mm; ``found``: one that was detected. Shares are of all
    patients (``*_share``).
    """
    n = max(len(patients), 1)
    sec = lesions[lesions["origin"] != "primary"]
    rows = []
    for organ in ORGANS:
        o = sec[sec["organ"] == organ]
        rows.append({"organ": organ, "reached": o["patient_id"].nunique(),
                     "visible": o.loc[o["detectable_days"].notna(), "patient_id"].nunique(),
                     "found": o.loc[o["detected_days"].notna(), "patient_id"].nunique()})
    out = pd.DataFrame(rows).set_index("organ")
    for col in ("reached", "visible", "found"):
        out[f"{col}_share"] = out[col] / n
    return out


def organ_patterns(lesions: pd.DataFrame, at: str = "ever") -> pd.DataFrame:
    """Combinations of distant organs found, most frequent first.

    ``at="ever"``: every distant organ detected up to death or the horizon; ``at="first"``: the organs
    found on the day of the first distant detection. Index ``pattern`` (organ names joined by ``+`` in
    vocabulary order); columns ``patients`` and ``share`` (of patients with distant disease found).
    """
    if at not in ("ever", "first"):
        raise InputError("at", f"must be 'ever' or 'first' (got {at!r})")
    found = _distant(lesions)
    found = found[found["detected_days"].notna()]
    if at == "first":
        first_day = found.groupby("patient_id")["detected_days"].transform("min")
        found = found[found["detected_days"] == first_day]
    rank = {o: i for i, o in enumerate(DISTANT_ORGANS)}
    sets = found.groupby("patient_id")["organ"].agg(
        lambda s: "+".join(sorted(set(s), key=rank.__getitem__)))
    counts = sets.value_counts()
    out = pd.DataFrame({"patients": counts.astype("int64"), "share": counts / max(len(sets), 1)})
    out.index.name = "pattern"
    return out.sort_values(["patients"], ascending=False, kind="stable")


def burden_at_first_finding(lesions: pd.DataFrame, window_days: float = 90.0) -> pd.DataFrame:
    """How much distant disease there is when it is first found: one row per patient with distant
    disease found (index ``patient_id``).

    Columns: ``first_distant_days``; ``lesions_found`` and ``organs_found``, the distant lesions and
    organs detected within ``window_days`` of the first finding (the work-up it sets off); ``lesions_present``,
    the distant lesions of 2 mm or more alive on the day of the first finding, found or not; and
    ``oligometastatic``, at most five lesions found. An ``aggregate`` row (lesions beyond the engine's
    per-organ cap) counts as one lesion, so counts beyond the cap are a floor.
    """
    distant = _distant(lesions)
    first = first_distant_detection(lesions)["first_distant_days"]
    f = distant.join(first, on="patient_id", how="inner")
    f = f[f["detected_days"] <= f["first_distant_days"] + window_days]
    out = first.to_frame().sort_index()
    out["lesions_found"] = f.groupby("patient_id").size().astype("int64")
    out["organs_found"] = f.groupby("patient_id")["organ"].nunique().astype("int64")
    d = distant.join(first, on="patient_id", how="inner")
    # a lesion resected or irradiated on that day was there that day
    alive = d[(d["detectable_days"] <= d["first_distant_days"]) & (d["ended_days"] >= d["first_distant_days"])]
    out["lesions_present"] = alive.groupby("patient_id").size().reindex(out.index, fill_value=0).astype("int64")
    out["oligometastatic"] = out["lesions_found"] <= 5
    return out


def deaths_by_lethal_origin(patients: pd.DataFrame) -> pd.DataFrame:
    """Breast cancer deaths by the origin of the lesion that killed, by clinical stage and over all.

    ``present_at_diagnosis``: the lethal lesion was seeded by day 0 (for stage I-III: missed at
    diagnosis, too small or too inconspicuous to see); ``seeded_later``: it was founded after day 0.
    Columns: ``patients``, ``deaths`` (any cause), ``breast_cancer_deaths``, the two origins, and
    ``share_present_at_diagnosis`` (of breast cancer deaths). Index ``clinical_stage`` (I..IV, then
    ``I-III`` and ``all``).
    """
    groups: dict[str, pd.DataFrame] = {s: patients[patients["clinical_stage"] == s] for s in STAGES}
    groups["I-III"] = patients[patients["clinical_stage"] != "IV"]
    groups["all"] = patients
    rows = []
    for name, g in groups.items():
        bc = g[g["death_cause"] == "breast_cancer"]
        present = int((bc["lethal_origin"] == "present_at_diagnosis").sum())
        later = int((bc["lethal_origin"] == "seeded_later").sum())
        rows.append({"clinical_stage": name, "patients": len(g), "deaths": int(g["death_days"].notna().sum()),
                     "breast_cancer_deaths": len(bc), "present_at_diagnosis": present, "seeded_later": later,
                     "share_present_at_diagnosis": present / len(bc) if len(bc) else float("nan")})
    return pd.DataFrame(rows).set_index("clinical_stage")


def care_events(events: pd.DataFrame) -> pd.DataFrame:
    """What the events record after diagnosis besides detections and death — symptoms, treatments,
    palliative care, skeletal events, whatever kinds exist — by ``kind`` and ``detail``.

    Columns ``patients`` (with at least one such event) and ``events``; sorted by kind, then detail.
    Works on plain-string or categorical columns (read only ``patient_id``, ``kind``, ``detail``).
    """
    care = events.loc[~events["kind"].isin(["diagnosis", "detection", "death"]), ["kind", "detail", "patient_id"]]
    out = care.groupby(["kind", "detail"], sort=False, observed=True).agg(
        patients=("patient_id", "nunique"), events=("patient_id", "size")).astype("int64")
    out.index = pd.MultiIndex.from_tuples([(str(k), str(d)) for k, d in out.index], names=["kind", "detail"])
    return out.sort_index()
