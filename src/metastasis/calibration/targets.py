"""Target emulation: for every table in ``data/targets/``, the same quantity computed from simulated tables.

Each ``emulate_<table>`` function takes a :class:`~.settings.Simulations` (one parameter set, one patient
count; settings are simulated on first use and shared) and returns one :class:`Row` per row of the
table. :func:`emulate` runs them all and returns the tidy DataFrame that ``metastasis validate`` and the
calibration use: ``target``, ``row``, ``published``, ``simulated``, ``se`` (simulation standard error of
a percentage, NaN where none is defined), ``unit``, ``kind`` (``percent``, ``time``, ``ratio``,
``hazard_or_odds_ratio``, or ``band`` for a published 95 % interval ``low``-``high``), ``n`` (patients behind the
simulated value) and ``setting``. Times are reported in the table's unit (days, months, years).

Definitions (targets README): *found at diagnosis* = a distant lesion detected by day ``window_days``
(90) of the staging work-up; *de novo stage IV* = clinical stage IV; a *recurrence* is the first
detection after the staging window of a non-primary lesion (any organ); a *distant recurrence* the
first detection after the window of a distant organ. Kaplan-Meier estimates censor deaths that are not
the event counted.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
import pandas as pd

from metastasis.analysis import kaplan_meier_median
from metastasis.biology.growth import (
    age_at_volume,
    diameter_from_volume,
    doubling_days_at,
    volume_at_age,
    volume_from_diameter,
)
from metastasis.calibration.settings import Simulated, Simulations, kaplan_meier_at
from metastasis.detection.imaging import Imaging
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR, DISTANT_ORGANS, MODALITY_CODE, ORGAN_CODE

NAN = float("nan")
VISCERAL = ("lung", "liver", "brain")
#: Site groups of the de novo stage IV patterns: distant nodes and other sites count as one, ``other``.
PATTERN_GROUP = {"bone": "bone", "lung": "lung", "liver": "liver", "brain": "brain",
                 "distant_nodes": "other", "other": "other"}


@dataclass
class Row:
    """One published figure and its simulated counterpart."""

    target: str
    row: str
    published: float
    simulated: float
    unit: str
    kind: str
    setting: str
    se: float = NAN
    n: int = 0
    low: float = NAN
    high: float = NAN


def read_target(name: str) -> list[dict[str, str]]:
    """The rows of ``data/targets/<name>.csv`` (the package's own copy)."""
    text = resources.files("metastasis").joinpath(f"data/targets/{name}.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _share(hit: int, n: int) -> tuple[float, float]:
    """A share in percent and its binomial standard error in percentage points."""
    if n == 0:
        return NAN, NAN
    p = hit / n
    return 100.0 * p, 100.0 * math.sqrt(p * (1.0 - p) / n)


def found_at_diagnosis(sim: Simulated) -> pd.DataFrame:
    """Distant lesions detected within the staging window (``patient_id``, ``organ``)."""
    les = sim.lesions
    rows = les["organ"].isin(DISTANT_ORGANS) & (les["detected_days"] <= sim.window_days)
    return les.loc[rows, ["patient_id", "organ"]]


def first_recurrence_days(sim: Simulated, organs: tuple[str, ...] | None = None,
                          exclude_primary: bool = True) -> pd.Series:
    """Per patient, the day of the first detection after the staging window of a lesion in ``organs``
    (every organ when None), the primary tumour excluded; patients without one are absent."""
    les = sim.lesions
    rows = les["detected_days"] > sim.window_days
    if exclude_primary:
        rows &= les["origin"] != "primary"
    if organs is not None:
        rows &= les["organ"].isin(organs)
    return les[rows].groupby("patient_id")["detected_days"].min()


def _end_days(patients: pd.DataFrame) -> pd.Series:
    return patients["death_days"].fillna(patients["followup_end_days"])


def cumulative_incidence_km(patients: pd.DataFrame, event_days: pd.Series, at_days: float,
                            start_days: float = 0.0) -> tuple[float, float]:
    """1 - Kaplan-Meier at ``at_days`` after ``start_days`` of the event (its day per patient in
    ``event_days``), censored at death or the end of follow-up; percent and standard error."""
    pid = patients["patient_id"]
    ev = pid.map(event_days)
    end = _end_days(patients).to_numpy()
    has = ev.notna().to_numpy()
    duration = np.where(has, ev.to_numpy(dtype=float), end) - start_days
    surv, se = kaplan_meier_at(duration, has, at_days)
    return 100.0 * (1.0 - surv), 100.0 * se


# --- SEER: metastasis at diagnosis, de novo stage IV site patterns and survival -----------------------
def emulate_metastasis_at_diagnosis(sims: Simulations) -> list[Row]:
    sim = sims.get("default")
    found = found_at_diagnosis(sim)
    n = len(sim.patients)
    out = []
    for r in read_target("metastasis_at_diagnosis"):
        organ = r["site"]
        hit = found["patient_id"].nunique() if organ == "any_distant" else \
            found.loc[found["organ"] == organ, "patient_id"].nunique()
        value, se = _share(hit, n)
        out.append(Row("metastasis_at_diagnosis", organ, float(r["percent_of_all_new_cases"]), value, "percent",
                       "percent", "default", se, n))
    return out


def denovo_patterns(sim: Simulated) -> tuple[pd.Series, pd.Series]:
    """Per de novo stage IV patient: the site pattern (SEER, Wang 2019) and the Leone group."""
    found = found_at_diagnosis(sim)
    groups = found.assign(group=found["organ"].map(PATTERN_GROUP)).groupby("patient_id")["group"]
    sets = groups.agg(lambda s: frozenset(s))
    pattern = sets.map(lambda g: f"{next(iter(g))}_only" if len(g) == 1 else "multiple_sites")

    def leone(g: frozenset[str]) -> str:
        bone, visceral = "bone" in g, bool(g & set(VISCERAL))
        return "bone_and_visceral" if bone and visceral else "bone_only" if bone else \
            "visceral" if visceral else "other"

    return pattern, sets.map(leone)


def emulate_denovo_stage4_sites(sims: Simulations) -> list[Row]:
    sim = sims.get("default")
    pattern, _ = denovo_patterns(sim)
    n = len(pattern)
    counts = pattern.value_counts()
    out = []
    for r in read_target("denovo_stage4_sites"):
        value, se = _share(int(counts.get(r["pattern"], 0)), n)
        out.append(Row("denovo_stage4_sites", r["pattern"], float(r["percent"]), value, "percent", "percent",
                       "default", se, n))
    return out


def emulate_survival_by_site(sims: Simulations) -> list[Row]:
    sim = sims.get("default")
    _, leone = denovo_patterns(sim)
    p = sim.patients.set_index("patient_id").loc[leone.index]
    months = (_end_days(p) / DAYS_PER_MONTH).to_numpy()
    died = p["death_days"].notna().to_numpy()
    out = []
    for r in read_target("survival_by_site"):
        group = r["pattern"]
        mask = np.ones(len(p), bool) if group == "all_de_novo_stage4" else (leone == group).to_numpy()
        out.append(Row("survival_by_site", group, float(r["median_overall_survival_months"]),
                       kaplan_meier_median(months[mask], died[mask]), "months", "time", "default",
                       n=int(mask.sum())))
    return out


# --- growth of the primary -----------------------------------------------------------------------------
def _primaries(sim: Simulated) -> pd.DataFrame:
    """Per patient: ``age_years``, ``tumour_diameter_mm`` and the primary's ``growth_rate_per_day``."""
    prim = sim.lesions.loc[sim.lesions["lesion_id"] == 0, ["patient_id", "growth_rate_per_day"]]
    return sim.patients[["patient_id", "age_years", "tumour_diameter_mm"]].merge(prim, on="patient_id")


def primary_growth(sim: Simulated) -> pd.DataFrame:
    """Per patient: age, the primary's volume doubling time at its size at diagnosis (days) and the time
    its Gompertz curve takes from 10 to 20 mm (years)."""
    cap = sim.values["growth.carrying_capacity_mm3"]
    p = _primaries(sim)
    rate = p["growth_rate_per_day"].to_numpy()
    vdt = doubling_days_at(rate, volume_from_diameter(p["tumour_diameter_mm"].to_numpy()), cap)
    tau = age_at_volume(volume_from_diameter(np.array([10.0, 20.0])), cap)
    return pd.DataFrame({"age_years": p["age_years"].to_numpy(), "vdt_days": vdt,
                         "years_10_to_20_mm": (tau[1] - tau[0]) / rate / DAYS_PER_YEAR})


#: The interval-cancer series (MacInnes EG et al. Breast 2020;51:114, PMC7375675): NHS Breast Screening
#: Programme, women 50-70 screened by mammography every three years.
INTERVAL_SERIES_AGES = (50.0, 70.0)
INTERVAL_SERIES_SCREEN_EVERY_DAYS = 3 * DAYS_PER_YEAR


def interval_cancer_growth(sim: Simulated, phases: int = 36) -> pd.DataFrame:
    """Per patient aged 50-70: how likely her cancer is one of the interval-cancer series, and the doubling
    time that series would have measured.

    The series took cancers diagnosed between screens whose last screening mammogram showed, in
    retrospect, the lesion that was missed; it estimated each doubling time as exponential growth between
    the two sizes. Here the last screen falls ``s`` days before diagnosis, ``s`` uniform over the
    screening interval (``phases`` midpoints); the primary's size then is its Gompertz curve run back.
    ``weight`` is the mean over ``s`` of P(visible and missed): ``1 - sensitivity`` of mammography in the
    breast where the primary was visible (>= the visible size), 0 where it was not; ``vdt_days`` the
    weight-averaged estimate ``s ln 2 / ln(V_diagnosis / V_screen)``; ``screen_days`` the weight-averaged
    ``s``.
    """
    cap = sim.values["growth.carrying_capacity_mm3"]
    p = _primaries(sim)
    lo, hi = INTERVAL_SERIES_AGES
    p = p[(p["age_years"] >= lo) & (p["age_years"] <= hi)]
    rate = p["growth_rate_per_day"].to_numpy()[:, None]
    v_dx = volume_from_diameter(p["tumour_diameter_mm"].to_numpy())[:, None]
    s = (np.arange(phases) + 0.5) / phases * INTERVAL_SERIES_SCREEN_EVERY_DAYS
    tau = age_at_volume(v_dx, cap) - rate * s  # Gompertz age at the screen; <= 0: not yet born
    v_screen = np.where(tau > 0, volume_at_age(tau, cap), 0.0)
    seen = Imaging.from_values(sim.values).sensitivity(MODALITY_CODE["mammography"], ORGAN_CODE["breast"],
                                                       diameter_from_volume(v_screen))
    w = np.where((tau > 0) & (seen > 0), 1.0 - seen, 0.0)  # seen > 0 exactly where visible
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # no visible screen: inf/NaN where w is 0
        vdt = s * math.log(2.0) / np.log(v_dx / v_screen)
        return pd.DataFrame({"age_years": p["age_years"].to_numpy(), "weight": total / phases,
                             "vdt_days": np.where(w > 0, w * vdt, 0.0).sum(axis=1) / total,
                             "screen_days": (w * s).sum(axis=1) / total})


#: Which primaries each row of ``primary_growth.csv`` describes (by its ``group``), and the statistic.
_GROWTH_GROUPS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "age 50-70 (screening cohort)": lambda a: (a >= 50) & (a <= 70),
    "age under 50": lambda a: a < 50,
    "age over 70": lambda a: a > 70,
    # the 3-D ultrasound series: unselected symptomatic and screened women alike
    "3-D ultrasound (n=69)": lambda a: a >= 0,
    # Weedon-Fekjaer 2008: the Norwegian screening programme, ages 50-69
    "screening population (n=395188)": lambda a: (a >= 50) & (a < 70),
}


def emulate_primary_growth(sims: Simulations) -> list[Row]:
    sim = sims.get("default")
    g = primary_growth(sim)
    out = []
    for r in read_target("primary_growth"):
        if r["group"] == "interval cancers (n=306)":
            ic = interval_cancer_growth(sim)
            ic = ic[ic["weight"] > 0]
            value = float(np.average(ic["vdt_days"], weights=ic["weight"])) if len(ic) else NAN
            out.append(Row("primary_growth", f"{r['measure']} ({r['group']})", float(r["value"]), value, r["unit"],
                           "time", "default", n=len(ic)))
            continue
        sel = g[_GROWTH_GROUPS[r["group"]](g["age_years"])]
        column = "years_10_to_20_mm" if r["measure"] == "mean_time_10_to_20_mm" else "vdt_days"
        values = sel[column]
        value = float(values.median() if r["measure"].startswith("median") else values.mean())
        out.append(Row("primary_growth", f"{r['measure']} ({r['group']})", float(r["value"]), value, r["unit"],
                       "time", "default", n=len(sel)))
    return out


# --- relapse -------------------------------------------------------------------------------------------
def distant_relapses(sim: Simulated) -> pd.DataFrame:
    """Stage I-III patients with ``relapse_days`` (first distant detection after the window; NaN if none),
    ``end_days`` (death or end of follow-up) and ``subtype``."""
    early = sim.patients[sim.patients["clinical_stage"] != "IV"]
    first = first_recurrence_days(sim, DISTANT_ORGANS)
    return pd.DataFrame({"patient_id": early["patient_id"].to_numpy(), "subtype": early["subtype"].to_numpy(),
                         "relapse_days": early["patient_id"].map(first).to_numpy(dtype=float),
                         "end_days": _end_days(early).to_numpy()})


def emulate_sites_by_subtype_at_relapse(sims: Simulations) -> list[Row]:
    sim = sims.get("default")
    rel = distant_relapses(sim)
    rel = rel[rel["relapse_days"].notna()]
    les = sim.lesions
    ever = les[les["organ"].isin(DISTANT_ORGANS) & les["detected_days"].notna()
               & les["patient_id"].isin(rel["patient_id"])]
    out = []
    for r in read_target("sites_by_subtype_at_relapse"):
        ids = rel.loc[rel["subtype"] == r["subtype"], "patient_id"]
        for organ in ("bone", "liver", "lung", "brain"):
            hit = ever.loc[(ever["organ"] == organ) & ever["patient_id"].isin(ids), "patient_id"].nunique()
            value, se = _share(hit, len(ids))
            out.append(Row("sites_by_subtype_at_relapse", f"{r['subtype']} {organ}", float(r[organ]), value,
                           "percent", "percent", "default", se, len(ids)))
    return out


def smoothed_hazard_peak(duration: np.ndarray, event: np.ndarray, bandwidth: float,
                         grid: np.ndarray) -> float:
    """Time of the maximum of the Epanechnikov-smoothed Nelson-Aalen hazard on ``grid`` (NaN if no event)."""
    d, e = np.asarray(duration, float), np.asarray(event, bool)
    times = np.sort(d[e])
    if len(times) == 0:
        return NAN
    at_risk = len(d) - np.searchsorted(np.sort(d), times, side="left")
    u = (grid[:, None] - times[None, :]) / bandwidth
    kernel = np.where(np.abs(u) < 1, 0.75 * (1 - u**2), 0.0) / bandwidth
    return float(grid[int(np.argmax(kernel @ (1.0 / at_risk)))])


def triple_negative_hazard_ratio(rel: pd.DataFrame, years: float = 5.0) -> float:
    """Cox hazard ratio (lifelines) of triple-negative vs other subtypes for distant recurrence in
    years 0 to ``years``."""
    from lifelines import CoxPHFitter

    limit = years * DAYS_PER_YEAR
    event = rel["relapse_days"].notna() & (rel["relapse_days"] <= limit)
    duration = np.minimum(rel["relapse_days"].fillna(rel["end_days"]), limit) / DAYS_PER_YEAR
    frame = pd.DataFrame({"t": duration.clip(lower=1e-6), "e": event.astype(int),
                          "tn": (rel["subtype"] == "triple_negative").astype(float)})
    if frame["e"].sum() == 0 or frame["tn"].nunique() < 2 or frame.loc[frame["tn"] == 1, "e"].sum() == 0:
        return NAN
    with warnings.catch_warnings():  # small samples: lifelines warns of slow convergence, the estimate stands
        warnings.simplefilter("ignore")
        fit = CoxPHFitter().fit(frame, "t", "e")
    return float(np.exp(fit.params_["tn"]))


def emulate_recurrence_timing(sims: Simulations) -> list[Row]:
    rel = distant_relapses(sims.get("default"))
    relapsed = rel["relapse_days"].dropna()
    tn = rel[rel["subtype"] == "triple_negative"]
    within, se = _share(int((relapsed <= 5 * DAYS_PER_YEAR).sum()), len(relapsed))
    peak = smoothed_hazard_peak((tn["relapse_days"].fillna(tn["end_days"]) / DAYS_PER_YEAR).to_numpy(),
                                tn["relapse_days"].notna().to_numpy(), 1.0, np.arange(0.5, 10.0, 0.05))
    simulated = {
        "median_time_to_distant_metastasis": (float(relapsed.median()) / DAYS_PER_MONTH if len(relapsed) else NAN,
                                              "time", NAN, len(relapsed)),
        "distant_metastases_within_5_years": (within, "percent", se, len(relapsed)),
        "triple_negative_distant_recurrence_hr_first_5_years": (triple_negative_hazard_ratio(rel),
                                                                "hazard_or_odds_ratio", NAN, len(rel)),
        "triple_negative_recurrence_peak": (peak, "time", NAN, len(tn)),
    }
    out = []
    for r in read_target("recurrence_timing"):
        value, kind, err, n = simulated[r["measure"]]
        out.append(Row("recurrence_timing", r["measure"], float(r["value"]), value, r["unit"], kind, "default",
                       err, n))
    return out


_NODE_GROUPS = {"N0": (0, 0), "N1-3": (1, 3), "N4-9": (4, 9)}


def emulate_distant_recurrence_er_positive(sims: Simulations) -> list[Row]:
    """Pan et al. 2017: women alive and free of any recurrence at year 5 (after five years of endocrine
    therapy); Kaplan-Meier of distant recurrence from year 5 to 20, other deaths censored, by T and N."""
    sim = sims.get("er-positive")
    five = 5 * DAYS_PER_YEAR
    p = sim.patients
    any_rec = p["patient_id"].map(first_recurrence_days(sim))
    alive = _end_days(p) > five
    free = alive & ~(any_rec <= five) & (p["clinical_stage"] != "IV")
    p = p[free]
    distant = first_recurrence_days(sim, DISTANT_ORGANS)
    out = []
    for r in read_target("distant_recurrence_er_positive"):
        lo, hi = _NODE_GROUPS[r["nodes"]]
        g = p[(p["t_stage"] == r["t_stage"]) & p["nodes_positive"].between(lo, hi)]
        value, se = cumulative_incidence_km(g, distant, 15 * DAYS_PER_YEAR, five) if len(g) else (NAN, NAN)
        out.append(Row("distant_recurrence_er_positive", f"{r['t_stage']} {r['nodes']}",
                       float(r["percent_distant_recurrence_years_5_to_20"]), value, "percent", "percent",
                       "er-positive", se, len(g)))
    return out


# --- treatment effects ---------------------------------------------------------------------------------
def _local_recurrence(sim: Simulated, months: float) -> tuple[float, float]:
    return cumulative_incidence_km(sim.patients, first_recurrence_days(sim, ("breast",)), months * DAYS_PER_MONTH)


def emulate_treatment_effects(sims: Simulations) -> list[Row]:
    """EBCTCG 2011 arms; Houssami 2014 from breast-conserving therapy with today's care, margins all clear
    and all positive (the same women): the published mix of positive margins, and the odds ratio."""
    from metastasis.scenario import EarlyTreatment

    share = EarlyTreatment().positive_margin_share
    months = 79.0
    clear, clear_se = _local_recurrence(sims.get("bcs-margin-0"), months)
    positive, positive_se = _local_recurrence(sims.get("bcs-margin-1"), months)
    mixed = (1 - share) * clear + share * positive
    mixed_se = math.hypot((1 - share) * clear_se, share * positive_se)
    odds = (positive / (100 - positive)) / (clear / (100 - clear)) if 0 < clear < 100 and positive < 100 else NAN
    n_bcs = sims.count("bcs-margin-0")

    def ebctcg(arm: str, what: str) -> tuple[float, float]:
        sim = sims.get(arm)
        if what == "recurrence":
            return cumulative_incidence_km(sim.patients, first_recurrence_days(sim), 10 * DAYS_PER_YEAR)
        bc = sim.patients.loc[sim.patients["death_cause"] == "breast_cancer"].set_index("patient_id")["death_days"]
        return cumulative_incidence_km(sim.patients, bc, 15 * DAYS_PER_YEAR)

    def row(measure: str) -> tuple[float, float, str, str, int]:
        if measure == "local_recurrence_after_breast_conserving_therapy":
            return mixed, mixed_se, "percent", "bcs-margin-0+1", n_bcs
        if measure == "odds_ratio_local_recurrence_positive_margin":
            return odds, NAN, "hazard_or_odds_ratio", "bcs-margin-0+1", n_bcs
        arm = "ebctcg-bcs-no-rt" if measure.endswith("without_rt") else "ebctcg-bcs-rt"
        value, se = ebctcg(arm, "recurrence" if measure.startswith("ten_year") else "death")
        return value, se, "percent", arm, sims.count(arm)

    out = []
    for r in read_target("treatment_effects"):
        value, se, kind, setting, n = row(r["measure"])
        out.append(Row("treatment_effects", r["measure"], float(r["value"]), value, r["unit"], kind, setting, se, n))
    return out


#: Every target table and its emulation, in the order of the validation table.
EMULATIONS: dict[str, Callable[[Simulations], list[Row]]] = {
    "metastasis_at_diagnosis": emulate_metastasis_at_diagnosis,
    "denovo_stage4_sites": emulate_denovo_stage4_sites,
    "survival_by_site": emulate_survival_by_site,
    "primary_growth": emulate_primary_growth,
    "sites_by_subtype_at_relapse": emulate_sites_by_subtype_at_relapse,
    "recurrence_timing": emulate_recurrence_timing,
    "distant_recurrence_er_positive": emulate_distant_recurrence_er_positive,
    "treatment_effects": emulate_treatment_effects,
}


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    columns = list(Row.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in rows], columns=columns)


