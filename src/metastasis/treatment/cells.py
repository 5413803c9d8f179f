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
from numpy.typing import NDArray

from metastasis.biology.dissemination import curve_h
from metastasis.biology.growth import CELLS_PER_MM3, age_at_volume_one
from metastasis.biology.lesions import record_first_sizes_rows, volume_one
from metastasis.streams import normal_quantile, uniform_one

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

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
def _log_factorials(n: int) -> F64:
    # log(k!) for k < n by the compiled lgamma, so a lookup gives the very value a call would
    out = np.empty(n)
    for k in range(n):
        out[k] = math.lgamma(k + 1.0)
    return out


#: log(k!) for k <= EXACT_TRIALS: the exact binomial's terms look them up instead of calling lgamma.
_LOG_FACTORIAL = _log_factorials(EXACT_TRIALS + 1)


@numba.njit(cache=True)
def _binomial_exact(u: float, n: float, p: float) -> float:
    # the smallest k with P(X <= k) >= u, summing the pmf in log space from k = 0 (n <= EXACT_TRIALS)
    trials = int(n)
    log_p, log_q = math.log(p), math.log1p(-p)
    head = _LOG_FACTORIAL[trials]
    cdf = 0.0
    for k in range(trials + 1):
        cdf += math.exp(head - _LOG_FACTORIAL[k] - _LOG_FACTORIAL[trials - k] + k * log_p + (n - k) * log_q)
        if cdf >= u:
            return float(k)
    return n


@numba.njit(cache=True)
def binomial_one(n: float, p: float, u: float) -> float:
    """Binomial(``n``, ``p``) (``n`` a whole number) by inversion of ``u``: exact for n <= 1000, else normal
    (variance above 50) or Poisson approximation."""
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
def survivors_one(cells: float, surviving_fraction: float, resistant_per_cell: float, u_resistant: float,
                  u_kill: float) -> float:
    """Cells of one colony left after a course (see :func:`course_survivors`), for compiled code."""
    resistant = min(poisson_one(cells * resistant_per_cell, u_resistant), cells)
    return min(binomial_one(cells - resistant, surviving_fraction, u_kill) + resistant, cells)


# The same arithmetic over arrays (broadcast), as ufuncs.
@numba.vectorize(["float64(float64, float64)"], cache=True)
def poisson_from_uniform(mean: float, u: float) -> float:
    """Poisson(mean) by inversion of ``u`` (normal approximation when the mean exceeds 50)."""
    return poisson_one(mean, u)


@numba.vectorize(["float64(float64, float64, float64)"], cache=True)
def binomial_from_uniform(n: float, p: float, u: float) -> float:
    """Binomial(n, p) by inversion of ``u``: exact for n <= 1000, else Poisson or normal approximation."""
    return binomial_one(n, p, u)


@numba.vectorize(["float64(float64, float64, float64, float64, float64)"], cache=True)
def course_survivors(cells: float, surviving_fraction: float, resistant_per_cell: float, u_resistant: float,
                     u_kill: float) -> float:
    """Cells left after a course: sensitive survivors ``Binomial(N - R, SF)`` plus resistant ``R``.

    ``resistant_per_cell`` is ``f_res A^beta_r`` (0 for a treatment without resistance); ``R`` never
    exceeds ``N``. The result is never larger than ``cells``.
    """
    return survivors_one(cells, surviving_fraction, resistant_per_cell, u_resistant, u_kill)


@numba.njit(cache=True, error_model="numpy")
def apply_course(rows: I64, t: float, surviving_fraction: F64, resistant_per_cell: F64, head: np.uint64,
                 counter: int, extinct: int, cap: float, log_c: float, tau_one: float, tau_two: float,
                 taus: F64, log_h: F64, curve: F64, patient_id: I64, pid: I64, lid: I64, wake: F64, ended: F64,
                 end_reason: NDArray[np.int8], t_ref: F64, tau_ref: F64, rate: F64, seed_rate: F64, lam_ref: F64,
                 h_ref: F64, t_seed: F64, u_res: F64, t_1mm: F64, t_2mm: F64) -> I64:
    """A course at day ``t`` on lesions ``rows`` (awake and alive then; per row its surviving fraction and
    resistant cells per cell): survivors by :func:`survivors_one` (kill draw keyed
    by the lesion and ``counter``); a colony left with no cell ends, ``extinct``; the others start a new
    growth segment from the cells left (seeding level carried over, caches invalidated). First-size days
    are recorded before either. Returns the rows made extinct."""
    record_first_sizes_rows(rows, np.full(rows.size, t), tau_one, tau_two, tau_ref, rate, t_ref, wake, ended, t_1mm,
                            t_2mm)
    scale = curve[6]
    dead = np.empty(rows.size, np.int64)
    n_dead = 0
    for i in range(rows.size):
        r = rows[i]
        volume = volume_one(t, wake[r], ended[r], t_ref[r], tau_ref[r], rate[r], cap, log_c)
        cells = max(np.rint(volume * CELLS_PER_MM3), 1.0) if volume > 0.0 else 0.0
        u_kill = uniform_one(head, patient_id[pid[r]], lid[r], counter)
        left = survivors_one(cells, surviving_fraction[i], resistant_per_cell[i], u_res[r], u_kill)
        if left <= 0.0:
            ended[r] = t
            end_reason[r] = extinct
            dead[n_dead] = r
            n_dead += 1
            continue
        # the seeding level at t in the old segment, then the new segment from the cells left
        if np.isnan(h_ref[r]):
            h_ref[r] = curve_h(tau_ref[r], taus, log_h, curve)
        if t > t_ref[r]:
            tau1 = tau_ref[r] + rate[r] * (t - t_ref[r])
            lam_ref[r] = lam_ref[r] + seed_rate[r] / rate[r] * scale * (curve_h(tau1, taus, log_h, curve) - h_ref[r])
        tau_ref[r] = age_at_volume_one(left / CELLS_PER_MM3, cap, log_c)
        t_ref[r] = t
        t_seed[r] = np.nan
        h_ref[r] = np.nan
    return dead[:n_dead]
