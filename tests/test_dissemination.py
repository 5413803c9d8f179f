"""Seeding: the universal curve against quadrature, and colony counts against the Poisson mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from metastasis import cohort, parameters
from metastasis.biology import growth
from metastasis.biology import natural_history as nh
from metastasis.biology.dissemination import SeedingCurve, expected_colonies, pick_organ
from metastasis.scenario import load_scenario
from metastasis.vocabulary import ORIGIN_CODE


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


def test_organ_choice_follows_the_tropism_probabilities() -> None:
    p = np.array([0.5, 0.3, 0.2])
    u = (np.arange(100_000) + 0.5) / 100_000
    picked = pick_organ(np.tile(p, (len(u), 1)), u)
    np.testing.assert_allclose(np.bincount(picked) / len(u), p, atol=1e-4)


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
        kept = nh._may_seed(hist, lesions, rows, until)
        assert due.sum() > 100
        assert not (due & ~kept).any()
        assert (kept & ~due).sum() < 0.01 * len(rows)
