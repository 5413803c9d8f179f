"""The virtual patients of a scenario (MODEL.md 1): age, subtype, grade, T, N and aggressiveness.

Drawn jointly so their correlations hold: aggressiveness depends on subtype; grade on subtype; the
diameter at diagnosis on age (screening) and ER status; node positivity and count on diameter and
aggressiveness. Patient ``i`` draws only from its own cohort stream, so the same ``patient_id`` is the
same woman in every scenario run with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.detection.stage import n_group, t_group
from metastasis.streams import Process
from metastasis.vocabulary import N_STAGES, SUBTYPE_CODE, SUBTYPE_ER_POSITIVE, SUBTYPES, T_STAGES

if TYPE_CHECKING:
    from metastasis.scenario import Cohort as CohortSpec

F64 = NDArray[np.float64]

#: SEER age groups (years) matching the ``cohort.age_share.*`` registry entries.
SEER_AGE_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("20_34", 20, 35),
    ("35_44", 35, 45),
    ("45_54", 45, 55),
    ("55_64", 55, 65),
    ("65_74", 65, 75),
    ("75_84", 75, 85),
    ("85_99", 85, 100),
)


@dataclass
class Patients:
    """Column arrays of a batch of virtual patients (one element per patient)."""

    patient_id: NDArray[np.int64]
    age_years: F64
    subtype: NDArray[np.int8]
    grade: NDArray[np.int8]
    tumour_diameter_mm: F64
    nodes_positive: NDArray[np.int32]
    aggressiveness: F64
    #: Volume doubling time of the primary at 15 mm (days).
    doubling_days: F64

    def __len__(self) -> int:
        return len(self.patient_id)

    def take(self, index: NDArray[np.int64] | NDArray[np.bool_]) -> Patients:
        """The patients selected by an index or mask."""
        return Patients(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def er_positive(self) -> NDArray[np.bool_]:
        return np.asarray(SUBTYPE_ER_POSITIVE)[self.subtype]


def _ages(spec: CohortSpec, values: dict[str, float], u: F64) -> F64:
    age = spec.age
    if age.distribution == "normal":
        from scipy.special import ndtri

        return np.clip(age.mean_years + age.sd_years * ndtri(u), 18.0, 100.0)
    if age.distribution == "uniform":
        return age.min_years + (age.max_years - age.min_years) * u
    shares = np.array([values[f"cohort.age_share.{g}"] for g, _, _ in SEER_AGE_GROUPS])
    cdf = np.concatenate(([0.0], np.cumsum(shares) / shares.sum()))
    lows = np.array([lo for _, lo, _ in SEER_AGE_GROUPS] + [100.0])
    # piecewise-uniform within each group: linear interpolation of the inverse CDF
    return np.interp(u, cdf, lows)


def draw_patients(spec: CohortSpec, values: dict[str, float], seed: int, patient_id: NDArray[np.int64]) -> Patients:
    """Draw the candidates ``patient_id`` (before eligibility) from the cohort stream of ``seed``."""

    def u(k: int) -> F64:
        return streams.uniform(seed, Process.COHORT, patient_id, k)

    def z(k: int) -> F64:
        return streams.normal(seed, Process.COHORT, patient_id, k)

    age = _ages(spec, values, u(0))

    mix = np.array([spec.subtype_mix.get(s, 0.0) for s in SUBTYPES])
    subtype = np.minimum(np.searchsorted(np.cumsum(mix) / mix.sum(), u(1), side="right"), len(SUBTYPES) - 1)
    subtype = subtype.astype(np.int8)

    g1 = np.array([values[f"cohort.grade1_share.{s}"] for s in SUBTYPES])[subtype]
    g2 = np.array([values[f"cohort.grade2_share.{s}"] for s in SUBTYPES])[subtype]
    ug = u(2)
    grade = np.where(ug < g1, 1, np.where(ug < g1 + g2, 2, 3)).astype(np.int8)

    shift = np.array([values[f"aggressiveness.log_shift.{s}"] for s in SUBTYPES])[subtype]
    width = np.array([values[f"aggressiveness.width.{s}"] for s in SUBTYPES])[subtype]
    log_a = values["aggressiveness.sigma"] * (shift + width * z(3))
    aggressiveness = np.exp(log_a)

    er_pos = np.asarray(SUBTYPE_ER_POSITIVE)[subtype]
    unscreened = (age < 50.0) | (age >= 75.0)
    log_d = (
        np.log(values["cohort.diameter_median_mm"])
        + np.where(unscreened, np.log(values["cohort.diameter_factor_unscreened"]), 0.0)
        + np.where(er_pos, 0.0, np.log(values["cohort.diameter_factor_er_negative"]))
        + values["cohort.diameter_log_sd"] * z(4)
    )
    diameter = np.clip(np.exp(log_d), 1.0, 150.0)

    logit = (
        values["cohort.nodes_logit_at_20mm"]
        + values["cohort.nodes_logit_per_log_diameter"] * np.log(diameter / 20.0)
        + values["cohort.nodes_logit_per_log_aggressiveness"] * log_a
    )
    positive = u(5) < 1.0 / (1.0 + np.exp(-logit))
    count = 1 + np.floor(
        values["cohort.nodes_count_median"] * np.exp(values["cohort.nodes_count_log_sd"] * z(6))
        * np.sqrt(diameter / 20.0) * np.exp(values["cohort.nodes_count_per_log_aggressiveness"] * log_a)
    )
    nodes = np.where(positive, np.minimum(count, 40), 0).astype(np.int32)

    doubling = (
        values["growth.doubling_days_median"]
        * np.where(age < 50.0, values["growth.doubling_factor_age_under_50"], 1.0)
        * np.where(age > 70.0, values["growth.doubling_factor_age_over_70"], 1.0)
        * np.where(grade == 3, values["growth.doubling_factor_grade3"], 1.0)
        * np.where(er_pos, 1.0, values["growth.doubling_factor_er_negative"])
        * np.exp(values["growth.doubling_log_sd"] * z(7))
        * aggressiveness ** (-values["aggressiveness.beta_growth"])
    )
    return Patients(
        patient_id=np.asarray(patient_id, dtype=np.int64),
        age_years=age,
        subtype=subtype,
        grade=grade,
        tumour_diameter_mm=diameter,
        nodes_positive=nodes,
        aggressiveness=aggressiveness,
        doubling_days=doubling,
    )


def eligible_before_staging(spec: CohortSpec, p: Patients) -> NDArray[np.bool_]:
    """Eligibility criteria that do not need the staging work-up (age, subtype, T, N)."""
    ok = np.ones(len(p), dtype=bool)
    if spec.age_min is not None:
        ok &= p.age_years >= spec.age_min
    if spec.age_max is not None:
        ok &= p.age_years <= spec.age_max
    if spec.subtypes is not None:
        ok &= np.isin(p.subtype, [SUBTYPE_CODE[s] for s in spec.subtypes])
    if spec.t_stages is not None:
        ok &= np.isin(t_group(p.tumour_diameter_mm), [T_STAGES.index(t) for t in spec.t_stages])
    if spec.n_stages is not None:
        ok &= np.isin(n_group(p.nodes_positive), [N_STAGES.index(s) for s in spec.n_stages])
    if spec.nodes_positive_min is not None:
        ok &= p.nodes_positive >= spec.nodes_positive_min
    if spec.nodes_positive_max is not None:
        ok &= p.nodes_positive <= spec.nodes_positive_max
    return ok
