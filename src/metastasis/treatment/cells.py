"""Cell-level arithmetic of treatment: who survives a course (MODEL.md 5).

Survivors of a course are ``Binomial(N, SF)`` of the sensitive cells plus the resistant subclone,
``Poisson(N f_res A^beta_r)`` cells drawn by inversion of a uniform fixed when the colony was seeded.
A colony at zero cells is extinct. Every draw is by inversion of a given uniform, so results are a
pure function of the patient's random stream.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri, pdtr, pdtrik
from scipy.stats import binom

F64 = NDArray[np.float64]

#: Below this many trials the binomial is inverted exactly; above, Poisson or normal approximations.
EXACT_TRIALS = 1000
#: Variance above which the normal approximation is used.
NORMAL_VARIANCE = 50.0


def _poisson_ppf(q: F64, mu: F64) -> F64:
    """``scipy.stats.poisson.ppf`` for 0 < q < 1 (NaN where mu < 0), without its per-call overhead:
    the same inversion of the regularised incomplete gamma (``pdtrik``), corrected by one step.

    Where ``q <= P(0)`` the answer is 0 without the inversion: most means here are tiny (the resistant
    cells of a small colony), and ``pdtrik`` costs microseconds per value.
    """
    q, mu = np.broadcast_arrays(np.asarray(q, np.float64), np.asarray(mu, np.float64))
    out = np.zeros(q.shape)
    rest = ~(pdtr(0, mu) >= q)
    qr, mr = q[rest], mu[rest]
    vals = np.ceil(pdtrik(qr, mr))
    vals1 = np.maximum(vals - 1, 0)
    out[rest] = np.where(pdtr(vals1, mr) >= qr, vals1, vals)
    return np.where(mu >= 0, out, np.nan)


def poisson_from_uniform(mean: ArrayLike, u: ArrayLike) -> F64:
    """Poisson(mean) by inversion of ``u`` (normal approximation when the mean exceeds 50)."""
    lam = np.asarray(mean, dtype=np.float64)
    uu = np.asarray(u, dtype=np.float64)
    small = lam <= NORMAL_VARIANCE
    out = np.empty(np.broadcast(lam, uu).shape)
    lam_b, u_b = np.broadcast_arrays(lam, uu)
    if small.any():
        out[small] = _poisson_ppf(u_b[small], lam_b[small])
    big = ~small
    out[big] = np.maximum(np.round(lam_b[big] + np.sqrt(lam_b[big]) * ndtri(u_b[big])), 0.0)
    return np.nan_to_num(out, nan=0.0)


def binomial_from_uniform(n: ArrayLike, p: ArrayLike, u: ArrayLike) -> F64:
    """Binomial(n, p) by inversion of ``u``: exact for n <= 1000, else Poisson or normal approximation."""
    nn, pp, uu = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(p, np.float64), np.asarray(u, np.float64))
    out = np.empty(nn.shape)
    exact = nn <= EXACT_TRIALS
    if exact.any():
        out[exact] = binom.ppf(uu[exact], nn[exact], pp[exact])
    var = nn * pp * (1.0 - pp)
    normal = ~exact & (var > NORMAL_VARIANCE)
    mean = nn * pp
    out[normal] = np.clip(np.round(mean[normal] + np.sqrt(var[normal]) * ndtri(uu[normal])), 0.0, nn[normal])
    rare = ~exact & ~normal
    if rare.any():
        out[rare] = np.minimum(poisson_from_uniform(mean[rare], uu[rare]), nn[rare])
    return np.nan_to_num(out, nan=0.0)


def course_survivors(cells: ArrayLike, surviving_fraction: ArrayLike, resistant_per_cell: ArrayLike,
                     u_resistant: ArrayLike, u_kill: ArrayLike) -> F64:
    """Cells left after a course: sensitive survivors ``Binomial(N - R, SF)`` plus resistant ``R``.

    ``resistant_per_cell`` is ``f_res A^beta_r`` (0 for a treatment without resistance); ``R`` never
    exceeds ``N``. The result is never larger than ``cells``.
    """
    n = np.asarray(cells, dtype=np.float64)
    resistant = np.minimum(poisson_from_uniform(n * np.asarray(resistant_per_cell), u_resistant), n)
    sensitive = binomial_from_uniform(n - resistant, surviving_fraction, u_kill)
    return np.minimum(sensitive + resistant, n)
