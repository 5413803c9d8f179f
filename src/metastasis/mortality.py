"""Harm and death (MODEL.md 6): burden-driven cancer death by organ, other-cause death by age.

Cancer death is a hazard (per day) that rises as a power of each organ's burden relative to its
tolerance volume, scaled by one factor for the visceral organs (lung, liver, brain) and one for the
rest, plus a whole-body term for total burden. Other-cause death follows a female period life table.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.vocabulary import DAYS_PER_YEAR, ORGANS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

VISCERAL: tuple[str, ...] = ("lung", "liver", "brain")


def organ_scales(values: dict[str, float]) -> tuple[F64, F64]:
    """Per organ: hazard scale (per day) and tolerance volume (mm^3)."""
    scale = np.array([values["death.scale_visceral"] if o in VISCERAL else values["death.scale_rest"] for o in ORGANS])
    tolerance = np.array([values[f"death.tolerance_cm3.{o}"] * 1000.0 for o in ORGANS])
    return scale, tolerance


def hazard_constants(values: dict[str, float]) -> tuple[F64, F64, float, float, float]:
    """Per organ scale (per day) and tolerance (mm^3), the exponent, and the whole-body scale and tolerance."""
    scale, tolerance = organ_scales(values)
    return (scale, tolerance, values["death.exponent"], values["death.scale_rest"],
            values["death.total_tolerance_cm3"] * 1000.0)


@numba.njit(cache=True, error_model="numpy")
def _hazard(burden: F64, scale: F64, tolerance: F64, q: float, body_scale: float, body_tolerance: float,
            organ_out: F64) -> float:
    # one patient: organ hazards into organ_out, and the total with the whole-body term
    organs = 0.0
    total_burden = 0.0
    for o in range(burden.size):
        # most organs hold nothing: 0 ** q is 0 (q > 0), without the cost of a power
        organ_out[o] = scale[o] * (burden[o] / tolerance[o]) ** q if burden[o] != 0.0 else 0.0
        organs += organ_out[o]
        total_burden += burden[o]
    return organs + body_scale * (total_burden / body_tolerance) ** q


@numba.njit(cache=True, error_model="numpy")
def _hazards(burden: F64, scale: F64, tolerance: F64, q: float, body_scale: float, body_tolerance: float,
             ) -> tuple[F64, F64]:
    total = np.empty(burden.shape[0])
    organ = np.empty(burden.shape)
    for i in range(burden.shape[0]):
        total[i] = _hazard(burden[i], scale, tolerance, q, body_scale, body_tolerance, organ[i])
    return total, organ


def cancer_hazard(burden_mm3: F64, values: dict[str, float]) -> tuple[F64, F64]:
    """Cancer death hazard (per day) of each patient, and each organ's share of it.

    ``burden_mm3`` has shape (patients, organs). Returns the total hazard (patients,) and the organ
    hazards (patients, organs); the whole-body term is in the total only.
    """
    return _hazards(np.ascontiguousarray(burden_mm3, np.float64), *hazard_constants(values))


@numba.njit(cache=True, error_model="numpy")
def integrate_hazard(active: I64, burden: F64, t: float, t1: float, scale: F64, tolerance: F64, q: float,
                     body_scale: float, body_tolerance: float, threshold: F64, cum: F64, h_prev: F64,
                     death_days: F64, lethal: NDArray[np.int8]) -> None:
    """One step of each ``active`` patient's cumulative hazard, from ``t`` to ``t1`` (trapezoid rule, from
    ``h_prev`` to the hazard of ``burden`` at ``t1``): she dies where it reaches her ``threshold``
    (linear within the step), of the organ with the highest hazard at ``t1``. Updates ``cum``,
    ``h_prev``, ``death_days`` and ``lethal`` in place."""
    organ = np.empty(burden.shape[1])
    for i in range(active.size):
        p = active[i]
        h = _hazard(burden[i], scale, tolerance, q, body_scale, body_tolerance, organ)
        add = 0.5 * (h_prev[p] + h) * (t1 - t)
        if cum[p] + add >= threshold[p]:
            death_days[p] = t + (threshold[p] - cum[p]) / add * (t1 - t)
            lethal[p] = _argmax(organ)
        cum[p] += add
        h_prev[p] = h


@numba.njit(cache=True)
def _argmax(x: F64) -> int:
    # np.argmax: the first maximum, or the first NaN
    best = 0
    for o in range(x.size):
        if np.isnan(x[o]):
            return o
        if x[o] > x[best]:
            best = o
    return best


@lru_cache(maxsize=1)
def _life_table() -> tuple[F64, F64]:
    text = resources.files("metastasis").joinpath("data/life_table_female.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    age = np.array([float(r["age_years"]) for r in rows])
    qx = np.array([float(r["qx"]) for r in rows])
    return age, qx


def other_cause_death_days(age_years: F64, exponential: F64) -> F64:
    """Days from diagnosis to death from other causes, by inversion of the life table's cumulative hazard.

    The hazard is constant within each year of age (``-ln(1 - q_x)``) and stays at the last row's value
    beyond the table. ``exponential`` is one Exp(1) draw per patient.
    """
    age, qx = _life_table()
    mu = -np.log1p(-qx)
    edges = np.concatenate((age, [age[-1] + 1.0]))
    cum = np.concatenate(([0.0], np.cumsum(mu)))
    start = np.interp(age_years, edges, cum)
    target = start + exponential
    beyond = target > cum[-1]
    death_age = np.where(beyond, edges[-1] + (target - cum[-1]) / mu[-1], np.interp(target, cum, edges))
    return (death_age - age_years) * DAYS_PER_YEAR
