"""The parameter registry: every number of the model with its unit, allowed range, prior and source.

Names are dotted (``dissemination.mu``) and are the keys of a scenario's ``[parameters]`` table and of
``--set parameters.<name>=<value>``. Values are plain floats; the engine reads them from the dict that
:func:`resolve` returns. Parameters with a ``prior`` form the calibrated set: MODEL.md's twelve and the
seeding exponent ``dissemination.gamma``, whose literature value (2/3) made the T gradient of distant
relapse twice the published one. Everything else is an input with a citation or a structural choice
stated in MODEL.md.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources

from metastasis.errors import InputError
from metastasis.vocabulary import COVERAGE, SUBTYPES

CALIBRATED_SOURCE = (
    "calibrated — `metastasis refine`: coordinate search on the miss score of all 70 validation rows "
    "(targets/ and GBSG2); 2026-11-24 from hand-set starting values at 10,000 patients per evaluation, then "
    "2026-11-28 two sweeps from that point at 20,000 patients, with endocrine.growth_factor 0.35; 2026-11-29 "
    "two sweeps at 20,000 patients after the subtypes' aggressiveness shifts and ER- dormancy exit were set "
    "from the California Cancer Registry (that exit held fixed), then twice two sweeps at seeds 1 and 2 with "
    "the objective rows (a move must pass more rows)"
)
#: Stage IV at diagnosis by subtype (Tao et al., California Cancer Registry 2005-2011): anchors the subtypes'
#: aggressiveness shifts and ER- dormancy.
_CCR_STAGE_IV = ("Tao L et al. Cancer Causes Control 2016;27:1127 and its abstract P3-07-26 (California Cancer "
                 "Registry 2005-2011: stage IV at diagnosis in 4 % of HR+/HER2-, 6 % of HR+/HER2+, 8 % of "
                 "HR-/HER2+ and 6 % of triple-negative cancers)")


@dataclass(frozen=True)
class Parameter:
    """One model number.

    ``prior`` is ``(family, a, b)`` for calibrated parameters: ``("uniform", low, high)`` or
    ``("loguniform", low, high)``; ``None`` for inputs and structural choices.
    """

    name: str
    default: float
    unit: str
    low: float
    high: float
    source: str
    description: str = ""
    prior: tuple[str, float, float] | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


REGISTRY: dict[str, Parameter] = {}


def _add(
    name: str,
    default: float,
    unit: str,
    low: float,
    high: float,
    source: str,
    description: str = "",
    prior: tuple[str, float, float] | None = None,
) -> None:
    if not low <= default <= high:  # a registry bug, never user input
        raise ValueError(f"default of {name} outside its range")
    REGISTRY[name] = Parameter(name, float(default), unit, float(low), float(high), source, description, prior)


def _read_csv(package_path: str) -> list[dict[str, str]]:
    text = resources.files("metastasis").joinpath(package_path).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


# --- 1. The virtual patient -------------------------------------------------------------------------
_SEER_AGE = "SEER Cancer Stat Facts: Female Breast Cancer, percent of new cases by age group (2017-2021)"
for group, share in (
    ("20_34", 1.9),
    ("35_44", 8.1),
    ("45_54", 19.1),
    ("55_64", 25.5),
    ("65_74", 26.2),
    ("75_84", 14.5),
    ("85_99", 4.7),
):
    _add(f"cohort.age_share.{group}", share, "percent of new cases", 0, 100, _SEER_AGE,
         "age distribution used by `age = {distribution = \"seer\"}` (uniform within each group)")

_T_SOURCE = ("assumption: lognormal diameter set to give about 60 % T1, 33 % T2, 7 % T3, the T distribution "
             "of SEER registry series; larger without screening (ages outside 50-74) and in ER- disease")
_add("cohort.diameter_median_mm", 15.5, "mm", 5, 50, _T_SOURCE, "median tumour diameter at diagnosis")
_add("cohort.diameter_log_sd", 0.6, "log mm", 0.1, 1.5, _T_SOURCE, "spread of log diameter")
_add("cohort.diameter_factor_unscreened", 1.25, "ratio", 1, 2, _T_SOURCE, "ages outside 50-74")
_add("cohort.diameter_factor_er_negative", 1.2, "ratio", 1, 2, _T_SOURCE, "ER- subtypes")

_N_SOURCE = ("assumption: logistic node positivity and a lognormal count, both rising with diameter and "
             "aggressiveness (nodes are seeded by the same propensity A^beta_s as distant colonies, so the count "
             "marks it: Pan et al. 2017 and GBSG2 gradients by nodes), set to about 30 % node-positive at 20 mm "
             "and N1:N2:N3 near 70:22:8 among node-positive cases (SEER)")
_add("cohort.nodes_logit_at_20mm", -1.1, "logit", -5, 5, _N_SOURCE, "log-odds of N+ at 20 mm, A = 1")
_add("cohort.nodes_logit_per_log_diameter", 1.1, "logit per log mm", 0, 5, _N_SOURCE)
_add("cohort.nodes_logit_per_log_aggressiveness", 2.0, "logit per log A", 0, 5, _N_SOURCE)
_add("cohort.nodes_count_median", 0.9, "nodes", 0.5, 10, _N_SOURCE, "lognormal count of positive nodes")
_add("cohort.nodes_count_log_sd", 0.8, "log nodes", 0.1, 3, _N_SOURCE)
_add("cohort.nodes_count_per_log_aggressiveness", 1.2, "log nodes per log A", 0, 5, _N_SOURCE)

_GRADE_SOURCE = ("assumption: grade mix by subtype (luminal A mostly grade 1-2; HER2-enriched and "
                 "triple-negative mostly grade 3), as in surrogate subtype definitions (Goldhirsch 2013)")
for subtype, (g1, g2) in {
    "luminal_a": (0.35, 0.55),
    "luminal_b": (0.05, 0.45),
    "luminal_her2": (0.03, 0.40),
    "her2_enriched": (0.02, 0.28),
    "triple_negative": (0.02, 0.13),
}.items():
    _add(f"cohort.grade1_share.{subtype}", g1, "probability", 0, 1, _GRADE_SOURCE)
    _add(f"cohort.grade2_share.{subtype}", g2, "probability", 0, 1, _GRADE_SOURCE)

_add("aggressiveness.sigma", 0.604, "log units", 0.05, 2.0, CALIBRATED_SOURCE,
     "sigma_A: spread of log aggressiveness", prior=("uniform", 0.2, 1.2))
_A_SOURCE = ("MODEL.md 1: triple-negative and HER2-enriched disease wider and higher; the shifts set, with "
             "the ER- dormancy exit, so that stage IV at diagnosis by subtype is near the registry's ratios to "
             "HR+/HER2- (1.5, 2 and 1.5; 1.7, 2.4 and 1.7 with the defaults of 2026-11-29), " + _CCR_STAGE_IV)
_A_WIDTH_SOURCE = "MODEL.md 1: triple-negative and HER2-enriched disease wider (assumption for the size)"
for subtype, shift, width in (
    ("luminal_a", -0.3, 1.0),
    ("luminal_b", 0.05, 1.0),
    ("luminal_her2", 0.3, 1.0),
    ("her2_enriched", 0.3, 1.25),
    ("triple_negative", 0.1, 1.25),
):
    _add(f"aggressiveness.log_shift.{subtype}", shift, "sigma units", -3, 3, _A_SOURCE)
    _add(f"aggressiveness.width.{subtype}", width, "ratio", 0.2, 3, _A_WIDTH_SOURCE)
_add("aggressiveness.beta_growth", 0.5, "exponent", 0, 3,
     "MODEL.md 1 (structural: beta_s > beta_g so A does not cancel out)", "beta_g")
_add("aggressiveness.beta_seeding", 3.41, "exponent", 0, 5, CALIBRATED_SOURCE + "; seeding concentrated in "
     "aggressive disease gives de novo stage IV its many colonies once diagnosis is symptom-led", "beta_s",
     prior=("uniform", 0.6, 4.0))

# --- 2. Growth ---------------------------------------------------------------------------------------
_add("growth.carrying_capacity_mm3", 4.19e6, "mm^3", 1e5, 1e8,
     "Norton L. Cancer Res 1988;48:7067 (Gompertzian plateau of order 10^12 cells; 200 mm sphere)",
     "Gompertz K of every lesion")
_PEER = "Peer PG et al. Cancer 1993 (median volume doubling time 157 d at age 50-70)"
_add("growth.doubling_days_median", 162.0, "days", 20, 1000,
     _PEER + "; set so that, after the grade and ER factors, the 50-70 median is near 157 d",
     "primary volume doubling time at 15 mm for age 50-70, grade 1-2, ER+, A = 1")
_add("growth.doubling_factor_age_under_50", 0.51, "ratio", 0.1, 2, "Peer PG et al. Cancer 1993 (80/157 d)")
_add("growth.doubling_factor_age_over_70", 1.2, "ratio", 0.1, 3, "Peer PG et al. Cancer 1993 (188/157 d)")
_add("growth.doubling_factor_grade3", 0.75, "ratio", 0.1, 2,
     "assumption: grade 3 grows faster (MODEL.md 2)")
_add("growth.doubling_factor_er_negative", 0.8, "ratio", 0.1, 2,
     "assumption: ER- grows faster (MODEL.md 2)")
_add("growth.doubling_log_sd", 0.65, "log days", 0.05, 2,
     "Weedon-Fekjaer H et al. Breast Cancer Res 2008 (10 to 20 mm in 1.7 years on average, wide spread)")
_add("growth.metastasis_factor", 2.41, "ratio", 0.1, 5, CALIBRATED_SOURCE,
     "metastasis Gompertz rate relative to the primary (Friberg & Mattson 1997: similar)",
     prior=("loguniform", 0.5, 4.0))
_add("growth.lesion_log_sd", 0.3, "log units", 0, 1.5, "assumption: lesion-to-lesion spread of growth rate")

# --- 3. Dissemination --------------------------------------------------------------------------------
_add("dissemination.mu", 2.07e-4, "colonies per day from 10^9 cells (1 cm^3), A = 1", 1e-8, 1.0, CALIBRATED_SOURCE,
     "mu: seeding rate of viable colonies, mu * A^beta_s * (N / 10^9)^gamma (stated at 10^9 cells so that mu "
     "and gamma are not confounded)", prior=("loguniform", 3e-5, 3e-3))
_add("dissemination.gamma", 0.358, "exponent", 0.3, 1.0, CALIBRATED_SOURCE + "; Iwata, Kawasaki & Shigesada "
     "J Theor Biol 2000 and Benzekry et al. 2016 use the surface dimension 2/3, which makes distant relapse "
     "of T2 twice that of T1 within a node group (Pan et al. 2017: 1.5 times)",
     prior=("uniform", 0.3, 1.0))
_add("dissemination.cluster_mean", 1.0, "colonies per seeding event", 1, 50,
     "structural extension beyond MODEL.md 3 (experimental; 1 = off, MODEL.md's one colony per event): a seeding "
     "event founds 1 + Poisson(mean - 1) colonies sharing their seeding day and dormancy draw, as circulating "
     "tumour-cell clusters do (Aceto et al. Cell 2014;158:1110)")
_add("dissemination.secondary_scale", 0.58, "ratio", 0, 2, CALIBRATED_SOURCE,
     "seeding of metastases relative to the primary (metastasis to metastasis)", prior=("uniform", 0.0, 1.0))
_add("dissemination.dormancy_exit_er_positive", 1.91e-3, "per day", 1e-6, 1e-1, CALIBRATED_SOURCE,
     "lambda for ER+ disease (mean dormancy 1.4 years); Pan et al. 2017 flat late hazard",
     prior=("loguniform", 1 / (20 * 365.25), 1 / (1 * 365.25)))
_add("dissemination.dormancy_exit_er_negative", 1.5e-3, "per day", 1e-6, 1e-1,
     "set with the subtypes' aggressiveness shifts (2026-11-29), " + _CCR_STAGE_IV + "; with the 1.31e-2 "
     "per day of before, HER2-enriched and triple-negative cancers were stage IV at diagnosis 4 and 3 times "
     "as often as HR+/HER2- ones",
     "lambda for ER- disease (mean dormancy 1.8 years; the triple-negative peak of Dent et al. 2007, 3 "
     "years, is not reached: see the README's misfits)",
     prior=("loguniform", 1 / (4 * 365.25), 1 / (0.1 * 365.25)))
_DORMANCY_SHAPE = ("structural extension beyond MODEL.md 3 (experimental; 1 = off, MODEL.md's exponential): a "
                   "Weibull dormancy of this shape with the same mean; below 1 many colonies wake at once and a "
                   "long tail sleeps for years, above 1 wakes gather around the mean")
_add("dissemination.dormancy_shape_er_positive", 1.0, "Weibull shape", 0.2, 5, _DORMANCY_SHAPE,
     "shape of the dormancy time of ER+ disease")
_add("dissemination.dormancy_shape_er_negative", 1.0, "Weibull shape", 0.2, 5, _DORMANCY_SHAPE,
     "shape of the dormancy time of ER- disease")
_add("dissemination.dormancy_factor_bone_er_positive", 0.7, "ratio", 0.05, 2,
     "MODEL.md 3: dormancy long in bone for ER+ disease (assumption for the size)")
_add("dissemination.dormancy_factor_brain", 0.6, "ratio", 0.01, 2,
     "MODEL.md 3 (dormancy by organ): brain is a late site, rare at diagnosis (0.35 %, SEER) against 10-25 % "
     "of relapses; set so that brain at diagnosis is near the SEER share (2026-11-29, default scenario, "
     "100,000 women at seeds 1 and 2: 0.346 % at 0.6, 0.325 % at 0.55, 0.377 % at 0.65)")
_add("dissemination.tropism_distant_nodes", 0.10, "probability", 0, 0.5,
     "set so that distant nodes and other sites carry about 1/6 of colonies, consistent with other_only "
     "7.34 % of de novo stage IV (Wang R et al. BMC Cancer 2019, SEER)")
_add("dissemination.tropism_other", 0.06, "probability", 0, 0.5,
     "as dissemination.tropism_distant_nodes (pleura, peritoneum, adrenal, skin)")

_TROPISM_SOURCE = ("sites_by_subtype_at_relapse.csv (multicentre relapse cohort n=1350, J Breast Cancer 2016), "
                   "shares normalised per subtype; luminal_her2 = mean of luminal_b and her2_enriched")


def _tropism_from_targets() -> dict[str, dict[str, float]]:
    rows = {r["subtype"]: r for r in _read_csv("data/targets/sites_by_subtype_at_relapse.csv")}
    four = ("bone", "lung", "liver", "brain")
    raw = {s: {o: float(rows[s][o]) for o in four} for s in rows}
    raw["luminal_her2"] = {o: (raw["luminal_b"][o] + raw["her2_enriched"][o]) / 2 for o in four}
    rest = REGISTRY["dissemination.tropism_distant_nodes"].default + REGISTRY["dissemination.tropism_other"].default
    out: dict[str, dict[str, float]] = {}
    for s in SUBTYPES:
        total = sum(raw[s].values())
        out[s] = {o: (1 - rest) * raw[s][o] / total for o in four}
    return out


for _subtype, _shares in _tropism_from_targets().items():
    for _organ, _share in _shares.items():
        _add(f"tropism.{_subtype}.{_organ}", _share, "probability", 0, 1, _TROPISM_SOURCE)

# --- 4. Detection ------------------------------------------------------------------------------------
_add("detection.visible_mm", 2.0, "mm", 0.5, 10, "MODEL.md 4 (d_occult: a lesion is visible from 2 mm)")
_add("detection.reportable_mm", 1.0, "mm", 0.1, 5, "SPEC.md (lesions that reach 1 mm are listed)")
_add("detection.confirmation_delay_days", 14.0, "days", 0, 120,
     "assumption: confirmatory work-up two weeks after a suspicious finding")

# s(m, o, d) = s_max / (1 + exp(-(d - d50) / w)); fp = 1 - specificity per exam and organ.
_IMG = "inputs/imaging_accuracy.csv"
_IMAGING: dict[tuple[str, str], tuple[float, float, float, float, str]] = {
    # (modality, organ): (s_max, d50_mm, width_mm, fp, source)
    ("mammography", "breast"): (0.95, 6.2, 1.22, 0.05,
                                "Weedon-Fekjaer 2008 (26 % at 5 mm, 91 % at 10 mm) via " + _IMG),
    ("mammography", "regional_nodes"): (0.5, 15.0, 4.0, 0.01, "assumption: axillary tail only"),
    ("clinical_exam", "breast"): (0.9, 15.0, 4.0, 0.03, "assumption: palpation finds lesions over ~1.5 cm"),
    ("clinical_exam", "regional_nodes"): (0.8, 15.0, 4.0, 0.03, "assumption: palpable nodes over ~1.5 cm"),
    ("chest_xray", "lung"): (0.9, 9.0, 2.0, 0.0625,
                             "chest X-ray finds 56.7 % of CT-visible nodules, specificity 93.75 % (" + _IMG + ")"),
    ("ct", "lung"): (0.97, 4.0, 1.0, 0.05, "assumption: CT is the reference for lung nodules over 4 mm"),
    ("ct", "liver"): (0.92, 6.0, 1.5, 0.044, "82.6 % per lesion, specificity 95.6 % (" + _IMG + ")"),
    ("ct", "bone"): (0.88, 8.0, 2.5, 0.052, "77.1 % per lesion, specificity 94.8 % per patient (" + _IMG + ")"),
    ("ct", "distant_nodes"): (0.9, 10.0, 2.0, 0.03, "assumption: nodes under 10 mm short axis read as normal"),
    ("ct", "other"): (0.85, 8.0, 2.0, 0.03, "assumption"),
    ("liver_ultrasound", "liver"): (0.95, 8.0, 2.0, 0.024, "86.3 % per lesion, specificity 97.6 % (" + _IMG + ")"),
    ("mri_liver", "liver"): (0.95, 4.5, 1.0, 0.028,
                             "86.3 % per lesion, best under 10 mm, specificity 97.2 % (" + _IMG + ")"),
    ("bone_scan", "bone"): (0.85, 6.0, 2.0, 0.09, "75.1 % per lesion; specificity 91 % in breast (" + _IMG + ")"),
    ("mri_brain", "brain"): (0.97, 3.0, 0.8, 0.02, "assumption: MRI is the reference for brain metastases"),
    ("pet_ct", "breast"): (0.95, 7.0, 1.5, 0.03, "assumption: PET poor under ~5-7 mm (MODEL.md 4)"),
    ("pet_ct", "regional_nodes"): (0.9, 7.0, 1.5, 0.03, "assumption: PET poor under ~5-7 mm (MODEL.md 4)"),
    ("pet_ct", "bone"): (0.96, 6.0, 1.5, 0.01, "86.9 % per lesion, specificity 99 % in breast (" + _IMG + ")"),
    ("pet_ct", "lung"): (0.92, 7.0, 1.5, 0.03, "assumption: PET poor under ~5-7 mm (MODEL.md 4)"),
    ("pet_ct", "liver"): (0.95, 6.5, 1.5, 0.013, "86.0 % per lesion, specificity 98.7 % (" + _IMG + ")"),
    ("pet_ct", "distant_nodes"): (0.92, 7.0, 1.5, 0.03, "assumption: PET poor under ~5-7 mm (MODEL.md 4)"),
    ("pet_ct", "other"): (0.9, 7.0, 1.5, 0.03, "assumption: PET poor under ~5-7 mm (MODEL.md 4)"),
}
for (_m, _o), (_smax, _d50, _w, _fp, _src) in _IMAGING.items():
    if _o not in COVERAGE[_m]:
        raise ValueError(f"imaging entry {_m}/{_o} outside coverage")
    _add(f"imaging.{_m}.{_o}.s_max", _smax, "probability", 0, 1, _src, "plateau sensitivity per lesion")
    _add(f"imaging.{_m}.{_o}.d50_mm", _d50, "mm", 0.5, 100, _src, "diameter seen with half the plateau")
    _add(f"imaging.{_m}.{_o}.width_mm", _w, "mm", 0.1, 50, _src, "logistic width")
    _add(f"imaging.{_m}.{_o}.false_positive", _fp, "probability", 0, 0.5, _src, "1 - specificity per exam")
for _m, _organs in COVERAGE.items():
    for _o in _organs:
        if (_m, _o) not in _IMAGING:
            raise ValueError(f"no imaging parameters for {_m}/{_o}")

# --- Symptoms ----------------------------------------------------------------------------------------
_add("symptoms.threshold_scale", 0.928, "ratio", 0.01, 100, CALIBRATED_SOURCE,
     "scales every organ's symptom threshold", prior=("loguniform", 0.05, 2.0))
_SYM = "assumption (fixed organ ratios of the symptom threshold, MODEL.md 4)"
for _organ, _cm3 in (("breast", 30.0), ("regional_nodes", 20.0), ("bone", 2.0), ("lung", 30.0), ("liver", 40.0),
                     ("brain", 2.0), ("distant_nodes", 20.0), ("other", 15.0)):
    _add(f"symptoms.threshold_cm3.{_organ}", _cm3, "cm^3", 0.01, 5000, _SYM,
         "organ burden past which symptom onset has a hazard")
_add("symptoms.onset_mean_days", 30.0, "days", 1, 1000, "assumption: mean time from threshold to symptoms")
_add("symptoms.presentation_delay_mean_days", 21.0, "days", 0, 365,
     "assumption: mean delay from symptom onset to being seen (or the next clinic visit, if sooner)")

# --- 5. Treatment -----------------------------------------------------------------------------------
_TI = "inputs/treatment_inputs.csv"
_EBCTCG = "set so that the EBCTCG 2011 arms (35.0 % vs 19.3 % any first recurrence at 10 years) are reproduced"
_add("surgery.residual_probability_bcs", 0.32, "probability", 0, 1,
     "assumption: " + _EBCTCG + " (residual disease after breast-conserving surgery with clear margins)")
_add("surgery.positive_margin_odds_ratio", 2.44, "ratio", 1, 10,
     "Houssami N et al. Ann Surg Oncol 2014;21:717 (odds of local recurrence with positive margins)")
_add("surgery.residual_logit_per_log_aggressiveness", 1.5, "logit per log A", 0, 5,
     "assumption: local recurrence is commoner in aggressive phenotypes (Lowery AJ et al. Breast Cancer Res "
     "Treat 2012;133:831, HER2+ and triple-negative); EBCTCG 2011: about one breast-cancer death avoided per "
     "four recurrences avoided by radiotherapy, which needs the women with residual disease to be those who "
     "seed most")
_add("surgery.residual_probability_mastectomy", 0.04, "probability", 0, 1,
     "assumption: chest-wall recurrence after mastectomy of a few per cent")
_add("surgery.residual_cells_log10_median", 5.0, "log10 cells", 0, 9, "assumption: " + _EBCTCG)
_add("surgery.residual_cells_log10_positive_margin", 0.6, "log10 cells", 0, 4,
     "assumption: tumour at the inked margin leaves more cells behind as well as more often; set so that the "
     "odds ratio of local recurrence after breast-conserving therapy is Houssami's 2.44 (Houssami N et al. "
     "Ann Surg Oncol 2014;21:717)")
_add("surgery.residual_cells_log10_sd", 1.0, "log10 cells", 0, 4, "assumption")
_add("surgery.nodal_residual_probability", 0.05, "probability", 0, 1,
     "assumption: a positive node left behind by axillary surgery (sentinel biopsy or dissection)")
_add("radiotherapy.breast_surviving_fraction", 1e-6, "fraction", 1e-12, 1,
     "assumption: whole-breast course, " + _EBCTCG)
_add("radiotherapy.breast_day", 42.0, "days", 0, 365, "assumption: radiotherapy six weeks after surgery")
_add("radiotherapy.breast_day_after_chemotherapy", 150.0, "days", 0, 365,
     "assumption: radiotherapy after adjuvant chemotherapy")
_add("radiotherapy.sbrt_surviving_fraction", 1e-7, "fraction", 1e-15, 1,
     "assumption: ablative dose controls about 90 % of lesions (SABR-COMET local control)")
_add("radiotherapy.palliative_surviving_fraction", 0.05, "fraction", 1e-6, 1,
     "assumption: palliative 8 Gy x 1 or 20 Gy / 5 shrinks, rarely ablates")
_add("radiotherapy.palliative_max_lesions", 3, "lesions", 1, 20, "assumption: painful sites treated per course")
_add("radiotherapy.dose_margin_mm", 15.0, "mm", 0, 50,
     "assumption: the 20 Gy isodose extends this far beyond an SBRT target")
_add("radiotherapy.lung_volume_cm3", 4000.0, "cm^3", 1000, 8000, "MODEL.md 6 (lungs ~4,000 cm^3 of tissue)")
_add("radiotherapy.lung_v20_limit_percent", 30.0, "percent", 1, 100, "QUANTEC via " + _TI)
_add("radiotherapy.liver_volume_cm3", 1500.0, "cm^3", 500, 4000, "MODEL.md 6 (liver ~1,500 cm^3)")
_add("radiotherapy.liver_spared_cm3", 700.0, "cm^3", 0, 3000, "AAPM TG-101 via " + _TI)
_add("radiotherapy.liver_mean_dose_limit_gy", 30.0, "Gy", 1, 100, "QUANTEC via " + _TI)
_add("radiotherapy.liver_target_dose_gy", 40.0, "Gy", 1, 100,
     "assumption: mean dose inside the irradiated liver volume (for the mean-liver-dose check)")
_add("radiotherapy.spinal_cord_lesions_per_course", 1, "lesions", 0, 10,
     "AAPM TG-101 via " + _TI + ": one spinal target per single-fraction course keeps the cord under 14 Gy")
_add("radiotherapy.spine_share_of_bone", 0.4, "probability", 0, 1,
     "assumption: share of bone metastases in the spine")
_add("radiotherapy.sbrt_treatment_death", 0.045, "probability per course", 0, 1,
     "Palma DA et al. Lancet 2019 (SABR-COMET) via " + _TI)
_add("chemotherapy.surviving_fraction_per_cycle", 0.8, "fraction", 1e-4, 1, CALIBRATED_SOURCE,
     "surviving fraction of sensitive growing cells per cycle", prior=("loguniform", 0.05, 0.8))
_add("chemotherapy.resistant_fraction", 6.3e-8, "fraction", 0, 1e-2, CALIBRATED_SOURCE,
     "f_res: resistant cells per cell (times A^beta_r)", prior=("loguniform", 1e-9, 1e-4))
_add("aggressiveness.beta_resistance", 1.0, "exponent", 0, 5, "MODEL.md 1 (beta_r; assumption for its size)")
_add("chemotherapy.cycles_adjuvant", 6, "cycles", 1, 12, "standard adjuvant regimens (e.g. 6 cycles of FEC or TC)")
_add("chemotherapy.cycles_per_line", 4, "cycles", 1, 12, "assumption: cycles before the first restaging")
_add("chemotherapy.treatment_death_per_course", 0.005, "probability", 0, 0.2,
     "assumption: toxic death of about 0.5 % per course")
_add("endocrine.growth_factor", 0.35, "ratio", 0.01, 1,
     "growth of sensitive HR+ lesions slowed to this share while on endocrine therapy; set so that 5 years of "
     "it against none in ER+ stage I-III disease gives the recurrence rate ratio of years 0-4 of the EBCTCG "
     "tamoxifen overview, 0.53 (Lancet 2011;378:771; the model: 0.49 at 20,000 women per arm)")
_add("anti_her2.growth_factor", 0.3, "ratio", 0.01, 1,
     "assumption: growth of sensitive HER2+ lesions slowed to this share while on anti-HER2 therapy")
_add("anti_her2.adjuvant_years", 1.0, "years", 0, 5, "one year of adjuvant trastuzumab (standard)")
_add("systemic.suppression_resistant_share", 0.1, "probability", 0, 1,
     "assumption: lesions insensitive to endocrine or anti-HER2 suppression (times A^beta_r)")
_add("systemic.brain_penetration", 0.2, "ratio", 0, 1,
     "assumption: the blood-brain barrier lets a fifth of chemotherapy's log-kill and of anti-HER2 slowing "
     "reach brain lesions (cytotoxic drug levels in about 10 % of brain metastases: Lockman PR et al. Clin "
     "Cancer Res 2010;16:5664; trastuzumab in cerebrospinal fluid at 1:420 of serum: Pestalozzi BC et al. "
     "Ann Oncol 2000;11:1261)")
_add("systemic.response_loss_per_organ", 0.3, "ratio", 0, 5,
     "assumption (MODEL.md 5): each further organ involved divides the log-kill by (1 + this)")
_add("systemic.progression_volume_ratio", 1.728, "ratio", 1, 10,
     "RECIST 1.1: 20 % growth of diameters (1.2^3 in volume) or a new organ is progression")
_add("health.visceral_kappa", 3.0, "per tolerance", 0, 50,
     "assumption (MODEL.md 1): health = exp(-kappa * visceral burden / tolerance)")
_add("health.min_for_systemic", 0.3, "score", 0, 1, "assumption: below it, palliative care only")
_add("health.min_for_resection", 0.6, "score", 0, 1, "assumption: fitness for liver surgery")
_add("liver.resection_r0", 0.83, "probability", 0, 1, "systematic review, Breast 2017 (PMID 28193572) via " + _TI)
_add("liver.resection_mortality", 0.007, "probability", 0, 1,
     "30-day mortality, systematic review, Breast 2017 (PMID 28193572) via " + _TI)
_add("liver.max_lesions", 3, "lesions", 1, 20, "MODEL.md 5 (at most 3 liver lesions)")
_add("liver.max_diameter_mm", 50.0, "mm", 1, 200, "MODEL.md 5 (lesions of at most 50 mm)")
_add("skeletal.max_events_per_year", 1.5, "events per year", 0, 20,
     "assumption: untreated bone metastases cause about 1.5-4 skeletal-related events a year (Coleman)")
_add("skeletal.half_rate_cm3", 20.0, "cm^3", 0.1, 10000,
     "assumption: bone burden at which the event rate is half its maximum")
_add("skeletal.share_fracture", 0.6, "probability", 0, 1, "assumption")
_add("skeletal.share_cord_compression", 0.15, "probability", 0, 1, "assumption (rest: hypercalcaemia)")

# --- 6. Harm and death -------------------------------------------------------------------------------
_add("death.scale_visceral", 0.261, "per day", 1e-5, 10, CALIBRATED_SOURCE,
     "death hazard at organ burden equal to tolerance, liver, lung, brain", prior=("loguniform", 0.005, 0.5))
_add("death.scale_rest", 0.0129, "per day", 1e-5, 10, CALIBRATED_SOURCE,
     "death hazard at organ burden equal to tolerance, other organs", prior=("loguniform", 0.005, 0.5))
_add("death.exponent", 2.0, "exponent", 0.5, 6,
     "structural: hazard rises steeply (as a power) with burden relative to tolerance (MODEL.md 6)")
_TOL = "MODEL.md 6 organ volumes (liver ~1,500 cm^3, lungs ~4,000 cm^3); others assumption"
for _organ, _cm3 in (("breast", 1500.0), ("regional_nodes", 500.0), ("bone", 1500.0), ("lung", 4000.0),
                     ("liver", 1500.0), ("brain", 60.0), ("distant_nodes", 800.0), ("other", 800.0)):
    _add(f"death.tolerance_cm3.{_organ}", _cm3, "cm^3", 1, 100000, _TOL)
_add("death.total_tolerance_cm3", 3000.0, "cm^3", 10, 100000,
     "assumption: whole-body burden (cachexia) term of the rest scale")
_add("death.step_days", 28.0, "days", 1, 90,
     "numerical: step of the care pathway after diagnosis (the death hazard's burden grid; decisions at its "
     "end, so within four weeks of a finding); every validation row agrees within sampling noise at 7, 14 "
     "and 28 days (20,000 patients, 2026-11-28)")

# --- Engine limits -----------------------------------------------------------------------------------
_add("engine.max_lesions_per_organ", 50, "lesions", 1, 1000,
     "structural (MODEL.md 3): lesions beyond this count in one organ are written as one aggregate row")
_add("engine.max_colonies_per_patient", 400, "colonies", 10, 100000,
     "structural: colonies tracked per patient; seeding stops past it (reached only with lethal burden)")

#: The calibrated set (MODEL.md's twelve and gamma).
CALIBRATED: tuple[str, ...] = tuple(name for name, p in REGISTRY.items() if p.prior is not None)
if len(CALIBRATED) > 13:
    raise ValueError("too many calibrated parameters")


def defaults() -> dict[str, float]:
    """All parameter names mapped to their default values."""
    return {name: p.default for name, p in REGISTRY.items()}


def resolve(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Defaults updated by ``overrides``; unknown names and values outside the range are InputError."""
    values = defaults()
    for name, value in (overrides or {}).items():
        field = f"parameters.{name}"
        if name not in REGISTRY:
            raise InputError(field, "unknown parameter (see `metastasis parameters`)")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(field, f"must be a number (got {value!r})")
        p = REGISTRY[name]
        if not p.low <= value <= p.high:
            raise InputError(field, f"must be between {p.low:g} and {p.high:g} {p.unit} (got {value!r})")
        values[name] = float(value)
    return values