def simulations(params: Mapping[str, float] | None = None, patients: int = 20_000, gbsg2: bool = True,
                on_simulate: Callable[[str], None] | None = None, seed: int | None = None,
                scenario_overrides: tuple[str, ...] = ()) -> Simulations:
    """The settings of the targets (with the GBSG2 arms when ``gbsg2``), each simulated when first asked
    for; arguments as for :func:`emulate`."""
    from metastasis.calibration import gbsg2 as gbsg

    return Simulations(dict(params or {}), patients, gbsg.settings() if gbsg2 else {}, on_simulate, seed,
                       scenario_overrides)


def emulate_with(sims: Simulations, targets: tuple[str, ...] | None = None, gbsg2: bool = True) -> pd.DataFrame:
    """Every target row (or those of ``targets``), and with ``gbsg2`` the GBSG2 rows, from ``sims``."""
    from metastasis.calibration import gbsg2 as gbsg

    names = tuple(EMULATIONS) if targets is None else targets
    rows = [row for name in names for row in EMULATIONS[name](sims)]
    if gbsg2:
        rows += gbsg.emulate_gbsg2(sims)
    return rows_frame(rows)


def emulate(params: Mapping[str, float] | None = None, patients: int = 20_000, gbsg2: bool = True,
            targets: tuple[str, ...] | None = None, on_simulate: Callable[[str], None] | None = None,
            seed: int | None = None, scenario_overrides: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every target row, published against simulated with parameter overrides ``params`` (registry names;
    default: the shipped defaults) and ``patients`` as the base patient count of the settings; with
    ``gbsg2`` also the GBSG2 recurrence-free survival rows (:mod:`.gbsg2`); ``seed`` replaces the
    scenarios' own seed (1); ``scenario_overrides`` (``--set`` items) apply to every setting."""
    sims = simulations(params, patients, gbsg2, on_simulate, seed, scenario_overrides)
    return emulate_with(sims, targets, gbsg2)
