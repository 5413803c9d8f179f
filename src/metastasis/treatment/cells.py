"""Cell-level arithmetic of treatment: who survives a course (MODEL.md 5).

Survivors of a course are ``Binomial(N, SF)`` of the sensitive cells plus the resistant subclone,
``Poisson(N f_res A^beta_r)`` cells drawn by inversion of a uniform fixed when the colony was seeded.
A colony at zero cells is extinct. Every draw is by inversion of a given uniform, so results are a
pure function of the patient's random stream.

The inversions are compiled: the exact ones sum the probability mass function until the cumulative
probability reaches the uniform (the binomial in log space, so that no term underflows), as
``scipy.stats.binom.ppf`` and ``poisson.ppf`` would invert it; the cumulative sums carry rounding of
order 1e-16, so the result can differ from SciPy's only for a uniform that close to a step of the
distribution function.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis.streams import normal_quantile

F64 = NDArray[np.float64]

#: Below this many trials the binomial is inverted exactly; above, Poisson or normal approximations.
EXACT_TRIALS = 1000
#: Variance above which the normal approximation is used.
NORMAL_VARIANCE = 50.0


@numba.njit(cache=True)
def _poisson_exact(u: float, mean: float) -> float:
    # the smallest k with P(X <= k) >= u; means up to NORMAL_VARIANCE, so exp(-mean) does not underflow
    term = math.exp(-mean)
    cdf = term
    k = 0
    limit = mean + 40.0 * math.sqrt(mean) + 100.0  # beyond it the sum has stopped growing (rounding)
    while cdf < u and k < limit:
        k += 1
        term *= mean / k
        cdf += term
    return float(k)


@numba.njit(cache=True)
def poisson_one(mean: float, u: float) -> float:
    """Poisson(``mean``) by inversion of ``u`` (normal approximation above a mean of 50; 0 for a mean
    that is not positive or not a number)."""
    if not mean > 0.0:
        return 0.0
    if mean <= NORMAL_VARIANCE:
        return _poisson_exact(u, mean)
    return max(np.rint(mean + math.sqrt(mean) * normal_quantile(u)), 0.0)


@numba.njit(cache=True)
def _binomial_exact(u: float, n: float, p: float) -> float:
    # the smallest k with P(X <= k) >= u, summing the pmf in log space from k = 0
    trials = int(n)
    log_p, log_q = math.log(p), math.log1p(-p)
    head = math.lgamma(n + 1.0)
    cdf = 0.0
    for k in range(trials + 1):
        cdf += math.exp(head - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0) + k * log_p + (n - k) * log_q)
        if cdf >= u:
            return float(k)
    return n


@numba.njit(cache=True)
def binomial_one(n: float, p: float, u: float) -> float:
    """Binomial(``n``, ``p``) by inversion of ``u``: exact for n <= 1000, else normal (variance above 50)
    or Poisson approximation."""
    if not (n > 0.0 and p > 0.0):
        return 0.0
    if p >= 1.0:
        return n
    if n <= EXACT_TRIALS:
        return _binomial_exact(u, n, p)
    var = n * p * (1.0 - p)
    if var > NORMAL_VARIANCE:
        return min(max(np.rint(n * p + math.sqrt(var) * normal_quantile(u)), 0.0), n)
    return min(poisson_one(n * p, u), n)


@numba.njit(cache=True)
def _survivors(cells: F64, surviving_fraction: F64, resistant_per_cell: F64, u_resistant: F64, u_kill: F64) -> F64:
    out = np.empty(cells.size)
    for i in range(cells.size):
        n = cells[i]
        resistant = min(poisson_one(n * resistant_per_cell[i], u_resistant[i]), n)
        sensitive = binomial_one(n - resistant, surviving_fraction[i], u_kill[i])
        out[i] = min(sensitive + resistant, n)
    return out


@numba.njit(cache=True)
def _poisson_many(mean: F64, u: F64) -> F64:
    out = np.empty(mean.size)
    for i in range(mean.size):
        out[i] = poisson_one(mean[i], u[i])
    return out


@numba.njit(cache=True)
def _binomial_many(n: F64, p: F64, u: F64) -> F64:
    out = np.empty(n.size)
    for i in range(n.size):
        out[i] = binomial_one(n[i], p[i], u[i])
    return out


def _flat(x: ArrayLike, shape: tuple[int, ...]) -> F64:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float64), shape)).ravel()


def poisson_from_uniform(mean: ArrayLike, u: ArrayLike) -> F64:
    """Poisson(mean) by inversion of ``u`` (normal approximation when the mean exceeds 50)."""
    shape = np.broadcast(np.asarray(mean), np.asarray(u)).shape
    m, uu = _flat(mean, shape), _flat(u, shape)
    return _poisson_many(m, uu).reshape(shape)


def binomial_from_uniform(n: ArrayLike, p: ArrayLike, u: ArrayLike) -> F64:
    """Binomial(n, p) by inversion of ``u``: exact for n <= 1000, else Poisson or normal approximation."""
    shape = np.broadcast(np.asarray(n), np.asarray(p), np.asarray(u)).shape
    nn, pp, uu = _flat(n, shape), _flat(p, shape), _flat(u, shape)
    return _binomial_many(nn, pp, uu).reshape(shape)


def course_survivors(cells: ArrayLike, surviving_fraction: ArrayLike, resistant_per_cell: ArrayLike,
                     u_resistant: ArrayLike, u_kill: ArrayLike) -> F64:
    """Cells left after a course: sensitive survivors ``Binomial(N - R, SF)`` plus resistant ``R``.

    ``resistant_per_cell`` is ``f_res A^beta_r`` (0 for a treatment without resistance); ``R`` never
    exceeds ``N``. The result is never larger than ``cells``.
    """
    args = (cells, surviving_fraction, resistant_per_cell, u_resistant, u_kill)
    shape = np.broadcast(*(np.asarray(a) for a in args)).shape
    return _survivors(*(_flat(a, shape) for a in args)).reshape(shape)
