"""The seeding cascade compiled (Numba): every colony founded before a time limit, one pass at a time.

:func:`metastasis.biology.natural_history.seed_until` filters the tumours that may seed (:func:`may_seed`)
and calls :func:`run_cascade`, which does what the NumPy passes did: in each pass every due tumour founds its next
colony (in order of seeding day within a patient, up to the per-patient cap), and the tumours that just
seeded and the colonies just founded are looked at again, until no tumour is due. Parents' columns are
updated in place; the new colonies come back as arrays, in the order they were founded. The seeding curve
is the one :class:`~metastasis.biology.dissemination.SeedingCurve` evaluates (its compiled scalar
functions); exponentials and logarithms come from LLVM rather than NumPy's vectorised ones, and the
normal quantile is :func:`metastasis.streams.normal_quantile`, so a few results differ from a NumPy
evaluation in the last bits (on four scenarios of 20,000 women every discrete outcome was the same as
with the NumPy passes, and no value moved by more than 3e-11 of itself).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.biology.dissemination import curve_h as _h
from metastasis.biology.dissemination import curve_tau_at as _tau_at
from metastasis.ordering import sort_groups_by_day
from metastasis.streams import normal_quantile
from metastasis.streams import uniform_one as _u

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@numba.njit(cache=True)
def _grow(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty(max(size, 2 * a.size), a.dtype)
    out[: a.size] = a
    return out


@numba.njit(cache=True, error_model="numpy")
def may_seed(rows: I64, until_days: F64, slack_days: float, taus: F64, log_h: F64, c: F64, pid: I64, ended: F64,
             t_ref: F64, tau_ref: F64, rate: F64, seed_rate: F64, lam_ref: F64, h_ref: F64, next_level: F64,
             t_seed: F64) -> I64:
    """The ``rows`` whose cached next seeding day falls by their limit (``until_days`` of their patient, or
    their end) plus ``slack_days``: a cheap filter before :func:`run_cascade`'s exact level test.

    Stale caches (NaN) are computed first: ``H`` at the segment's start, and the day the seeding level
    reaches the next level in the current segment (-inf where that is undefined, so the exact test decides).
    """
    scale = c[6]
    keep = np.empty(rows.size, np.int64)
    n_keep = 0
    for i in range(rows.size):
        r = rows[i]
        if np.isnan(t_seed[r]):
            if np.isnan(h_ref[r]):
                h_ref[r] = _h(tau_ref[r], taus, log_h, c)
            h_star = h_ref[r] + (next_level[r] - lam_ref[r]) * rate[r] / (seed_rate[r] * scale)
            day = t_ref[r] + (_tau_at(h_star, taus, log_h, c) - tau_ref[r]) / rate[r]
            t_seed[r] = -np.inf if np.isnan(day) else day
        end = np.minimum(until_days[pid[r]], ended[r])
        if t_seed[r] <= end + slack_days:
            keep[n_keep] = r
            n_keep += 1
    return keep[:n_keep]


@numba.njit(cache=True)
def _patient_day_order(pid: I64, day: F64, lid: I64) -> I64:
    """``np.lexsort((lid, day, pid))``: one stable sort by patient, then each patient's few rows in order of
    (day, lesion id) (lesion ids are unique within a patient, so the order is total)."""
    order = np.argsort(pid, kind="mergesort")
    start = np.empty(order.size + 1, np.int64)  # where each patient's rows begin in order
    n_groups = 0
    for i in range(order.size):
        if i == 0 or pid[order[i]] != pid[order[i - 1]]:
            start[n_groups] = i
            n_groups += 1
    start[n_groups] = order.size
    sort_groups_by_day(order, start[: n_groups + 1], day, lid)
    return order


#: Counters of the draws of a cluster's second and later colonies (far above a tumour's 8 * children).
_CLUSTER_COUNTER = 1 << 40
_CLUSTER_MAX = 1 << 10


@numba.njit(cache=True)
def _poisson(u: float, mean: float) -> int:
    # inversion of the Poisson distribution function at u (small means: a short walk)
    p = np.exp(-mean)
    cdf = p
    k = 0
    while u > cdf and k < _CLUSTER_MAX - 1:
        k += 1
        p *= mean / k
        cdf += p
    return k


@numba.njit(cache=True)
def run_cascade(rows: I64, until_days: F64, cap: int, head: np.uint64, secondary: float, met_factor: float,
                lesion_sd: float, cluster_mean: float, taus: F64, log_h: F64, c: F64,
                pid: I64, lid: I64, ended: F64, t_ref: F64, tau_ref: F64, rate: F64, seed_rate: F64,
                lam_ref: F64, h_ref: F64, next_level: F64, n_children: NDArray[np.int32], t_seed: F64,
                patient_id: I64, subtype: NDArray[np.int8], primary_rate: F64, patient_seed_rate: F64,
                tropism_cdf: F64, dormancy: F64, dormancy_shape: F64, colonies: I64, next_lid: I64,
                ) -> tuple[I64, I64, NDArray[np.int8], I64, F64, F64, F64, F64, F64, NDArray[np.int32]]:
    """Found every colony due before ``until_days`` (per patient) from tumours ``rows``, cascades included.

    Tumour handles below ``len(pid)`` are rows of the lesion columns (updated in place); a handle
    ``len(pid) + j`` is the j-th new colony. Returns the new colonies' patient, lesion id, organ, parent
    lesion id, seeding day, wake day, rate, seeding rate, next seeding level and children founded.
    """
    n_rows = pid.size
    scale = c[6]
    # the new colonies (grown as needed)
    m = 0
    c_pid = np.empty(64, np.int64)
    c_lid = np.empty(64, np.int64)
    c_organ = np.empty(64, np.int8)
    c_parent = np.empty(64, np.int64)
    c_seeded = np.empty(64, np.float64)
    c_wake = np.empty(64, np.float64)
    c_rate = np.empty(64, np.float64)
    c_seed_rate = np.empty(64, np.float64)
    c_level = np.empty(64, np.float64)
    c_children = np.empty(64, np.int32)
    n_organs = tropism_cdf.shape[1]

    cand = rows.copy()
    while cand.size:
        # which candidates are due: their seeding level at their limit reaches the next level
        due = np.empty(cand.size, np.int64)
        t_child = np.empty(cand.size, np.float64)
        n_due = 0
        for i in range(cand.size):
            hnd = cand[i]
            if hnd < n_rows:
                p, a, m_rate = pid[hnd], rate[hnd], seed_rate[hnd]
                tr, tau0, lam0, lvl, end = t_ref[hnd], tau_ref[hnd], lam_ref[hnd], next_level[hnd], ended[hnd]
                href = h_ref[hnd]
                if np.isnan(href):
                    href = _h(tau0, taus, log_h, c)
                    h_ref[hnd] = href
            else:
                j = hnd - n_rows
                p, a, m_rate = c_pid[j], c_rate[j], c_seed_rate[j]
                tr, tau0, lam0, lvl, end, href = c_wake[j], 0.0, 0.0, c_level[j], np.inf, 0.0
            end = min(until_days[p], end)
            if not (end > tr and m_rate > 0 and np.isfinite(lvl)):
                continue
            tau1 = tau0 + a * max(end - tr, 0.0)
            level_end = lam0 + m_rate / a * scale * (_h(tau1, taus, log_h, c) - href) if end > tr else lam0
            if level_end < lvl:
                continue
            h_star = href + (lvl - lam0) * a / (m_rate * scale)
            due[n_due] = hnd
            t_child[n_due] = tr + (_tau_at(h_star, taus, log_h, c) - tau0) / a
            n_due += 1
        if n_due == 0:
            break
        due, t_child = due[:n_due], t_child[:n_due]
        # order by patient, seeding day, lesion id (as np.lexsort((lid, t_child, pid)))
        d_pid = np.empty(n_due, np.int64)
        d_lid = np.empty(n_due, np.int64)
        for i in range(n_due):
            hnd = due[i]
            d_pid[i] = pid[hnd] if hnd < n_rows else c_pid[hnd - n_rows]
            d_lid[i] = lid[hnd] if hnd < n_rows else c_lid[hnd - n_rows]
        order = _patient_day_order(d_pid, t_child, d_lid)
        seeded = np.empty(n_due, np.int64)
        n_seeded = 0
        first_new = m
        rank = 0  # colonies founded so far in this pass by the current patient
        for i in range(n_due):
            o = order[i]
            hnd, p = due[o], d_pid[o]
            if i == 0 or p != d_pid[order[i - 1]]:
                rank = 0
            if colonies[p] + rank >= cap:  # the per-patient cap, in order of seeding day
                if hnd < n_rows:
                    next_level[hnd] = np.inf
                    t_seed[hnd] = np.nan
                else:
                    c_level[hnd - n_rows] = np.inf
                continue
            k = np.int64(n_children[hnd]) if hnd < n_rows else np.int64(c_children[hnd - n_rows])
            gid, parent_lid = patient_id[p], d_lid[o]
            s = subtype[p]
            # a seeding event founds a cluster of colonies (1 + Poisson(cluster_mean - 1)) that share their
            # seeding day and their dormancy draw (each sleeps that draw at its organ's rate); each draws its
            # own organ and growth rate
            size = 1
            if cluster_mean > 1.0:
                size += _poisson(_u(head, gid, parent_lid, 8 * k + 4), cluster_mean - 1.0)
            dormancy_u = _u(head, gid, parent_lid, 8 * k + 1)
            # Weibull of shape k and mean 1 / rate (k = 1: MODEL.md's exponential, computed as it always was)
            shape = dormancy_shape[s]
            sleep = -np.log(dormancy_u)
            if shape != 1.0:
                sleep = sleep ** (1.0 / shape) / math.gamma(1.0 + 1.0 / shape)
            for j in range(size):
                if colonies[p] + rank >= cap:
                    break
                counter = 8 * k if j == 0 else _CLUSTER_COUNTER + 8 * (k * _CLUSTER_MAX + j)
                uu = _u(head, gid, parent_lid, counter) * tropism_cdf[s, n_organs - 1]
                organ = 0
                for q in range(n_organs):
                    if uu >= tropism_cdf[s, q]:
                        organ += 1
                organ = min(organ, n_organs - 1)
                dormancy_days = sleep / dormancy[s, organ]
                z = normal_quantile(_u(head, gid, parent_lid, counter + 2))
                child_rate = primary_rate[p] * met_factor * np.exp(lesion_sd * z)
                if m == c_pid.size:
                    c_pid, c_lid, c_organ, c_parent = _grow(c_pid, m + 1), _grow(c_lid, m + 1), \
                        _grow(c_organ, m + 1), _grow(c_parent, m + 1)
                    c_seeded, c_wake, c_rate = _grow(c_seeded, m + 1), _grow(c_wake, m + 1), _grow(c_rate, m + 1)
                    c_seed_rate, c_level = _grow(c_seed_rate, m + 1), _grow(c_level, m + 1)
                    c_children = _grow(c_children, m + 1)
                child_lid = next_lid[p] + rank
                c_pid[m], c_lid[m], c_organ[m], c_parent[m] = p, child_lid, organ, parent_lid
                c_seeded[m], c_wake[m] = t_child[o], t_child[o] + dormancy_days
                c_rate[m], c_seed_rate[m] = child_rate, patient_seed_rate[p] * secondary
                c_level[m] = -np.log(_u(head, gid, child_lid, 3))
                c_children[m] = 0
                m += 1
                rank += 1
            step_up = np.log(_u(head, gid, parent_lid, 8 * (k + 1) + 3))
            if hnd < n_rows:
                next_level[hnd] = next_level[hnd] - step_up
                t_seed[hnd] = np.nan
                n_children[hnd] = k + 1
            else:
                c_level[hnd - n_rows] = c_level[hnd - n_rows] - step_up
                c_children[hnd - n_rows] = k + 1
            seeded[n_seeded] = hnd
            n_seeded += 1
        # lesion ids and colony counts move on by the colonies each patient founded in this pass
        for j in range(first_new, m):
            next_lid[c_pid[j]] += 1
            colonies[c_pid[j]] += 1
        cand = np.empty(n_seeded + m - first_new, np.int64)
        cand[:n_seeded] = seeded[:n_seeded]
        for j in range(first_new, m):
            cand[n_seeded + j - first_new] = n_rows + j
    return (c_pid[:m], c_lid[:m], c_organ[:m], c_parent[:m], c_seeded[:m], c_wake[:m], c_rate[:m],
            c_seed_rate[:m], c_level[:m], c_children[:m])
