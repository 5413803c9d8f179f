"""Gompertz growth of every tumour, in closed form (MODEL.md 2).

``dV/dt = a V ln(K/V)`` from one cell. Writing ``tau = a * (time awake)`` (the lesion's *Gompertz age*),
``V(tau) = K exp(c exp(-tau))`` with ``c = ln(V0 / K) < 0``: every growth curve is a time-scaled copy of
one universal curve, which is what makes seeding times and detection times closed-form too.
Volumes in mm^3 (1 mm^3 = 10^6 cells), diameters in mm, times in days, rates per day.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

#: One cell, in mm^3.
CELL_VOLUME_MM3 = 1e-6
CELLS_PER_MM3 = 1e6

F64 = NDArray[np.float64]


def volume_from_diameter(diameter_mm: ArrayLike) -> F64:
    """Volume (mm^3) of a sphere of the given diameter (mm)."""
    d = np.asarray(diameter_mm, dtype=np.float64)
    return np.pi / 6.0 * d**3


def diameter_from_volume(volume_mm3: ArrayLike) -> F64:
    """Diameter (mm) of a sphere of the given volume (mm^3)."""
    v = np.asarray(volume_mm3, dtype=np.float64)
    return np.cbrt(6.0 * v / np.pi)


def log_ratio(capacity_mm3: float) -> float:
    """``c = ln(V0 / K)``, negative."""
    return math.log(CELL_VOLUME_MM3 / capacity_mm3)


def volume_at_age(tau: ArrayLike, capacity_mm3: float) -> F64:
    """Volume (mm^3) at Gompertz age ``tau`` (dimensionless, >= 0); one cell at ``tau = 0``."""
    t = np.maximum(np.asarray(tau, dtype=np.float64), 0.0)
    return capacity_mm3 * np.exp(log_ratio(capacity_mm3) * np.exp(-t))


def age_at_volume(volume_mm3: ArrayLike, capacity_mm3: float) -> F64:
    """Gompertz age at which a lesion reaches ``volume_mm3`` (inf at or above ``K``, 0 at or below one cell)."""
    v = np.clip(np.asarray(volume_mm3, dtype=np.float64), CELL_VOLUME_MM3, capacity_mm3)
    with np.errstate(divide="ignore"):
        return -np.log(np.log(v / capacity_mm3) / log_ratio(capacity_mm3))


def rate_from_doubling(doubling_days: ArrayLike, volume_mm3: ArrayLike, capacity_mm3: float) -> F64:
    """Gompertz rate ``a`` (per day) giving the volume doubling time ``doubling_days`` at ``volume_mm3``.

    The instantaneous specific growth rate is ``a ln(K/V)``, so the doubling time there is
    ``ln 2 / (a ln(K/V))``.
    """
    v = np.asarray(volume_mm3, dtype=np.float64)
    return np.log(2.0) / (np.asarray(doubling_days, dtype=np.float64) * np.log(capacity_mm3 / v))


def doubling_days_at(rate_per_day: ArrayLike, volume_mm3: ArrayLike, capacity_mm3: float) -> F64:
    """Volume doubling time (days) of a lesion of Gompertz rate ``rate_per_day`` at ``volume_mm3``."""
    v = np.asarray(volume_mm3, dtype=np.float64)
    return np.log(2.0) / (np.asarray(rate_per_day, dtype=np.float64) * np.log(capacity_mm3 / v))


def volume_at_time(time_days: ArrayLike, wake_days: ArrayLike, rate_per_day: ArrayLike, capacity_mm3: float) -> F64:
    """Volume (mm^3) at ``time_days`` of a lesion growing from one cell since ``wake_days``."""
    tau = np.asarray(rate_per_day) * (np.asarray(time_days) - np.asarray(wake_days))
    return volume_at_age(tau, capacity_mm3)


def time_to_volume(volume_mm3: ArrayLike, rate_per_day: ArrayLike, capacity_mm3: float) -> F64:
    """Days a lesion of Gompertz rate ``rate_per_day`` takes to grow from one cell to ``volume_mm3``."""
    return age_at_volume(volume_mm3, capacity_mm3) / np.asarray(rate_per_day, dtype=np.float64)


# The same closed forms for one value, for compiled loops (scalar arguments only: an array argument to a
# compiled function costs a reference count per call). ``log_c`` is :func:`log_ratio` of the capacity.
@numba.njit(cache=True, error_model="numpy")
def volume_at_age_one(tau: float, capacity_mm3: float, log_c: float) -> float:
    """:func:`volume_at_age` of one Gompertz age."""
    if tau < 0.0:
        tau = 0.0
    return capacity_mm3 * np.exp(log_c * np.exp(-tau))


@numba.njit(cache=True, error_model="numpy")
def age_at_volume_one(volume_mm3: float, capacity_mm3: float, log_c: float) -> float:
    """:func:`age_at_volume` of one volume."""
    v = min(max(volume_mm3, CELL_VOLUME_MM3), capacity_mm3)
    return -np.log(np.log(v / capacity_mm3) / log_c)


@numba.njit(cache=True)
def diameter_one(volume_mm3: float) -> float:
    """:func:`diameter_from_volume` of one volume."""
    return np.cbrt(6.0 * volume_mm3 / np.pi)

