"""Harm and death (MODEL.md 6): burden-driven cancer death by organ, other-cause death by age.

Cancer death is a hazard (per day) that rises as a power of each organ's burden relative to its
tolerance volume, scaled by one factor for the visceral organs (lung, liver, brain) and one for the
rest, plus a whole-body term for total burden. Other-cause death follows a female period life table.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from metastasis.vocabulary import DAYS_PER_YEAR, ORGANS

F64 = NDArray[np.float64]

VISCERAL: tuple[str, ...] = ("lung", "liver", "brain")


def organ_scales(values: dict[str, float]) -> tuple[F64, F64]:
    """Per organ: hazard scale (per day) and tolerance volume (mm^3)."""
    scale = np.array([values["death.scale_visceral"] if o in VISCERAL else values["death.scale_rest"] for o in ORGANS])
    tolerance = np.array([values[f"death.tolerance_cm3.{o}"] * 1000.0 for o in ORGANS])
    return scale, tolerance


def cancer_hazard(burden_mm3: F64, values: dict[str, float]) -> tuple[F64, F64]:
    """Cancer death hazard (per day) of each patient, and each organ's share of it.

    ``burden_mm3`` has shape (patients, organs). Returns the total hazard (patients,) and the organ
    hazards (patients, organs); the whole-body term is in the total only.
    """
    scale, tolerance = organ_scales(values)
    q = values["death.exponent"]
    organ = scale * (burden_mm3 / tolerance) ** q
    body = values["death.scale_rest"] * (burden_mm3.sum(axis=1) / (values["death.total_tolerance_cm3"] * 1000.0)) ** q
    return organ.sum(axis=1) + body, organ


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


def lethal_organ(organ_hazard: F64) -> NDArray[np.int8]:
    """The organ whose death hazard is highest (the organ that killed, at the moment of death)."""
    return np.argmax(organ_hazard, axis=1).astype(np.int8)

