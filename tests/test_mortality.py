"""Death hazard and symptom thresholds of a step, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from metastasis.detection.symptoms import threshold_crossings
from metastasis.mortality import cancer_hazard, hazard_constants, integrate_hazard
from metastasis.scenario import load_scenario
from metastasis.vocabulary import N_ORGANS, ORGAN_CODE


def test_hazard_is_the_organ_powers_plus_the_whole_body_term() -> None:
    values = load_scenario("default").parameter_values()
    scale, tolerance, q, body_scale, body_tolerance = hazard_constants(values)
    burden = np.random.default_rng(3).uniform(0.0, 5e4, (50, N_ORGANS))
    total, organ = cancer_hazard(burden, values)
    expected_organ = scale * (burden / tolerance) ** q
    np.testing.assert_allclose(organ, expected_organ, rtol=1e-13)
    body = body_scale * (burden.sum(axis=1) / body_tolerance) ** q
    np.testing.assert_allclose(total, expected_organ.sum(axis=1) + body, rtol=1e-13)


def test_constant_hazard_kills_when_the_cumulative_hazard_reaches_the_threshold() -> None:
    """With the burden held constant the hazard h is constant: the patient dies at threshold / h, of the
    organ with the highest hazard, and one who does not reach her threshold accumulates h per day."""
    values = load_scenario("default").parameter_values()
    burden = np.zeros((2, N_ORGANS))
    burden[:, ORGAN_CODE["liver"]] = 2e5
    burden[:, ORGAN_CODE["bone"]] = 1e5
    h = cancer_hazard(burden, values)[0]
    threshold = np.array([h[0] * 100.0, np.inf])  # the first dies on day 100, the second never
    cum, h_prev = np.zeros(2), h.copy()
    death, lethal = np.full(2, np.inf), np.full(2, -1, np.int8)
    active = np.arange(2)
    for step in range(10):
        integrate_hazard(active[np.isinf(death)], burden[np.isinf(death)], 28.0 * step, 28.0 * (step + 1),
                         *hazard_constants(values), threshold, cum, h_prev, death, lethal)
    assert death[0] == pytest.approx(100.0, rel=1e-12)
    assert lethal[0] == ORGAN_CODE["liver"] and lethal[1] == -1
    assert np.isinf(death[1]) and cum[1] == pytest.approx(h[1] * 280.0, rel=1e-12)


def test_threshold_crossings_find_each_organ_once_where_log_burden_crosses() -> None:
    theta = np.full(N_ORGANS, 1000.0)
    lung, liver, bone = ORGAN_CODE["lung"], ORGAN_CODE["liver"], ORGAN_CODE["bone"]
    burden_prev = np.zeros((3, N_ORGANS))
    burden_prev[1, lung] = 500.0  # crosses: 500 -> 2000, log-linear halfway
    burden_prev[1, liver] = 1500.0  # already above: no new crossing
    burden_prev[2, bone] = 100.0  # crosses, but already has an onset
    onset = np.full((3, N_ORGANS), np.nan)
    onset[2, bone] = 10.0
    active = np.array([1, 2])
    burden = np.zeros((2, N_ORGANS))
    burden[0, lung], burden[0, liver], burden[1, bone] = 2000.0, 3000.0, 5000.0
    at, organ, where = threshold_crossings(active, burden, burden_prev, onset, theta)
    assert at.tolist() == [0] and organ.tolist() == [lung]
    assert where[0] == pytest.approx(np.log(1000.0 / 500.0) / np.log(2000.0 / 500.0), rel=1e-14)
    np.testing.assert_array_equal(burden_prev[active], burden)  # the step's end becomes the next start
    assert (burden_prev[0] == 0.0).all()
