"""Radiotherapy of metastases and its dose limits (MODEL.md 5, ``inputs/treatment_inputs.csv``).

Stereotactic radiotherapy (SBRT) treats up to ``sbrt_max_lesions`` lesions of an oligometastatic
patient. More lesions than that: none is treated (``too_many_lesions``, checked first). Otherwise the
lesions are taken smallest first while the organ's dose limits hold; the ones left out are
``dose_limit:<organ>``:
- lung: the volumes receiving 20 Gy (each target grown by the dose margin) must stay within V20 of the
  lung volume;
- liver: at least 700 cm^3 spared and the mean liver dose (irradiated volume x target dose / liver
  volume) within its limit;
- spinal cord: at most ``spinal_cord_lesions_per_course`` spinal targets per course.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from metastasis.vocabulary import ORGAN_CODE

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: ``sbrt_plan`` outcome codes per lesion.
TREATED, TOO_MANY, LIMIT_LUNG, LIMIT_LIVER, LIMIT_CORD = 0, 1, 2, 3, 4
OUTCOME_DETAIL = {TOO_MANY: "too_many_lesions", LIMIT_LUNG: "dose_limit:lung", LIMIT_LIVER: "dose_limit:liver",
                  LIMIT_CORD: "dose_limit:spinal_cord"}


def irradiated_volume_cm3(diameter_mm: F64, margin_mm: float) -> F64:
    """Volume (cm^3) within the high-dose envelope of a spherical target: diameter plus twice the margin."""
    return np.pi / 6.0 * (np.asarray(diameter_mm) + 2.0 * margin_mm) ** 3 / 1000.0


def sbrt_plan(patient: I64, organ: NDArray[np.int8], diameter_mm: F64, spine: NDArray[np.bool_],
              values: dict[str, float], max_lesions: int) -> NDArray[np.int8]:
    """Outcome code of each candidate lesion (rows grouped by ``patient``), see module docstring."""
    n = len(patient)
    out = np.full(n, TREATED, dtype=np.int8)
    if n == 0:
        return out
    counts = np.bincount(patient)
    out[counts[patient] > max_lesions] = TOO_MANY
    margin = values["radiotherapy.dose_margin_mm"]
    vol = irradiated_volume_cm3(diameter_mm, margin)
    lung_budget = values["radiotherapy.lung_v20_limit_percent"] / 100.0 * values["radiotherapy.lung_volume_cm3"]
    liver_volume = values["radiotherapy.liver_volume_cm3"]
    liver_budget = min(liver_volume - values["radiotherapy.liver_spared_cm3"],
                       values["radiotherapy.liver_mean_dose_limit_gy"] * liver_volume
                       / values["radiotherapy.liver_target_dose_gy"])
    cord_budget = values["radiotherapy.spinal_cord_lesions_per_course"]
    # smallest first within each patient and organ; cumulative use of each organ's budget
    order = np.lexsort((diameter_mm, organ, patient))
    for code, budget, outcome in ((ORGAN_CODE["lung"], lung_budget, LIMIT_LUNG),
                                  (ORGAN_CODE["liver"], liver_budget, LIMIT_LIVER)):
        idx = order[(organ[order] == code) & (out[order] == TREATED)]
        used = _cumulative_by_group(patient[idx], vol[idx])
        out[idx[used > budget]] = outcome
    idx = order[spine[order] & (out[order] == TREATED)]
    used = _cumulative_by_group(patient[idx], np.ones(len(idx)))
    out[idx[used > cord_budget]] = LIMIT_CORD
    return out


def _cumulative_by_group(group: I64, amount: F64) -> F64:
    """Running sum of ``amount`` within consecutive runs of equal ``group``."""
    if len(group) == 0:
        return np.zeros(0)
    total = np.cumsum(amount)
    start = np.r_[True, group[1:] != group[:-1]]
    offset = np.maximum.accumulate(np.where(start, np.arange(len(group)), 0))
    before = np.where(offset > 0, total[offset - 1], 0.0)
    return total - before
