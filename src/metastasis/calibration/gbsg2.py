"""Real patients: recurrence-free survival of the GBSG2 trial cohort shipped with lifelines.

``lifelines.datasets.load_gbsg2()``: 686 women with node-positive breast cancer (German Breast Cancer
Study Group 2; mastectomy and axillary dissection, three or six cycles of CMF for all, tamoxifen for two
years in the ``horTh = yes`` arm; recurrence-free survival in days, ``cens = 1`` for a recurrence or
death). Every woman is node-positive, so the nodes split is 1-3 against 4 or more (N1 against N2-3).

Each arm is simulated as a matching cohort of the ``default`` scenario: its age distribution (normal with
the arm's mean and standard deviation, within the arm's youngest and oldest age), its share of ER+
tumours (``estrec`` >= 10 fmol/mg, the trial's cut-off) spread over the subtypes in the default mix,
clinical stage I-III with at least one positive node, mastectomy for all, chemotherapy for all, no
anti-HER2 therapy (the 1980s), endocrine therapy two years or none. Rows: groups by tumour size
(<= 20 mm, > 20 mm), nodes and hormone therapy; simulated recurrence-free survival at 3 and 5 years
against the Kaplan-Meier estimate of the group with its 95 % band (lifelines).

The trial's tumours were graded less often grade 3 than the simulated cohort's (23 % of the 686 against
about half of the simulated node-positive women; 2 of the 23 small tumours with 4 or more nodes on
tamoxifen), so each simulated group is standardised to its trial group's grade mix: a simulated woman of
grade g counts with weight (trial share of g) / (simulated share of g) in a weighted Kaplan-Meier.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from metastasis.calibration.settings import Setting, Simulated, Simulations, kaplan_meier_at
from metastasis.calibration.targets import NAN, Row, first_recurrence_days
from metastasis.vocabulary import DAYS_PER_YEAR, SUBTYPE_ER_POSITIVE, SUBTYPES

#: Years at which recurrence-free survival is compared.
YEARS = (3.0, 5.0)
#: ER+ cut-off of the trial (fmol/mg).
ER_CUTOFF = 10.0
ARMS = {"yes": 2.0, "no": 0.0}  # horTh -> years of endocrine therapy
SOURCE = "GBSG2 (lifelines.datasets.load_gbsg2; Schumacher M et al. J Clin Oncol 1994;12:2086)"


@functools.cache
def data() -> pd.DataFrame:
    """The GBSG2 data set with its group labels (``size``, ``nodes``)."""
    from lifelines.datasets import load_gbsg2

    d = load_gbsg2()
    d["size"] = np.where(d["tsize"] <= 20, "<=20mm", ">20mm")
    d["nodes"] = np.where(d["pnodes"] <= 3, "N1-3", "N4+")
    d["grade"] = d["tgrade"].map({"I": 1, "II": 2, "III": 3}).astype(int)
    return d


def grade_weights(simulated: pd.Series, trial: pd.Series) -> np.ndarray:
    """Case weights that give the simulated women (their ``grade``, 1-3) the trial group's grade mix:
    (trial share) / (simulated share) of each woman's grade, normalised to sum to the simulated count.
    Grades the trial group lacks weigh 0; grades no simulated woman has are left out of the trial's mix."""
    have = simulated.value_counts(normalize=True)
    want = trial.value_counts(normalize=True).reindex(have.index, fill_value=0.0)
    w = simulated.map(want / have).to_numpy(dtype=np.float64)
    total = w.sum()
    return w * (len(w) / total) if total > 0 else w


def _subtype_mix(er_positive_share: float) -> str:
    from metastasis.scenario import load_scenario

    mix = load_scenario("default").cohort.subtype_mix
    er_pos = sum(mix[s] for s, er in zip(SUBTYPES, SUBTYPE_ER_POSITIVE, strict=True) if er)
    shares = {s: mix[s] * (er_positive_share / er_pos if er else (1 - er_positive_share) / (1 - er_pos))
              for s, er in zip(SUBTYPES, SUBTYPE_ER_POSITIVE, strict=True)}
    rounded = {s: round(v, 9) for s, v in shares.items()}
    rounded[SUBTYPES[-1]] = round(1.0 - sum(v for s, v in rounded.items() if s != SUBTYPES[-1]), 9)
    return "{" + ", ".join(f"{s} = {v!r}" for s, v in rounded.items()) + "}"


def _setting(horth: str) -> Setting:
    arm = data()[data()["horTh"] == horth]
    age = arm["age"]
    overrides = (
        f'cohort.age={{distribution = "normal", mean_years = {age.mean():.2f}, sd_years = {age.std():.2f}}}',
        f"cohort.age_min={float(age.min())}", f"cohort.age_max={float(age.max())}",
        f"cohort.subtype_mix={_subtype_mix(float((arm['estrec'] >= ER_CUTOFF).mean()))}",
        'cohort.clinical_stages=["I", "II", "III"]', "cohort.nodes_positive_min=1",
        "treatment.early.breast_conserving_share=0.0", 'treatment.early.adjuvant_chemotherapy="all"',
        "treatment.early.anti_her2=false", f"treatment.early.endocrine_years={ARMS[horth]}",
        "horizon_years=6",  # the figures end at 5 years
    )
    return Setting(f"gbsg2-horth-{horth}", "default", overrides, 0.25,
                   f"GBSG2 arm horTh={horth}: node-positive, mastectomy, chemotherapy, "
                   f"{ARMS[horth]:g} years of endocrine therapy")


