"""Seeding of colonies by every tumour: rate, tropism, dormancy (MODEL.md 3).

A tumour of N cells founds viable colonies as a Poisson process of rate ``m * N^gamma`` with
``m = mu * 10^(-9 gamma) * A^beta_s`` (``mu`` is the rate of a tumour of 10^9 cells; times the
secondary-spread scalar for metastases). With Gompertz growth the cumulative number expected by
Gompertz age ``tau`` is

    Lambda(tau) = (m / a) * (K cells)^gamma * H(tau),   H(tau) = E1(b e^-tau) - E1(b),

with ``b = gamma * ln(K / V0)`` and ``E1`` the exponential integral (substitute ``x = e^-s`` in
``int_0^tau exp(gamma c e^-s) ds``). ``H`` is universal for a given K and gamma: :class:`SeedingCurve`
tabulates it once and inverts it, so seeding times are drawn by inversion, never by time stepping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import exp1

from metastasis.biology.growth import CELL_VOLUME_MM3, CELLS_PER_MM3
from metastasis.vocabulary import N_ORGANS, ORGAN_CODE, SUBTYPE_ER_POSITIVE, SUBTYPES

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class SeedingCurve:
    """The universal cumulative seeding curve ``H(tau)`` for capacity K (mm^3) and exponent gamma."""

    capacity_mm3: float
    gamma: float
    tau_max: float = 16.0
    n_grid: int = 4097

    def __post_init__(self) -> None:
        b = self.gamma * math.log(self.capacity_mm3 / CELL_VOLUME_MM3)
        # Geometric near 0 (where log H bends like log tau), linear beyond.
        tau = np.concatenate(([0.0], np.geomspace(1e-6, 0.5, 400)[:-1], np.linspace(0.5, self.tau_max, self.n_grid)))
        h = np.maximum.accumulate(exp1(b * np.exp(-tau)) - exp1(b))
        object.__setattr__(self, "_b", b)
        object.__setattr__(self, "_tau", tau)
        object.__setattr__(self, "_log_h", np.log(np.maximum(h, 1e-300)))
        object.__setattr__(self, "_h_end", float(h[-1]))
        # Beyond tau_max the tumour is at its plateau: H grows linearly with slope exp(-b e^-tau) ~ 1.
        object.__setattr__(self, "_slope", float(math.exp(-b * math.exp(-self.tau_max))))

    @property
    def rate_scale(self) -> float:
        """``(K cells)^gamma``: multiply by ``m / a`` to turn H into expected colonies."""
        return float((self.capacity_mm3 * CELLS_PER_MM3) ** self.gamma)

    def h(self, tau: ArrayLike) -> F64:
        """``H(tau)``; 0 for ``tau <= 0``."""
        t = np.asarray(tau, dtype=np.float64)
        inside = np.exp(np.interp(t, self._tau[1:], self._log_h[1:]))  # type: ignore[attr-defined]
        # Below the first grid point, e^-tau ~ 1 - tau: H ~ e^-b (e^(b tau) - 1) / b.
        b = self._b  # type: ignore[attr-defined]
        first = math.exp(-b) * np.expm1(b * np.minimum(t, self._tau[1])) / b  # type: ignore[attr-defined]
        out = np.where(t <= self._tau[1], first, inside)  # type: ignore[attr-defined]
        out = np.where(t > self.tau_max, self._h_end + (t - self.tau_max) * self._slope, out)  # type: ignore[attr-defined]
        return np.where(t <= 0.0, 0.0, out)

    def tau_at(self, h: ArrayLike) -> F64:
        """Inverse of :meth:`h`: the Gompertz age at which ``H`` reaches ``h`` (>= 0)."""
        y = np.asarray(h, dtype=np.float64)
        log_y = np.log(np.maximum(y, 1e-300))
        inside = np.interp(log_y, self._log_h[1:], self._tau[1:])  # type: ignore[attr-defined]
        h1 = math.exp(self._log_h[1])  # type: ignore[attr-defined]
        b = self._b  # type: ignore[attr-defined]
        first = np.log1p(np.minimum(y, h1) * b * math.exp(b)) / b
        out = np.where(y <= h1, first, inside)
        out = np.where(y > self._h_end, self.tau_max + (y - self._h_end) / self._slope, out)  # type: ignore[attr-defined]
        return np.where(y <= 0.0, 0.0, out)


def expected_colonies(
    curve: SeedingCurve, tau_from: ArrayLike, tau_to: ArrayLike, seeding_rate: ArrayLike, rate_per_day: ArrayLike
) -> F64:
    """Expected colonies founded while a tumour ages from ``tau_from`` to ``tau_to``.

    ``seeding_rate`` is ``m`` (colonies per day per cell^gamma); ``rate_per_day`` the Gompertz ``a``.
    """
    scale = np.asarray(seeding_rate) / np.asarray(rate_per_day) * curve.rate_scale
    return scale * (curve.h(tau_to) - curve.h(tau_from))


def tropism_matrix(values: dict[str, float]) -> F64:
    """Probabilities (subtype x organ) that a colony lodges in each organ; rows sum to 1.

    Bone, lung, liver and brain come from the ``tropism.<subtype>.<organ>`` registry entries; distant
    nodes and other sites take fixed shares. Breast and regional nodes get no blood-borne colonies.
    """
    out = np.zeros((len(SUBTYPES), N_ORGANS))
    for i, s in enumerate(SUBTYPES):
        for organ in ("bone", "lung", "liver", "brain"):
            out[i, ORGAN_CODE[organ]] = values[f"tropism.{s}.{organ}"]
        out[i, ORGAN_CODE["distant_nodes"]] = values["dissemination.tropism_distant_nodes"]
        out[i, ORGAN_CODE["other"]] = values["dissemination.tropism_other"]
    out /= out.sum(axis=1, keepdims=True)
    return out


def dormancy_exit_rates(values: dict[str, float]) -> F64:
    """Exit rate from dormancy (per day), subtype x organ: ER status sets it; bone slower in ER+; brain slower."""
    out = np.zeros((len(SUBTYPES), N_ORGANS))
    for i, er_positive in enumerate(SUBTYPE_ER_POSITIVE):
        if er_positive:
            out[i, :] = values["dissemination.dormancy_exit_er_positive"]
            out[i, ORGAN_CODE["bone"]] *= values["dissemination.dormancy_factor_bone_er_positive"]
        else:
            out[i, :] = values["dissemination.dormancy_exit_er_negative"]
    out[:, ORGAN_CODE["brain"]] *= values["dissemination.dormancy_factor_brain"]
    return out
