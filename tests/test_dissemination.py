"""Seeding: the universal curve against quadrature, and colony counts against the Poisson mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import quad
from scipy.special import ndtri

from metastasis import cohort, parameters
from metastasis.biology import growth
from metastasis.biology import natural_history as nh
from metastasis.biology.cascade import _patient_day_order
from metastasis.biology.dissemination import SeedingCurve, _interp, expected_colonies
from metastasis.scenario import load_scenario
from metastasis.streams import normal_quantile
from metastasis.vocabulary import ORIGIN_CODE, SUBTYPE_ER_POSITIVE


def test_scalar_interpolation_is_numpys_bit_for_bit() -> None:
    """The seeding curve's scalar interpolation gives what np.interp gives, to the last bit: on and between
    grid points, outside the grid, at repeated grid values (a flat stretch of log H) and for NaN."""
    curve = SeedingCurve(4.19e6, 0.5)
    taus, log_h, _ = curve.tables()
    flat = np.array([0.0, 1.0, 1.0, 1.0, 2.5, 4.0])
    rng = np.random.default_rng(11)
    for xp, fp in ((taus, log_h), (log_h, taus), (flat, np.arange(6.0))):
        x = np.concatenate((rng.uniform(xp[0] - 1.0, xp[-1] + 1.0, 20_000), xp, [np.nan, -np.inf, np.inf]))
        ours = np.array([_interp(v, xp, fp) for v in x])
        np.testing.assert_array_equal(ours, np.interp(x, xp, fp))


@pytest.mark.parametrize("gamma", [0.5, 2 / 3, 1.0])
def test_seeding_curve_matches_quadrature(gamma: float) -> None:
    k = 4.19e6
    curve = SeedingCurve(k, gamma)
    c = math.log(growth.CELL_VOLUME_MM3 / k)
    for tau in (1e-4, 0.05, 0.7, 3.0, 9.0, 15.0, 22.0):
        exact = quad(lambda s: math.exp(gamma * c * math.exp(-s)), 0.0, tau, limit=400, epsabs=0, epsrel=1e-11)[0]
        assert curve.h(tau) == pytest.approx(exact, rel=2e-4)
        assert curve.tau_at(curve.h(tau)) == pytest.approx(tau, rel=1e-9)


def test_mean_number_of_colonies_is_the_poisson_integral() -> None:
    """Colonies founded by primaries before diagnosis: total count ~ Poisson(sum of expected counts)."""
    sc = load_scenario("default")
    values = parameters.resolve({"dissemination.secondary_scale": 0.0, "dissemination.mu": 1.1e-4})
    patients = cohort.draw_patients(sc.cohort, values, 7, np.arange(40_000))
    hist, lesions = nh.start(patients, values, 7)
    primary_tau = hist.primary_rate * -lesions.seeded[: len(patients)]  # Gompertz age at diagnosis
    expected = expected_colonies(hist.curve, 0.0, primary_tau, hist.seed_rate, hist.primary_rate).sum()
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    observed = int(((lesions.origin == ORIGIN_CODE["seeded"]) & (lesions.parent == 0)).sum())
    assert expected > 400  # enough colonies for the normal approximation
    # a Poisson count lies within 4 standard deviations of its mean with probability 0.99994
    assert abs(observed - expected) < 4 * math.sqrt(expected)


def test_a_seeding_event_founds_a_cluster_that_shares_its_day_and_dormancy_draw() -> None:
    """``dissemination.cluster_mean`` m: events as without clusters, each founding 1 + Poisson(m - 1) colonies
    that share their seeding day and their dormancy draw (m = 1: one colony per event, MODEL.md 3)."""
    sc = load_scenario("default")
    m = 2.5
    values = parameters.resolve({"dissemination.secondary_scale": 0.0, "dissemination.mu": 4.4e-5,
                                 "dissemination.cluster_mean": m})
    patients = cohort.draw_patients(sc.cohort, values, 7, np.arange(40_000))
    hist, lesions = nh.start(patients, values, 7)
    primary_tau = hist.primary_rate * -lesions.seeded[: len(patients)]
    per_patient = expected_colonies(hist.curve, 0.0, primary_tau, hist.seed_rate, hist.primary_rate)
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    # the few women whose seeding the per-patient cap stopped (a cluster may be cut there) are left out
    below = hist.colonies < values["engine.max_colonies_per_patient"]
    assert below.mean() > 0.999
    expected = per_patient[below].sum()
    seeded = np.nonzero((lesions.origin == ORIGIN_CODE["seeded"]) & (lesions.parent == 0) & below[lesions.pid])[0]
    pid, day = lesions.pid[seeded], lesions.seeded[seeded]
    _, event, size = np.unique(np.stack([pid.astype(float), day]), axis=1, return_inverse=True, return_counts=True)
    event = event.reshape(-1)
    # one dormancy draw per event: the sleep in units of each organ's mean dormancy is the same for every member
    sleep = (lesions.wake[seeded] - day) * hist.dormancy[hist.subtype[pid], lesions.organ[seeded]]
    order = np.argsort(event, kind="stable")
    starts = np.r_[0, np.cumsum(size)[:-1]]
    spread = np.maximum.reduceat(sleep[order], starts) - np.minimum.reduceat(sleep[order], starts)
    assert (spread <= 1e-9 * np.maximum.reduceat(sleep[order], starts)).all()
    # events as without clusters: Poisson(expected), within 4 standard deviations (probability 0.99994)
    assert expected > 400 and abs(size.size - expected) < 4 * math.sqrt(expected)
    # size - 1 ~ Poisson(m - 1): its mean over the events within 4 standard errors
    assert abs((size - 1).mean() - (m - 1)) < 4 * math.sqrt((m - 1) / size.size)
    # members of an event lodge in several organs (they draw their organs one by one)
    assert len(np.unique(lesions.organ[seeded][size[event] > 1])) > 3


def test_dormancy_of_a_given_shape_is_weibull_with_the_same_mean() -> None:
    """``dissemination.dormancy_shape_*`` k: the same colonies sleep ``E^(1/k) / Gamma(1 + 1/k)`` mean
    dormancies where the exponential (k = 1, MODEL.md 3) sleeps ``E``, so each sleep is Weibull of shape k
    and the mean is kept."""
    sc = load_scenario("default")
    shapes = {"dissemination.dormancy_shape_er_positive": 0.5, "dissemination.dormancy_shape_er_negative": 3.0}
    sleeps = []
    for extra in ({}, shapes):
        values = parameters.resolve({"dissemination.secondary_scale": 0.0, "dissemination.mu": 1e-3, **extra})
        patients = cohort.draw_patients(sc.cohort, values, 5, np.arange(20_000))
        hist, lesions = nh.start(patients, values, 5)
        nh.seed_until(hist, lesions, np.zeros(len(patients)))
        seeded = np.nonzero(lesions.origin == ORIGIN_CODE["seeded"])[0]
        pid = lesions.pid[seeded]
        # sleep in units of the mean dormancy of the colony's subtype and organ
        sleeps.append((lesions.wake[seeded] - lesions.seeded[seeded])
                      * hist.dormancy[hist.subtype[pid], lesions.organ[seeded]])
        er_positive = np.array(SUBTYPE_ER_POSITIVE)[hist.subtype[pid]]
    exponential, shaped = sleeps
    assert exponential.size == shaped.size > 5000  # the colonies do not depend on how long they sleep
    for group, k in ((er_positive, 0.5), (~er_positive, 3.0)):
        g = math.gamma(1 + 1 / k)
        # (to rounding of the days the sleeps are recovered from)
        np.testing.assert_allclose(shaped[group], exponential[group] ** (1 / k) / g, rtol=1e-9, atol=1e-12)
        # Kolmogorov-Smirnov against Weibull(k) of mean 1: the bound of a test at level 1e-4
        n = int(group.sum())
        statistic = stats.kstest(shaped[group], stats.weibull_min(k, scale=1 / g).cdf).statistic
        assert n > 1000 and statistic < math.sqrt(-math.log(1e-4 / 2) / (2 * n))


def test_colonies_lodge_in_organs_by_the_tropism_of_their_subtype() -> None:
    """Organs of the colonies the compiled cascade founds, by subtype, against the tropism matrix."""
    sc = load_scenario("default")
    values = parameters.resolve({"dissemination.mu": 2e-3})
    patients = cohort.draw_patients(sc.cohort, values, 11, np.arange(20_000))
    hist, lesions = nh.start(patients, values, 11)
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    seeded = lesions.origin == ORIGIN_CODE["seeded"]
    subtype, organ = hist.subtype[lesions.pid[seeded]], lesions.organ[seeded]
    for s in np.unique(subtype):
        n = int((subtype == s).sum())
        assert n > 2000
        share = np.bincount(organ[subtype == s], minlength=hist.tropism.shape[1]) / n
        p = hist.tropism[s]
        # each share is binomial: within 4 standard errors with probability 0.99994
        assert (np.abs(share - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12).all()


def test_a_pass_orders_its_due_tumours_as_lexsort_by_patient_day_and_lesion_id() -> None:
    """The cascade founds colonies in the order ``np.lexsort((lid, day, pid))`` gives: ties of day within
    a patient, infinite and NaN days (last) included."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(0, 300))
        pid = rng.integers(0, n // 3 + 1, n)
        day = np.round(rng.random(n) * 5, 1)
        day[rng.random(n) < 0.05] = np.nan
        day[rng.random(n) < 0.05] = np.inf
        lid = rng.permutation(n).astype(np.int64)
        np.testing.assert_array_equal(_patient_day_order(pid, day, lid), np.lexsort((lid, day, pid)))


def test_normal_quantile_is_scipys_to_the_last_bits() -> None:
    u = np.concatenate((np.random.default_rng(5).random(200_000), [2.0**-53, 1e-12, 0.5, 1 - 1e-12, 1 - 2.0**-53]))
    ours = np.array([normal_quantile(x) for x in u])
    reference = ndtri(u)
    # a few units in the last place (ulp) of max(|z|, 1): Newton on erfc converges to rounding error
    assert (np.abs(ours - reference) <= 4 * np.spacing(np.maximum(np.abs(reference), 1.0))).all()


def test_next_seeding_day_filter_keeps_every_tumour_that_is_due() -> None:
    """The cached next seeding day only pre-filters: every tumour whose level reaches its next colony by
    the limit passes it, and few that do not (the filter is what makes stepping cheap)."""
    sc = load_scenario("default")
    values = sc.parameter_values()
    patients = cohort.draw_patients(sc.cohort, values, 3, np.arange(20_000))
    hist, lesions = nh.start(patients, values, 3)
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    rows = np.arange(lesions.n)
    for limit_days in (30.0, 365.0, 3650.0):
        until = np.full(len(patients), limit_days)
        end = np.minimum(until[lesions.pid], lesions.ended)
        due = (end > lesions.t_ref) & (lesions.seed_rate > 0) & (hist.lam_at(lesions, rows, end) >= lesions.next_level)
        kept = np.zeros(len(rows), bool)
        kept[nh._may_seed(hist, lesions, rows, until)] = True
        assert due.sum() > 100
        assert not (due & ~kept).any()
        assert (kept & ~due).sum() < 0.01 * len(rows)
