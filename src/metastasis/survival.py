"""Time-to-event questions: Kaplan-Meier curves by group and Cox hazard ratios, via lifelines.

Two kinds of function. *Builders* turn the tables into one row per patient with ``duration_days``
(from the time origin to the event or censoring) and ``event`` (bool), plus grouping columns:
:func:`overall_survival`, :func:`time_to_distant_relapse`, :func:`distant_relapse_free_survival`,
:func:`survival_after_distant`. *Estimators* take such a frame: :func:`kaplan_meier` (the curve with its
pointwise confidence band), :func:`kaplan_meier_summary` (medians and landmark survival) and
:func:`hazard_ratio` (Cox proportional hazards, B against A). Times are days.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import median_survival_times
from numpy.typing import ArrayLike
from scipy.stats import norm

from metastasis.analysis import distant_recurrences, first_distant_detection
from metastasis.errors import InputError
from metastasis.vocabulary import DAYS_PER_YEAR

_GROUP_COLS = ["clinical_stage", "subtype"]


def overall_survival(patients: pd.DataFrame, cause: str | None = None) -> pd.DataFrame:
    """Survival from diagnosis (day 0) for every patient.

    ``cause=None``: death from any cause is the event. ``cause="breast_cancer"`` (or another
    ``death_cause``): cause-specific survival, deaths of other causes censored at their day.
    """
    end = patients["death_days"].fillna(patients["followup_end_days"])
    died = patients["death_days"].notna()
    event = died if cause is None else died & (patients["death_cause"] == cause)
    out = patients[["patient_id", *_GROUP_COLS]].copy()
    out["duration_days"] = end.to_numpy(float)
    out["event"] = event.to_numpy(bool)
    return out.reset_index(drop=True)


def time_to_distant_relapse(patients: pd.DataFrame, lesions: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Time from diagnosis to the first distant recurrence found, clinical stage I-III patients.

    Event: a distant organ detected after the staging window ``window_days``; death without one
    and the end of follow-up censor. ``1 - KM`` is then the relapse incidence as if no one died.
    """
    rec = distant_recurrences(patients, lesions, window_days)
    end = rec["death_days"].fillna(rec["followup_end_days"])
    out = rec[["patient_id", *_GROUP_COLS]].copy()
    out["duration_days"] = rec["first_distant_days"].fillna(end).to_numpy(float)
    out["event"] = rec["relapse"].to_numpy(bool)
    return out


def distant_relapse_free_survival(patients: pd.DataFrame, lesions: pd.DataFrame,
                                  window_days: float) -> pd.DataFrame:
    """Distant relapse-free survival of clinical stage I-III: a distant recurrence found or death is the event."""
    rec = distant_recurrences(patients, lesions, window_days)
    end = rec["death_days"].fillna(rec["followup_end_days"])
    out = rec[["patient_id", *_GROUP_COLS]].copy()
    out["duration_days"] = np.fmin(rec["first_distant_days"], end).to_numpy(float)
    out["event"] = (rec["relapse"] | rec["death_days"].notna()).to_numpy(bool)
    return out


