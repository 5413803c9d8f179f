"""Counter-based random numbers: the compiled generator is the SplitMix64 chain, bit for bit."""

from __future__ import annotations

import numpy as np
from scipy import stats

from metastasis import streams
from metastasis.streams import Process

GOLDEN, M1, M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


def _reference(seed: int, process: int, patient: np.ndarray, key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """The chain written out in NumPy: head from (seed, process), then patient, key and counter."""
    with np.errstate(over="ignore"):
        head = _mix(np.array([seed], dtype=np.uint64) * GOLDEN + np.uint64(process))
        z = _mix(head ^ (patient.astype(np.int64).astype(np.uint64) * GOLDEN))
        z = _mix(z ^ (key.astype(np.int64).astype(np.uint64) + GOLDEN))
        return _mix(z ^ (counter.astype(np.int64).astype(np.uint64) * M1 + GOLDEN))


def test_hash_is_the_splitmix_chain_including_negative_keys_and_small_integer_types() -> None:
    rng = np.random.default_rng(0)
    patient = rng.integers(0, 10**7, 20_000)
    counter = rng.integers(0, 10**6, 20_000)
    for key in (rng.integers(-50, 50, 20_000).astype(np.int8), rng.integers(-(2**40), 2**40, 20_000)):
        for seed in (0, 1, 2**63 + 5):
            for process in Process:
                expected = _reference(seed, int(process), patient, key, counter)
                np.testing.assert_array_equal(streams.hash64(seed, process, patient, key, counter), expected)
                u = ((expected >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
                np.testing.assert_array_equal(streams.uniform(seed, process, patient, key, counter), u)


def test_uniform_broadcasts_scalars_and_is_uniform() -> None:
    u = streams.uniform(7, Process.COHORT, np.arange(200_000), 3)
    assert u.shape == (200_000,) and u.min() > 0.0 and u.max() < 1.0
    assert streams.uniform(7, Process.COHORT, 5, 3) == u[5]
    # Kolmogorov-Smirnov against U(0, 1): p < 0.001 would happen by chance once in a thousand seeds
    assert stats.kstest(u, "uniform").pvalue > 1e-3
