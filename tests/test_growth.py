"""Gompertz growth: closed form against numerical integration, and its inverses."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from metastasis.biology import growth

K = 4.19e6  # mm^3


def test_closed_form_matches_numerical_integration() -> None:
    a = 0.002  # per day
    # integrate d ln V / dt = a ln(K / V) from one cell
    sol = solve_ivp(lambda t, y: a * (np.log(K) - y), (0.0, 8000.0), [np.log(growth.CELL_VOLUME_MM3)],
                    dense_output=True, rtol=1e-11, atol=1e-12)
    t = np.linspace(0.0, 8000.0, 41)
    numeric = np.exp(sol.sol(t)[0])
    closed = growth.volume_at_time(t, 0.0, a, K)
    np.testing.assert_allclose(closed, numeric, rtol=1e-7)


def test_time_to_volume_inverts_volume_at_time() -> None:
    rate = np.array([5e-4, 1e-3, 4e-3])
    for d in (0.5, 2.0, 10.0, 25.0, 80.0):
        v = growth.volume_from_diameter(d)
        t = growth.time_to_volume(v, rate, K)
        np.testing.assert_allclose(growth.volume_at_time(t, 0.0, rate, K), v, rtol=1e-10)
        np.testing.assert_allclose(growth.diameter_from_volume(growth.volume_at_time(t, 0.0, rate, K)), d, rtol=1e-10)


def test_doubling_time_round_trip_and_meaning() -> None:
    v = growth.volume_from_diameter(15.0)
    a = growth.rate_from_doubling(160.0, v, K)
    assert np.isclose(growth.doubling_days_at(a, v, K), 160.0)
    # the instantaneous doubling time approximates the time to double from there (within Gompertz slowing)
    t0 = growth.time_to_volume(v, a, K)
    t1 = growth.time_to_volume(2 * v, a, K)
    assert 160.0 < t1 - t0 < 160.0 * np.log(K / v) / np.log(K / (2 * v)) + 1e-9


def test_volume_is_one_cell_before_growth_and_below_capacity_always() -> None:
    assert np.isclose(growth.volume_at_age(0.0, K), growth.CELL_VOLUME_MM3)
    assert np.all(growth.volume_at_age(np.linspace(0, 60, 100), K) <= K)


def test_compiled_one_value_forms_match_the_array_forms() -> None:
    """The scalar closed forms compiled loops use give the array forms' values (to rounding: LLVM's exp,
    log and cbrt against NumPy's), including ages below 0 and volumes outside one cell .. capacity."""
    cap = 4.19e6
    log_c = growth.log_ratio(cap)
    tau = np.concatenate(([-1.0, 0.0], np.linspace(1e-3, 25.0, 500)))
    np.testing.assert_allclose([growth.volume_at_age_one(x, cap, log_c) for x in tau], growth.volume_at_age(tau, cap),
                               rtol=1e-13)
    volume = np.concatenate(([1e-9, 1e-6], np.geomspace(1e-5, cap * 0.999, 500), [cap * 2]))
    np.testing.assert_allclose([growth.age_at_volume_one(v, cap, log_c) for v in volume],
                               growth.age_at_volume(volume, cap), rtol=1e-13)
    np.testing.assert_allclose([growth.diameter_one(v) for v in volume], growth.diameter_from_volume(volume),
                               rtol=1e-15)