@functools.cache
def settings() -> dict[str, Setting]:
    """The two simulated arms, by setting name."""
    return {s.name: s for s in (_setting(h) for h in ARMS)}


def observed() -> pd.DataFrame:
    """Kaplan-Meier recurrence-free survival (percent) of each group at each of :data:`YEARS`, with its
    95 % band: columns ``horTh``, ``size``, ``nodes``, ``years``, ``estimate``, ``low``, ``high``, ``n``."""
    from lifelines import KaplanMeierFitter

    rows = []
    for (horth, size, nodes), g in data().groupby(["horTh", "size", "nodes"], sort=True):
        kmf = KaplanMeierFitter().fit(g["time"], g["cens"])
        band = kmf.confidence_interval_survival_function_
        for years in YEARS:
            t = years * DAYS_PER_YEAR
            lo, hi = band.loc[:t].iloc[-1]
            rows.append({"horTh": horth, "size": size, "nodes": nodes, "years": years,
                         "estimate": 100 * float(kmf.predict(t)), "low": 100 * float(lo), "high": 100 * float(hi),
                         "n": len(g)})
    return pd.DataFrame(rows)


def recurrence_free(sim: Simulated) -> pd.DataFrame:
    """Per simulated patient: group labels, ``duration`` to the first recurrence or death (days; the
    end of follow-up when neither) and ``event``."""
    p = sim.patients
    rec = p["patient_id"].map(first_recurrence_days(sim)).to_numpy(dtype=float)
    death = p["death_days"].to_numpy()
    end = np.fmin(rec, death)
    return pd.DataFrame({
        "size": np.where(p["tumour_diameter_mm"] <= 20, "<=20mm", ">20mm"),
        "nodes": np.where(p["nodes_positive"] <= 3, "N1-3", "N4+"),
        "duration": np.where(np.isnan(end), p["followup_end_days"].to_numpy(), end),
        "event": ~np.isnan(end),
        "grade": p["grade"].to_numpy(),
    })


def _groups(sims: Simulations) -> list[tuple[tuple[str, str, str], pd.DataFrame, pd.DataFrame, np.ndarray]]:
    """Per trial group ``(horTh, size, nodes)``: the trial's women, the simulated women and their grade
    weights."""
    simulated = {h: recurrence_free(sims.get(f"gbsg2-horth-{h}")) for h in ARMS}
    out = []
    for (horth, size, nodes), trial in data().groupby(["horTh", "size", "nodes"], sort=True):
        sim = simulated[str(horth)]
        g = sim[(sim["size"] == size) & (sim["nodes"] == nodes)]
        out.append(((str(horth), str(size), str(nodes)), trial, g, grade_weights(g["grade"], trial["grade"])))
    return out


def emulate_gbsg2(sims: Simulations) -> list[Row]:
    """One row per group and year: simulated recurrence-free survival, standardised to the trial group's
    grade mix, against the Kaplan-Meier band."""
    simulated = {key: (g, w) for key, _, g, w in _groups(sims)}
    out = []
    for r in observed().itertuples(index=False):
        g, w = simulated[(str(r.horTh), str(r.size), str(r.nodes))]
        surv, se = kaplan_meier_at(g["duration"].to_numpy(), g["event"].to_numpy(), float(r.years) * DAYS_PER_YEAR,
                                   w)
        out.append(Row("gbsg2_recurrence_free_survival", f"horTh={r.horTh} {r.size} {r.nodes} {r.years:g}y",
                       float(r.estimate), 100 * surv if len(g) else NAN, "percent", "band", f"gbsg2-horth-{r.horTh}",
                       100 * se if len(g) else NAN, len(g), float(r.low), float(r.high)))
    return out


def curves(sims: Simulations, step_days: float = 30.0, years: float = 6.0) -> pd.DataFrame:
    """Recurrence-free survival curves of every group, trial and simulated, for a figure.

    Columns ``horTh``, ``size``, ``nodes``, ``source`` (``trial``: the Kaplan-Meier step function with its
    95 % band, lifelines; ``simulated``: the grade-standardised estimate every ``step_days`` with
    +- 1.96 standard errors), ``time_days``, ``survival``, ``ci_lower``, ``ci_upper`` (0-1) and ``n``.
    """
    from lifelines import KaplanMeierFitter

    grid = np.arange(0.0, years * DAYS_PER_YEAR + step_days / 2, step_days)
    parts = []
    for (horth, size, nodes), trial, g, w in _groups(sims):
        kmf = KaplanMeierFitter().fit(trial["time"], trial["cens"])
        band = kmf.confidence_interval_survival_function_
        parts.append(pd.DataFrame({
            "source": "trial", "time_days": kmf.survival_function_.index.to_numpy(float),
            "survival": kmf.survival_function_.iloc[:, 0].to_numpy(), "ci_lower": band.iloc[:, 0].to_numpy(),
            "ci_upper": band.iloc[:, 1].to_numpy(), "n": len(trial), "horTh": horth, "size": size, "nodes": nodes}))
        surv, se = np.array([kaplan_meier_at(g["duration"].to_numpy(), g["event"].to_numpy(), t, w)
                             for t in grid]).T
        parts.append(pd.DataFrame({
            "source": "simulated", "time_days": grid, "survival": surv, "ci_lower": np.clip(surv - 1.96 * se, 0, 1),
            "ci_upper": np.clip(surv + 1.96 * se, 0, 1), "n": len(g), "horTh": horth, "size": size, "nodes": nodes}))
    cols = ["horTh", "size", "nodes", "source", "time_days", "survival", "ci_lower", "ci_upper", "n"]
    return pd.concat(parts, ignore_index=True)[cols]