def survival_after_distant(patients: pd.DataFrame, lesions: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Survival from the first distant detection, every patient with distant disease found.

    Columns besides ``duration_days`` and ``event`` (death of any cause): ``first_distant_site`` (the
    organ of the first distant finding; same-day ties go to the larger lesion) and ``setting``
    (``de_novo`` when found within the staging window, else ``recurrence``).
    """
    first = first_distant_detection(lesions)
    pts = patients.set_index("patient_id").loc[first.index]
    end = pts["death_days"].fillna(pts["followup_end_days"])
    out = pd.DataFrame({
        "patient_id": first.index.to_numpy(),
        "clinical_stage": pts["clinical_stage"].to_numpy(),
        "subtype": pts["subtype"].to_numpy(),
        "first_distant_site": first["first_distant_site"].to_numpy(),
        "setting": np.where(first["first_distant_days"] <= window_days, "de_novo", "recurrence"),
        "duration_days": (end - first["first_distant_days"]).to_numpy(float),
        "event": pts["death_days"].notna().to_numpy(bool),
    })
    return out


def _check(frame: pd.DataFrame, group: str | None) -> None:
    missing = [c for c in ("duration_days", "event", *([group] if group else [])) if c not in frame.columns]
    if missing:
        raise InputError("durations", f"missing column(s) {', '.join(missing)}")


def _groups(frame: pd.DataFrame, group: str | None) -> list[tuple[str, pd.DataFrame]]:
    if group is None:
        return [("all", frame)]
    return [(str(k), g) for k, g in frame.groupby(group, sort=True)]


def kaplan_meier(durations: pd.DataFrame, group: str | None = None, timeline: ArrayLike | None = None,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier curves with pointwise ``1 - alpha`` confidence bands (lifelines, exponential Greenwood).

    Parameters
    ----------
    durations:
        One row per subject with ``duration_days`` and ``event`` (a builder's output).
    group:
        Column to stratify by (one curve per value); ``None`` for one curve labelled ``all``.
    timeline:
        Days at which to report the step functions; default every distinct duration.

    Returns
    -------
    Long DataFrame: ``group``, ``time_days``, ``survival``, ``ci_lower``, ``ci_upper``, ``at_risk``
    (subjects with duration >= time).
    """
    _check(durations, group)
    parts = []
    for name, g in _groups(durations, group):
        if len(g) == 0:
            continue
        d = g["duration_days"].to_numpy(float)
        kmf = KaplanMeierFitter(alpha=alpha).fit(d, g["event"].to_numpy(bool), timeline=timeline)
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_survival_function_
        times = sf.index.to_numpy(float)
        at_risk = len(d) - np.searchsorted(np.sort(d), times, side="left")
        parts.append(pd.DataFrame({"group": name, "time_days": times, "survival": sf.to_numpy(float),
                                   "ci_lower": ci.iloc[:, 0].to_numpy(float),
                                   "ci_upper": ci.iloc[:, 1].to_numpy(float), "at_risk": at_risk}))
    if not parts:
        return pd.DataFrame(columns=["group", "time_days", "survival", "ci_lower", "ci_upper", "at_risk"])
    return pd.concat(parts, ignore_index=True)


def kaplan_meier_summary(durations: pd.DataFrame, group: str | None = None,
                         landmarks_years: Sequence[float] = (5.0, 10.0), alpha: float = 0.05) -> pd.DataFrame:
    """Per group: ``subjects``, ``events``, median survival with its confidence interval (``median_days``,
    ``median_ci_lower_days``, ``median_ci_upper_days``; NaN/inf where the curve does not reach one half)
    and survival at each landmark (``survival_5y``, ...). Index ``group``."""
    _check(durations, group)
    rows = []
    for name, g in _groups(durations, group):
        row: dict[str, float | str] = {"group": name, "subjects": float(len(g)), "events": float(g["event"].sum())}
        if len(g):
            kmf = KaplanMeierFitter(alpha=alpha).fit(g["duration_days"].to_numpy(float), g["event"].to_numpy(bool))
            median = float(kmf.median_survival_time_)
            ci = median_survival_times(kmf.confidence_interval_)
            row["median_days"] = median
            row["median_ci_lower_days"] = float(ci.iloc[0, 0])
            row["median_ci_upper_days"] = float(ci.iloc[0, 1])
            at = [y * DAYS_PER_YEAR for y in landmarks_years]
            for y, value in zip(landmarks_years, kmf.survival_function_at_times(at).to_numpy(float), strict=True):
                row[f"survival_{y:g}y"] = float(value) if g["duration_days"].max() >= y * DAYS_PER_YEAR else np.nan
        rows.append(row)
    out = pd.DataFrame(rows).set_index("group")
    return out.astype({"subjects": "int64", "events": "int64"})


def hazard_ratio(a: pd.DataFrame, b: pd.DataFrame, alpha: float = 0.05) -> dict[str, float]:
    """Cox proportional hazards ratio of B against A (HR < 1: events come later or less often in B).

    ``a`` and ``b`` are builder outputs of the same kind for two runs. The hazard ratio is lifelines'
    Cox fit (Efron ties) of one covariate, "run B". When the two runs share patients (same seed: common
    random numbers, the same women under two strategies) the rows are not independent, so the
    confidence interval and p-value use the robust sandwich variance clustered on ``patient_id``
    (:func:`robust_variance`); otherwise lifelines' model-based one (Wald).

    Returns ``hazard_ratio``, ``ci_lower``, ``ci_upper``, ``p_value``, ``subjects_a``, ``events_a``,
    ``subjects_b``, ``events_b``, ``paired`` (1.0 when clustered).
    """
    for frame in (a, b):
        _check(frame, "patient_id")
    stacked = pd.concat([a.assign(strategy_b=0.0), b.assign(strategy_b=1.0)], ignore_index=True)
    stacked = stacked[["patient_id", "duration_days", "event", "strategy_b"]]
    stacked = stacked.assign(event=stacked["event"].astype(float),
                             duration_days=stacked["duration_days"].clip(lower=1e-6))
    paired = bool(np.intersect1d(a["patient_id"].to_numpy(), b["patient_id"].to_numpy()).size)
    out = {"subjects_a": float(len(a)), "events_a": float(a["event"].sum()), "subjects_b": float(len(b)),
           "events_b": float(b["event"].sum()), "paired": float(paired)}
    if out["events_a"] + out["events_b"] == 0:
        return {**out, "hazard_ratio": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan}
    cph = CoxPHFitter(alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(stacked.drop(columns="patient_id"), "duration_days", "event")
    beta = float(cph.params_["strategy_b"])
    if paired:
        se = float(np.sqrt(robust_variance(stacked["duration_days"].to_numpy(float),
                                           stacked["event"].to_numpy(bool), stacked["strategy_b"].to_numpy(float),
                                           stacked["patient_id"].to_numpy(), beta)))
    else:
        se = float(cph.standard_errors_["strategy_b"])
    z = float(norm.ppf(1.0 - alpha / 2.0))
    p = float(2.0 * norm.sf(abs(beta) / se)) if se > 0 else (1.0 if beta == 0 else 0.0)
    return {**out, "hazard_ratio": float(np.exp(beta)), "ci_lower": float(np.exp(beta - z * se)),
            "ci_upper": float(np.exp(beta + z * se)), "p_value": p}


def robust_variance(duration: np.ndarray, event: np.ndarray, x: np.ndarray, cluster: np.ndarray,
                    beta: float) -> float:
    """Sandwich variance of the log hazard ratio of one covariate, clustered (Lin and Wei 1989).

    Score residuals with Breslow risk sets, summed within clusters, scaled by the inverse information;
    vectorised (lifelines' own ``cluster_col`` loops in Python and takes minutes on a million rows).
    With no tied event times it equals lifelines' robust variance.
    """
    order = np.argsort(duration, kind="stable")
    t, d, xs, cl = duration[order], event[order].astype(bool), x[order], cluster[order]
    r = np.exp(beta * xs)
    # risk-set sums at each subject's own time: subjects with time >= t
    start = np.searchsorted(t, t, side="left")
    tail0 = np.concatenate((np.cumsum(r[::-1])[::-1], [0.0]))
    tail1 = np.concatenate((np.cumsum((r * xs)[::-1])[::-1], [0.0]))
    tail2 = np.concatenate((np.cumsum((r * xs * xs)[::-1])[::-1], [0.0]))
    s0, s1, s2 = tail0[start], tail1[start], tail2[start]
    xbar = s1 / s0
    info = float(np.sum((s2 / s0 - xbar**2)[d]))
    if info <= 0.0:
        return float("nan")
    a = np.cumsum(np.where(d, 1.0 / s0, 0.0))
    b = np.cumsum(np.where(d, xbar / s0, 0.0))
    last = np.searchsorted(t, t, side="right") - 1  # the last subject with time <= t (ties included)
    score = np.where(d, xs - xbar, 0.0) - r * (xs * a[last] - b[last])
    _, idx = np.unique(cl, return_inverse=True)
    per_cluster = np.bincount(idx, weights=score)
    return float(np.sum(per_cluster**2) / info**2)
