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

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import exp1

from metastasis.biology.growth import CELL_VOLUME_MM3, CELLS_PER_MM3
from metastasis.vocabulary import N_ORGANS, ORGAN_CODE, SUBTYPE_ER_POSITIVE, SUBTYPES

F64 = NDArray[np.float64]


@numba.njit(cache=True)
def _interp(x: float, xp: F64, fp: F64) -> float:
    """``np.interp`` of one value on an ascending grid, the same arithmetic as Numba's (which allocates
    arrays for a scalar): the last grid point at or below ``x`` (bisection), then the slope from it."""
    n = xp.size
    if np.isnan(x):
        return x
    if x > xp[n - 1]:
        return fp[n - 1]
    if x < xp[0]:
        return fp[0]
    lo, hi = 0, n
    while lo < hi:
        mid = lo + ((hi - lo) >> 1)
        if x >= xp[mid]:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1
    if j == n - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    out = slope * (x - xp[j]) + fp[j]
    if np.isnan(out):  # as NumPy: from the other end, then the flat value
        out = slope * (x - xp[j + 1]) + fp[j + 1]
        if np.isnan(out) and fp[j] == fp[j + 1]:
            out = fp[j]
    return out


@numba.njit(cache=True)
def curve_h(t: float, taus: F64, log_h: F64, c: F64) -> float:
    """``H(t)`` of a curve given as :meth:`SeedingCurve.tables` (scalar; compiled code calls it directly)."""
    b, h_end, slope, tau_max, tau1 = c[0], c[1], c[2], c[3], c[4]
    if t <= 0.0:
        return 0.0
    if t > tau_max:  # at the plateau H grows linearly
        return h_end + (t - tau_max) * slope
    if t <= tau1:  # below the first grid age, e^-tau ~ 1 - tau: H ~ e^-b (e^(b tau) - 1) / b
        return math.exp(-b) * math.expm1(b * t) / b
    return math.exp(_interp(t, taus, log_h))


@numba.njit(cache=True)
def curve_tau_at(y: float, taus: F64, log_h: F64, c: F64) -> float:
    """Inverse of :func:`curve_h`: the age at which ``H`` reaches ``y`` (scalar)."""
    b, h_end, slope, tau_max, h1 = c[0], c[1], c[2], c[3], c[5]
    if y <= 0.0:
        return 0.0
    if y > h_end:
        return tau_max + (y - h_end) / slope
    if y <= h1:
        return math.log1p(y * b * math.exp(b)) / b
    return _interp(math.log(y), log_h, taus)


@numba.njit(cache=True)
def _curve_many(x: F64, inverse: bool, taus: F64, log_h: F64, c: F64) -> F64:
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = curve_tau_at(x[i], taus, log_h, c) if inverse else curve_h(x[i], taus, log_h, c)
    return out


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
        log_h = np.log(np.maximum(h, 1e-300))
        # Beyond tau_max the tumour is at its plateau: H grows linearly with slope exp(-b e^-tau) ~ 1.
        slope = math.exp(-b * math.exp(-self.tau_max))
        scalars = np.array([b, h[-1], slope, self.tau_max, tau[1], math.exp(log_h[1]), self.rate_scale])
        object.__setattr__(self, "_tables", (np.ascontiguousarray(tau[1:]), np.ascontiguousarray(log_h[1:]), scalars))

    @property
    def rate_scale(self) -> float:
        """``(K cells)^gamma``: multiply by ``m / a`` to turn H into expected colonies."""
        return float((self.capacity_mm3 * CELLS_PER_MM3) ** self.gamma)

    def tables(self) -> tuple[F64, F64, F64]:
        """The curve for compiled code: grid ages, log H on them, and the scalars (b, H at tau_max, slope
        beyond, tau_max, first grid age, H there, rate scale)."""
        return self._tables  # type: ignore[attr-defined, no-any-return]

    def h(self, tau: ArrayLike) -> F64:
        """``H(tau)``; 0 for ``tau <= 0``."""
        t = np.asarray(tau, dtype=np.float64)
        return _curve_many(np.ascontiguousarray(t.ravel()), False, *self.tables()).reshape(t.shape)

    def tau_at(self, h: ArrayLike) -> F64:
        """Inverse of :meth:`h`: the Gompertz age at which ``H`` reaches ``h`` (>= 0)."""
        y = np.asarray(h, dtype=np.float64)
        return _curve_many(np.ascontiguousarray(y.ravel()), True, *self.tables()).reshape(y.shape)


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


def dormancy_shapes(values: dict[str, float]) -> F64:
    """Weibull shape of the dormancy time by subtype (ER status sets it; 1 = exponential, MODEL.md 3)."""
    return np.array([values["dissemination.dormancy_shape_er_positive"] if er_positive
                     else values["dissemination.dormancy_shape_er_negative"] for er_positive in SUBTYPE_ER_POSITIVE])
